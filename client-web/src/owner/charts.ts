// The owner's charts as geometry: the last day's buckets turned into bars and line points in SVG user units. Pure
// (unit-tested); src/owner/render.ts draws them.

import type { HistoryBucket } from "../generated/HistoryBucket";

/** A chart's viewBox, and the margins its labels take above and below the plot. */
export const CHART = { width: 640, height: 160, top: 16, bottom: 20 } as const;

/** The plot's height, and where its baseline (zero) lies. */
export const PLOT_HEIGHT = CHART.height - CHART.top - CHART.bottom;
export const BASELINE = CHART.height - CHART.bottom;

/** A vertical span standing on the baseline. */
export interface Span {
  y: number;
  height: number;
}

/** One bucket's bars: served seconds, and the confirmed part overlaid from the same baseline. */
export interface Bar {
  start_ms: number;
  x: number;
  width: number;
  served: Span;
  confirmed: Span;
}

export interface Point {
  x: number;
  y: number;
}

/** The quality chart's lines, on one scale whose top is `max`. */
export interface QualityLines {
  fps: Point[];
  c2p: Point[];
  max: number;
}

const round2 = (v: number): number => Math.round(v * 100) / 100;

/** `value` as a span of the plot, where `max` fills it; empty when `max` is 0. */
export function spanOf(value: number, max: number): Span {
  const height = max > 0 ? round2((value / max) * PLOT_HEIGHT) : 0;
  return { y: round2(BASELINE - height), height };
}

/** Each bucket's column: an equal share of the chart's width. */
const slotWidth = (buckets: number): number => CHART.width / Math.max(buckets, 1);

/** The most seconds served in one bucket: the hours chart's top. */
export function maxServedSeconds(history: readonly HistoryBucket[]): number {
  return Math.max(0, ...history.map((b) => b.served_seconds));
}

/** A bar per bucket, oldest at the left, its height proportional to the hours served in it. */
export function hourBars(history: readonly HistoryBucket[]): Bar[] {
  const slot = slotWidth(history.length);
  const max = maxServedSeconds(history);
  return history.map((b, i) => ({
    start_ms: b.start_ms,
    x: round2(i * slot + slot * 0.1),
    width: round2(slot * 0.8),
    served: spanOf(b.served_seconds, max),
    confirmed: spanOf(b.confirmed_seconds, max),
  }));
}

/** Frames a second and click-to-photon ms per bucket on one scale, each line skipping buckets without a figure. */
export function qualityLines(history: readonly HistoryBucket[]): QualityLines {
  const figures = history.flatMap((b) => [b.fps, b.click_to_photon_ms]).filter((v): v is number => v !== null);
  const max = Math.max(0, ...figures);
  const slot = slotWidth(history.length);
  const line = (pick: (b: HistoryBucket) => number | null): Point[] =>
    history.flatMap((b, i) => {
      const value = pick(b);
      return value === null ? [] : [{ x: round2(i * slot + slot / 2), y: spanOf(value, max).y }];
    });
  return { fps: line((b) => b.fps), c2p: line((b) => b.click_to_photon_ms), max };
}

/** Points as a polyline's `points` attribute: "x,y x,y". */
export function pointsAttr(points: readonly Point[]): string {
  return points.map((p) => `${p.x},${p.y}`).join(" ");
}
