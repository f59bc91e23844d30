// The owner's dashboard drawn into owner.html: each section's `.content` is built anew from every OwnerView.

import type { CapacityVerdict } from "../generated/CapacityVerdict";
import type { HistoryBucket } from "../generated/HistoryBucket";
import type { OwnerEarnings } from "../generated/OwnerEarnings";
import type { OwnerView } from "../generated/OwnerView";
import type { ProfileCapacity } from "../generated/ProfileCapacity";
import { formatEth } from "../receipt.ts";
import { BASELINE, CHART, hourBars, maxServedSeconds, pointsAttr, qualityLines, type Span } from "./charts.ts";
import {
  agoText,
  capacityFacts,
  earningsTotals,
  ethText,
  hostFacts,
  hoursCaption,
  hoursText,
  NO_CAPACITY_CHECK,
  profileHeading,
  reputationText,
  SESSION_COLUMNS,
  sessionCells,
  TRIAL_COLUMNS,
  trialCells,
} from "./format.ts";

const SVG_NS = "http://www.w3.org/2000/svg";

/** Fills every section of the page from `view`. */
export function renderOwnerView(view: OwnerView): void {
  fill("host", hostSection(view));
  fill("sessions", sessionsSection(view));
  fill("capacity", capacitySection(view.capacity, view.now_ms));
  fill("reputation", [el("p", reputationText(view.reputation), { id: "reputation-value" })]);
  fill("earnings", earningsSection(view.earnings));
  fill("charts", chartsSection(view.history, view.bucket_ms));
}

function fill(sectionId: string, nodes: Node[]): void {
  const content = document.querySelector(`#${sectionId} > .content`);
  if (content === null) throw new Error(`missing #${sectionId} > .content`);
  content.replaceChildren(...nodes);
}

function el<K extends keyof HTMLElementTagNameMap>(tag: K, text = "", attrs: Record<string, string> = {}): HTMLElementTagNameMap[K] {
  const e = document.createElement(tag);
  e.textContent = text;
  for (const [name, value] of Object.entries(attrs)) e.setAttribute(name, value);
  return e;
}

/** A table with a header row of `headers` and the given body rows. */
function table(headers: readonly string[], rows: readonly HTMLTableRowElement[]): HTMLTableElement {
  const head = el("tr");
  head.append(...headers.map((h) => el("th", h, { scope: "col" })));
  const thead = el("thead");
  thead.append(head);
  const tbody = el("tbody");
  tbody.append(...rows);
  const t = el("table");
  t.append(thead, tbody);
  return t;
}

/** A body row of cells in `columns` order, each classed by its column. */
function row<C extends string>(columns: readonly (readonly [C, string])[], cells: Record<C, string>): HTMLTableRowElement {
  const tr = el("tr");
  tr.append(...columns.map(([key]) => el("td", cells[key], { class: key })));
  return tr;
}

/** A `<dl>` of label and text pairs. */
function facts(pairs: readonly { label: string; text: string; title?: string }[]): HTMLDListElement {
  const dl = el("dl");
  for (const { label, text, title } of pairs) {
    const dd = el("dd", text);
    if (title !== undefined) dd.title = title;
    dl.append(el("dt", label), dd);
  }
  return dl;
}

function hostSection(view: OwnerView): Node[] {
  return [facts(hostFacts(view))];
}

function sessionsSection(view: OwnerView): Node[] {
  if (view.sessions.length === 0) return [el("p", "No sessions yet.")];
  const rows = view.sessions.map((s) => {
    const tr = row(SESSION_COLUMNS, sessionCells(s, view.now_ms));
    tr.dataset["session"] = s.session_id;
    return tr;
  });
  return [table(SESSION_COLUMNS.map(([, title]) => title), rows)];
}

function capacitySection(c: CapacityVerdict | null, nowMs: number): Node[] {
  if (c === null) return [el("p", NO_CAPACITY_CHECK)];
  const f = capacityFacts(c, nowMs);
  const state = el("p", "State: ");
  state.append(el("strong", f.state, { id: "capacity-state", "data-state": f.state }), ` — ${f.reason}`);
  const pairs = [
    { label: "Admitted", text: f.admitted },
    { label: "Checker", text: f.checker },
    ...(f.due === null ? [] : [{ label: "Next check", text: f.due }]),
    { label: "Failures", text: f.failures },
  ];
  return [state, facts(pairs), ...c.profiles.flatMap(profileTrials)];
}

function profileTrials(p: ProfileCapacity): Node[] {
  const rows = p.trials.map((t) => row(TRIAL_COLUMNS, trialCells(t)));
  const t = table(TRIAL_COLUMNS.map(([, title]) => title), rows);
  t.dataset["profile"] = p.profile;
  return [el("h3", profileHeading(p)), t];
}

function earningsSection(e: OwnerEarnings): Node[] {
  const nodes: Node[] = [];
  const address = el("p", "Payout address: ");
  address.append(e.payout_address === null ? "no payout address" : el("code", e.payout_address));
  nodes.push(address);
  if (e.note !== null) nodes.push(el("p", e.note, { id: "earnings-note" }));
  const totals = earningsTotals(e.epochs);
  const sums = el("p", "Claimed: ");
  sums.append(
    el("strong", ethText(totals.claimed), { id: "earned-claimed" }),
    " · to claim: ",
    el("strong", ethText(totals.claimable + totals.pending), { id: "earned-claimable" }),
    el("span", ` (${ethText(totals.claimable)} claimable now, ${ethText(totals.pending)} pending)`, { class: "hint" }),
  );
  nodes.push(sums);
  if (e.epochs.length === 0) return [...nodes, el("p", "No earnings yet.")];
  const rows = e.epochs.map((epoch) => {
    const tr = el("tr");
    tr.dataset["epoch"] = String(epoch.epoch_id);
    tr.append(el("td", String(epoch.epoch_id), { class: "epoch" }), el("td", formatEth(epoch.amount), { class: "amount" }), el("td", epoch.payout, { class: "payout" }));
    return tr;
  });
  return [...nodes, table(["Epoch", "Amount", "Payout"], rows)];
}

function svg<K extends keyof SVGElementTagNameMap>(tag: K, attrs: Record<string, string | number>, text = ""): SVGElementTagNameMap[K] {
  const e = document.createElementNS(SVG_NS, tag);
  for (const [name, value] of Object.entries(attrs)) e.setAttribute(name, String(value));
  if (text !== "") e.textContent = text;
  return e;
}

/** An empty chart with its baseline and labels: the top value at the left, the day's span below. */
function chartFrame(id: string, label: string, top: string, ago: string): SVGSVGElement {
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

const rect = (className: string, start: number, x: number, width: number, span: Span): SVGRectElement =>
  svg("rect", { class: className, "data-start": start, x, width, y: span.y, height: span.height });

function chartsSection(history: readonly HistoryBucket[], bucketMs: number): Node[] {
  const ago = agoText(history.length * bucketMs);
  const hours = chartFrame("hours-chart", "Hours served per 15 minutes", hoursText(maxServedSeconds(history)), ago);
  for (const bar of hourBars(history)) {
    hours.append(rect("served", bar.start_ms, bar.x, bar.width, bar.served), rect("confirmed", bar.start_ms, bar.x, bar.width, bar.confirmed));
  }
  const lines = qualityLines(history);
  const quality = chartFrame("quality-chart", "Frames a second and click-to-photon", lines.max.toFixed(1), ago);
  quality.append(svg("polyline", { class: "fps", points: pointsAttr(lines.fps) }), svg("polyline", { class: "c2p", points: pointsAttr(lines.c2p) }));
  const legend = el("figcaption");
  legend.append(el("span", "fps", { class: "key fps" }), " ", el("span", "click-to-photon (ms)", { class: "key c2p" }));
  if (lines.fps.length === 0 && lines.c2p.length === 0) legend.append(el("span", " · no player figures in the last day", { class: "hint" }));
  return [figure(hours, el("figcaption", hoursCaption(history), { id: "hours-caption" })), figure(quality, legend)];
}

function figure(chart: SVGSVGElement, caption: HTMLElement): HTMLElement {
  const f = el("figure");
  f.append(chart, caption);
  return f;
}
