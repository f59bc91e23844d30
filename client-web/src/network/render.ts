// The network page drawn into network.html: each section's `.content` is built anew from every NetworkView.

import { hoursText } from "../units.ts";
import { barRect, chartFrame, figure, qualityFigure } from "../chartView.ts";
import { byId, el, fillSection, row, table } from "../dom.ts";
import type { Delivered } from "../generated/Delivered";
import type { NetworkView } from "../generated/NetworkView";
import type { RegionFigures } from "../generated/RegionFigures";
import { agoText } from "../owner/format.ts";
import { deliveredBars, maxDeliveredHours, qualityLines } from "./charts.ts";
import { checksText, type Figure, headlineFigures, hoursCaption, NO_LIVE_HOST, NOT_SETTLING, REGION_COLUMNS, regionCells } from "./format.ts";

const HOUR_MS = 3_600_000;

/** Fills every section of the page from `view`; the charts hide where the broker settles nothing. */
export function renderNetworkView(view: NetworkView): void {
  fillSection("figures", figuresSection(view));
  fillSection("regions", regionsSection(view.regions));
  fillSection("charts", view.delivered === null ? [] : chartsSection(view.delivered));
  byId("charts", HTMLElement).hidden = view.delivered === null;
}

function figuresSection(view: NetworkView): Node[] {
  const checks = el("p", checksText(view.checks), { id: "checks" });
  if (view.delivered === null) return [el("p", NOT_SETTLING, { id: "not-settling" }), checks];
  const dl = el("dl");
  for (const f of headlineFigures(view.delivered, view.cloud_price_per_hour)) dl.append(el("dt", f.label), figureValue(f));
  return [dl, checks];
}

/** A figure's text in the element its id names, its detail beside it. */
function figureValue(f: Figure): HTMLElement {
  const dd = el("dd");
  dd.append(el("strong", f.text, { id: f.id }));
  if (f.detail !== undefined) dd.append(" ", el("span", f.detail, { class: "detail" }));
  return dd;
}

function regionsSection(regions: readonly RegionFigures[]): Node[] {
  if (regions.length === 0) return [el("p", NO_LIVE_HOST)];
  const rows = regions.map((r) => {
    const tr = row(REGION_COLUMNS, regionCells(r));
    tr.dataset["region"] = r.region;
    return tr;
  });
  return [table(REGION_COLUMNS.map(([, title]) => title), rows)];
}

function chartsSection(delivered: Delivered): Node[] {
  const ago = agoText(delivered.hours.length * HOUR_MS);
  const chart = chartFrame("hours-chart", "Compute hours delivered per hour", hoursText(maxDeliveredHours(delivered.hours)), ago);
  for (const bar of deliveredBars(delivered.hours)) chart.append(barRect("delivered", bar.start_ms, bar, bar.delivered));
  return [figure(chart, el("figcaption", hoursCaption(delivered.hours), { id: "hours-caption" })), qualityFigure(qualityLines(delivered.hours), ago)];
}
