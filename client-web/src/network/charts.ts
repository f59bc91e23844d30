// The network page's charts as geometry: the last day's hours turned into bars and line points in SVG user units.
// Pure (unit-tested); src/network/render.ts draws them.

import { barColumn, qualityLinesOf, spanOf, topOf, type QualityLines, type Span } from "../charts.ts";
import type { HourTally } from "../generated/HourTally";

/** One hour's bar of compute hours delivered. */
export interface DeliveredBar {
  start_ms: number;
  x: number;
  width: number;
  delivered: Span;
}

/** The most compute hours delivered in one hour: the hours chart's top. */
export function maxDeliveredHours(hours: readonly HourTally[]): number {
  return topOf(hours.map((h) => h.tally.delivered_hours));
}

/** A bar per hour, oldest at the left, its height proportional to the compute hours delivered in it. */
export function deliveredBars(hours: readonly HourTally[]): DeliveredBar[] {
  const max = maxDeliveredHours(hours);
  return hours.map((h, i) => ({ start_ms: h.start_ms, ...barColumn(i, hours.length), delivered: spanOf(h.tally.delivered_hours, max) }));
}

/** Frames a second and click-to-photon ms per hour on one scale, each line skipping hours without a figure. */
export function qualityLines(hours: readonly HourTally[]): QualityLines {
  return qualityLinesOf(
    hours.map((h) => h.tally.fps),
    hours.map((h) => h.tally.click_to_photon_ms),
  );
}
