// Chart geometry shared by the dashboards: series of numbers, one per time bucket, turned into bars and line points in
// SVG user units. Pure (unit-tested); src/chartView.ts draws them.

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

/** Where a bucket's bar lies across the chart. */
export interface Column {
  x: number;
  width: number;
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

/** The largest figure of the series, missing ones left out: a chart's top; 0 without any. */
export function topOf(...series: readonly (readonly (number | null)[])[]): number {
  return Math.max(0, ...series.flat().filter((v): v is number => v !== null));
}

/** The bar of bucket `index` of `buckets`, oldest at the left: the middle 80% of its share of the width. */
export function barColumn(index: number, buckets: number): Column {
  const slot = slotWidth(buckets);
  return { x: round2(index * slot + slot * 0.1), width: round2(slot * 0.8) };
}

/** A point per bucket at the middle of its column, on a scale whose top is `max`, skipping buckets without a figure. */
export function linePoints(values: readonly (number | null)[], max: number): Point[] {
  const slot = slotWidth(values.length);
  return values.flatMap((value, i) => (value === null ? [] : [{ x: round2(i * slot + slot / 2), y: spanOf(value, max).y }]));
}

/** Frames a second and click-to-photon ms per bucket, both on one scale. */
export function qualityLinesOf(fps: readonly (number | null)[], c2p: readonly (number | null)[]): QualityLines {
  const max = topOf(fps, c2p);
  return { fps: linePoints(fps, max), c2p: linePoints(c2p, max), max };
}

/** Points as a polyline's `points` attribute: "x,y x,y". */
export function pointsAttr(points: readonly Point[]): string {
  return points.map((p) => `${p.x},${p.y}`).join(" ");
}
