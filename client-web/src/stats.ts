// The counters of the current session: exposed as `window.__gridplay` for tests and shown in the stats overlay. Never
// a token or anything else that grants access: whatever is here, every script on the page can read.

import { freshStats, type GridplayStats } from "./statsShape.ts";

export type { GridplayStats } from "./statsShape.ts";

/** Most click-to-photon samples kept (the latest). */
export const MAX_SAMPLES_KEPT = 1000;

declare global {
  interface Window {
    __gridplay: GridplayStats;
  }
}

/** The live stats object (also `window.__gridplay`). */
export const stats: GridplayStats = freshStats();
window.__gridplay = stats;

/** Zeroes every counter for a new session. */
export function resetStats(): void {
  Object.assign(stats, freshStats());
}

/** Records one click-to-photon sample (ms). */
export function recordClickToPhoton(ms: number): void {
  stats.clickToPhotonMs.push(ms);
  if (stats.clickToPhotonMs.length > MAX_SAMPLES_KEPT) stats.clickToPhotonMs.shift();
}
