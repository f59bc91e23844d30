// The dashboards' SVG charts drawn from their geometry (src/charts.ts): a frame with its labels, bars, and the
// quality chart's two lines with their legend.

import { BASELINE, CHART, pointsAttr, type Column, type QualityLines, type Span } from "./charts.ts";
import { el, svg } from "./dom.ts";

/** An empty chart with its baseline and labels: the top value at the left, how long ago it starts below. */
export function chartFrame(id: string, label: string, top: string, ago: string): SVGSVGElement {
  const chart = svg("svg", { id, viewBox: `0 0 ${CHART.width} ${CHART.height}`, width: CHART.width, height: CHART.height, role: "img", "aria-label": label });
  const below = CHART.height - 4;
  chart.append(
    svg("line", { class: "axis", x1: 0, y1: BASELINE, x2: CHART.width, y2: BASELINE }),
    svg("text", { class: "label", x: 2, y: CHART.top - 4 }, top),
    svg("text", { class: "label", x: 2, y: below }, ago),
    svg("text", { class: "label", x: CHART.width - 2, y: below, "text-anchor": "end" }, "now"),
  );
  return chart;
}

/** A bar of the bucket starting at `startMs`, classed `className`. */
export function barRect(className: string, startMs: number, column: Column, span: Span): SVGRectElement {
  return svg("rect", { class: className, "data-start": startMs, x: column.x, width: column.width, y: span.y, height: span.height });
}

/** A chart and its caption. */
export function figure(chart: SVGSVGElement, caption: HTMLElement): HTMLElement {
  const f = el("figure");
  f.append(chart, caption);
  return f;
}

/** `#quality-chart`: frames a second and click-to-photon on one scale, with a legend. */
export function qualityFigure(lines: QualityLines, ago: string): HTMLElement {
  const chart = chartFrame("quality-chart", "Frames a second and click-to-photon", lines.max.toFixed(1), ago);
  for (const [name, points] of [["fps", lines.fps], ["c2p", lines.c2p]] as const) {
    // Each bucket's value is marked, so that a lone bucket shows where a line cannot.
    chart.append(svg("polyline", { class: name, points: pointsAttr(points) }), ...points.map((p) => svg("circle", { class: name, cx: p.x, cy: p.y, r: 2 })));
  }
  const legend = el("figcaption");
  legend.append(el("span", "fps", { class: "key fps" }), " ", el("span", "click-to-photon (ms)", { class: "key c2p" }));
  if (lines.fps.length === 0 && lines.c2p.length === 0) legend.append(el("span", " · no player figures in the last day", { class: "hint" }));
  return figure(chart, legend);
}
