// Shared by the browser tests and benches: waiting on the page's stats, reading the player off the picture, clicking
// it, and summarising click-to-photon.

import assert from "node:assert/strict";
import type { Page } from "playwright-core";

import type { AllocateResponse } from "../src/generated/AllocateResponse";
import { percentile } from "../src/probes/clickToPhoton.ts";
import type { GridplayStats } from "../src/stats.ts";
import { analyseFrame, pictureBox, type FrameAnalysis } from "./frame.ts";

export const WAIT_MS = 30_000;

/** Collects the page's uncaught errors (for a final check that there were none) and echoes its console errors and
 * warnings to stderr. */
export function watchPage(page: Page): string[] {
  const pageErrors: string[] = [];
  page.on("pageerror", (err) => pageErrors.push(err.message));
  page.on("console", (msg) => {
    if (msg.type() === "error" || msg.type() === "warning") process.stderr.write(`[page ${msg.type()}] ${msg.text()}\n`);
  });
  return pageErrors;
}

/** How often clickFor clicks. */
export const CLICK_EVERY_MS = 200;

export const sleep = (ms: number): Promise<void> => new Promise((r) => setTimeout(r, ms));

export const stats = (page: Page): Promise<GridplayStats> => page.evaluate(() => ({ ...window.__gridplay }));

/** The broker's answer to the page's next allocation (`POST /v1/sessions`), read off the wire: the page keeps the
 * session's token out of `window.__gridplay`. Call it before the click that allocates. */
export async function nextAllocation(page: Page): Promise<AllocateResponse> {
  const response = await page.waitForResponse(
    (r) => r.request().method() === "POST" && new URL(r.url()).pathname === "/v1/sessions",
    { timeout: WAIT_MS },
  );
  return (await response.json()) as AllocateResponse;
}

/** page.waitForFunction with the page's stats and messages in the error. */
export async function waitFor(page: Page, what: string, fn: (arg: number) => boolean, arg = 0): Promise<void> {
  try {
    await page.waitForFunction(fn, arg, { timeout: WAIT_MS, polling: 50 });
  } catch (err) {
    const shown = await page.evaluate(() =>
      ["error", "status", "lobby-status"].map((id) => `#${id}: ${document.getElementById(id)?.textContent ?? ""}`).join("; "),
    );
    throw new Error(`timed out waiting for ${what}; stats ${JSON.stringify(await stats(page))}; ${shown}`, { cause: err });
  }
}

/** Waits until every input sent so far is acknowledged, then a few more frames, and measures the frame. */
export async function settledFrame(page: Page): Promise<FrameAnalysis> {
  const { inputsSent } = await stats(page);
  await waitFor(page, `acks for ${inputsSent} inputs`, (n) => window.__gridplay.inputsAcked >= n, inputsSent);
  const { framesDecoded } = await stats(page);
  await waitFor(page, "5 more frames", (n) => window.__gridplay.framesDecoded >= n, framesDecoded + 5);
  return page.evaluate(analyseFrame);
}

/** The player's centre as fractions of the picture; fails when no yellow player is in the frame. */
export function player(frame: FrameAnalysis): { x: number; y: number } {
  assert.ok(frame.cx !== null && frame.cy !== null, `no yellow player in the frame: ${JSON.stringify(frame)}`);
  return { x: frame.cx, y: frame.cy };
}

/** Clicks the picture (real pointer input: move, down, up) every CLICK_EVERY_MS for `durationMs`, at spots spread over it. */
export async function clickFor(page: Page, durationMs: number): Promise<void> {
  const start = Date.now();
  for (let i = 0; Date.now() - start < durationMs; i++) {
    const box = await page.evaluate(pictureBox);
    // Golden-ratio steps land on a different spot each time, all inside the middle 70% of the picture.
    const fx = 0.15 + 0.7 * ((i * 0.618034) % 1);
    const fy = 0.15 + 0.7 * ((i * 0.381966 + 0.5) % 1);
    await page.mouse.click(box.left + fx * box.width, box.top + fy * box.height);
    await sleep(start + (i + 1) * CLICK_EVERY_MS - Date.now());
  }
}

export interface ClickToPhotonSummary {
  /** Nearest-rank percentiles in ms (one decimal); null without samples. */
  p50: number | null;
  p99: number | null;
  samples: number;
}

/** p50/p99 of the page's raw click-to-photon samples (window.__gridplay.clickToPhotonMs). */
export function summariseClickToPhoton(samples: readonly number[]): ClickToPhotonSummary {
  const round1 = (x: number | null): number | null => (x === null ? null : Math.round(x * 10) / 10);
  return { p50: round1(percentile(samples, 50)), p99: round1(percentile(samples, 99)), samples: samples.length };
}
