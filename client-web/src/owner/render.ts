// The owner's dashboard drawn into owner.html: each section's `.content` is built anew from every OwnerView.

import { hoursText } from "../units.ts";
import { barRect, chartFrame, figure, qualityFigure } from "../chartView.ts";
import { el, fillSection, row, table } from "../dom.ts";
import type { CapacityVerdict } from "../generated/CapacityVerdict";
import type { HistoryBucket } from "../generated/HistoryBucket";
import type { OwnerEarnings } from "../generated/OwnerEarnings";
import type { OwnerView } from "../generated/OwnerView";
import type { ProfileCapacity } from "../generated/ProfileCapacity";
import { formatEth } from "../receipt.ts";
import { hourBars, maxServedSeconds, qualityLines } from "./charts.ts";
import {
  agoText,
  capacityFacts,
  earningsTotals,
  ethText,
  hostFacts,
  hoursCaption,
  NO_CAPACITY_CHECK,
  profileHeading,
  reputationText,
  SESSION_COLUMNS,
  sessionCells,
  TRIAL_COLUMNS,
  trialCells,
} from "./format.ts";

/** Fills every section of the page from `view`. */
export function renderOwnerView(view: OwnerView): void {
  fillSection("host", hostSection(view));
  fillSection("sessions", sessionsSection(view));
  fillSection("capacity", capacitySection(view.capacity, view.now_ms));
  fillSection("reputation", [el("p", reputationText(view.reputation), { id: "reputation-value" })]);
  fillSection("earnings", earningsSection(view.earnings));
  fillSection("charts", chartsSection(view.history, view.bucket_ms));
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

function chartsSection(history: readonly HistoryBucket[], bucketMs: number): Node[] {
  const ago = agoText(history.length * bucketMs);
  const hours = chartFrame("hours-chart", "Hours served per 15 minutes", hoursText(maxServedSeconds(history) / 3600), ago);
  for (const bar of hourBars(history)) {
    hours.append(barRect("served", bar.start_ms, bar, bar.served), barRect("confirmed", bar.start_ms, bar, bar.confirmed));
  }
  return [figure(hours, el("figcaption", hoursCaption(history), { id: "hours-caption" })), qualityFigure(qualityLines(history), ago)];
}
