// The owner's charts as geometry: the last day's buckets turned into bars and line points in SVG user units. Pure
// (unit-tested); src/owner/render.ts draws them.

import { barColumn, qualityLinesOf, spanOf, topOf, type QualityLines, type Span } from "../charts.ts";
import type { HistoryBucket } from "../generated/HistoryBucket";

export { BASELINE, PLOT_HEIGHT, pointsAttr } from "../charts.ts";

/** One bucket's bars: served seconds, and the confirmed part overlaid from the same baseline. */
export interface Bar {
  start_ms: number;
  x: number;
  width: number;
  served: Span;
  confirmed: Span;
}

/** The most seconds served in one bucket: the hours chart's top. */
export function maxServedSeconds(history: readonly HistoryBucket[]): number {
  return topOf(history.map((b) => b.served_seconds));
}

/** A bar per bucket, oldest at the left, its height proportional to the hours served in it. */
export function hourBars(history: readonly HistoryBucket[]): Bar[] {
  const max = maxServedSeconds(history);
  return history.map((b, i) => ({
    start_ms: b.start_ms,
    ...barColumn(i, history.length),
    served: spanOf(b.served_seconds, max),
    confirmed: spanOf(b.confirmed_seconds, max),
  }));
}

/** Frames a second and click-to-photon ms per bucket on one scale, each line skipping buckets without a figure. */
export function qualityLines(history: readonly HistoryBucket[]): QualityLines {
  return qualityLinesOf(
    history.map((b) => b.fps),
    history.map((b) => b.click_to_photon_ms),
  );
}
