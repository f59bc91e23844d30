// The owner's dashboard, in words: every text the page shows, from the host's OwnerView. Pure (unit-tested).

import { hoursText } from "../units.ts";
import type { CapacityTrial } from "../generated/CapacityTrial";
import type { CapacityVerdict } from "../generated/CapacityVerdict";
import type { ClaimOutcome } from "../generated/ClaimOutcome";
import type { EpochEarning } from "../generated/EpochEarning";
import type { HistoryBucket } from "../generated/HistoryBucket";
import type { OwnerBlocks } from "../generated/OwnerBlocks";
import type { OwnerEarnings } from "../generated/OwnerEarnings";
import type { OwnerSession } from "../generated/OwnerSession";
import type { OwnerView } from "../generated/OwnerView";
import type { ProfileCapacity } from "../generated/ProfileCapacity";
import type { SlotOffer } from "../generated/SlotOffer";
import { formatEth } from "../receipt.ts";

/** What a missing figure shows as. */
export const NONE = "—";

/** The banner's text when the dashboard refuses the page's token (401). */
export const TOKEN_NEEDED = "This dashboard needs its token: open the address the host printed at start.";

/** The capacity section's text when the broker checks no capacity. */
export const NO_CAPACITY_CHECK = "This broker runs no capacity check: the host is placed as it offers.";

/** The dashboard's token from the page's fragment (`#token=HEX`); null without one. */
export function tokenFromHash(hash: string): string | null {
  const token = new URLSearchParams(hash.replace(/^#/, "")).get("token");
  return token === null || token === "" ? null : token;
}

/** The banner's text for a failed request: the token hint on 401, else the answer's own message. */
export function failureText(status: number, message: string): string {
  return status === 401 ? TOKEN_NEEDED : message;
}

/** A long id cut to its head and tail: "AbCdEfGh…wxyz". */
export function shortId(id: string, head = 8, tail = 4): string {
  return id.length <= head + tail + 1 ? id : `${id.slice(0, head)}…${id.slice(-tail)}`;
}

/** Unix milliseconds as the viewer's local date and time. */
export function localTime(ms: number): string {
  return new Date(ms).toLocaleString();
}

const two = (n: number): string => String(n).padStart(2, "0");

/** A span of time, to the second: "45 s", "1 min 05 s", "2 h 03 min 09 s". */
export function durationText(ms: number): string {
  const total = Math.floor(Math.max(0, ms) / 1000);
  const [h, m, s] = [Math.floor(total / 3600), Math.floor((total % 3600) / 60), total % 60];
  if (h > 0) return `${h} h ${two(m)} min ${two(s)} s`;
  if (m > 0) return `${m} min ${two(s)} s`;
  return `${s} s`;
}

const plural = (n: number, one: string): string => `${n} ${one}${n === 1 ? "" : "s"}`;

/** An offer: "game: 4 slots up to 1920x1080@60". */
export function offerText(offer: SlotOffer): string {
  return `${offer.profile}: ${plural(offer.slots, "slot")} up to ${offer.max_width}x${offer.max_height}@${offer.max_fps}`;
}

/** One fact of the host section; `title` holds the whole of a shortened text. */
export interface HostFact {
  label: string;
  text: string;
  title?: string;
}

/** The host section's facts, in order. */
export function hostFacts(view: OwnerView): HostFact[] {
  return [
    { label: "Host", text: shortId(view.host_id), title: view.host_id },
    { label: "Region", text: view.region },
    { label: "GPU", text: view.gpu },
    { label: "Broker", text: view.broker_url },
    { label: "Up since", text: localTime(view.up_since_ms) },
    { label: "Offers", text: view.offers.length === 0 ? "none" : view.offers.map(offerText).join("; ") },
  ];
}

/** The sessions table's columns: each cell's class and its header. */
export const SESSION_COLUMNS = [
  ["app", "App"],
  ["stream", "Stream"],
  ["state", "State"],
  ["started", "Started"],
  ["duration", "Duration"],
  ["fps", "FPS"],
  ["rtt", "RTT"],
  ["c2p", "Click-to-photon"],
  ["reports", "Reports"],
  ["blocks", "Blocks"],
] as const;

export type SessionColumn = (typeof SESSION_COLUMNS)[number][0];

const oneDecimal = (n: number | null, unit = ""): string => (n === null ? NONE : `${n.toFixed(1)}${unit}`);

/** A session's row of the table, by column; a running session's duration runs to `nowMs`. */
export function sessionCells(s: OwnerSession, nowMs: number): Record<SessionColumn, string> {
  return {
    app: s.app,
    stream: s.stream,
    state: s.ended_at_ms === null ? "running" : "ended",
    started: localTime(s.started_at_ms),
    duration: durationText((s.ended_at_ms ?? nowMs) - s.started_at_ms),
    fps: oneDecimal(s.fps),
    rtt: oneDecimal(s.rtt_ms, " ms"),
    c2p: oneDecimal(s.click_to_photon_ms, " ms"),
    reports: String(s.reports),
    blocks: blocksText(s.blocks),
  };
}

/** How the broker billed a session: "1 of 1 delivered · 0.002500 ETH · 1 committed"; "—" where it bills none. */
export function blocksText(blocks: OwnerBlocks | null): string {
  if (blocks === null) return NONE;
  return `${blocks.delivered} of ${blocks.billed} delivered · ${formatEth(blocks.amount)} · ${blocks.committed} committed`;
}

/** The capacity check in words; `due` is null once no check is due. */
export interface CapacityFacts {
  state: string;
  reason: string;
  admitted: string;
  checker: string;
  due: string | null;
  failures: string;
}

/** The capacity section's facts for a verdict, as of `nowMs`. */
export function capacityFacts(c: CapacityVerdict, nowMs: number): CapacityFacts {
  return {
    state: c.state,
    reason: c.reason,
    admitted: admittedText(c.admitted),
    checker: c.checker ?? "none yet",
    due: c.due_ms === null ? null : dueText(c.due_ms, nowMs),
    failures: c.failures === 0 ? "none" : `${plural(c.failures, "check")} failed in a row`,
  };
}

/** Slots admitted per profile: "game: 4 slots, phone: 1 slot"; "none yet" before a check. */
export function admittedText(admitted: CapacityVerdict["admitted"]): string {
  const parts = Object.entries(admitted).flatMap(([profile, slots]) => (slots === undefined ? [] : [`${profile}: ${plural(slots, "slot")}`]));
  return parts.length === 0 ? "none yet" : parts.join(", ");
}

/** When the next check is due: "in 4 min 10 s", or "now" once its time has come. */
export function dueText(dueMs: number, nowMs: number): string {
  return dueMs <= nowMs ? "now" : `in ${durationText(dueMs - nowMs)}`;
}

/** A profile's finding: "game at 1920x1080@60: 2 of 4 slots admitted". */
export function profileHeading(p: ProfileCapacity): string {
  return `${p.profile} at ${p.stream}: ${p.admitted} of ${plural(p.claimed, "slot")} admitted`;
}

/** The trials table's columns: each cell's class and its header. */
export const TRIAL_COLUMNS = [
  ["sessions", "Sessions"],
  ["min-fps", "Min FPS"],
  ["c2p-p99", "Max click-to-photon p99"],
  ["met", "Met"],
] as const;

export type TrialColumn = (typeof TRIAL_COLUMNS)[number][0];

/** A trial's row of its profile's table, by column. */
export function trialCells(t: CapacityTrial): Record<TrialColumn, string> {
  return {
    sessions: String(t.sessions),
    "min-fps": (t.min_fps_centi / 100).toFixed(1),
    "c2p-p99": t.max_click_to_photon_p99_ms === null ? NONE : `${t.max_click_to_photon_p99_ms} ms`,
    met: t.met ? "yes" : "no",
  };
}

/** Reputation as a percentage: "100%"; "—" while the broker has told none. */
export function reputationText(reputation: number | null): string {
  return reputation === null ? NONE : `${Math.round(reputation * 100)}%`;
}

/** Wei summed over the epochs by where their payment stands (void epochs pay nothing). */
export interface EarningsTotals {
  claimed: bigint;
  claimable: bigint;
  pending: bigint;
}

const weiOf = (amount: string): bigint => (/^\d+$/.test(amount) ? BigInt(amount) : 0n);

/** The epochs' amounts summed as claimed, claimable now and pending. */
export function earningsTotals(epochs: readonly EpochEarning[]): EarningsTotals {
  const totals: EarningsTotals = { claimed: 0n, claimable: 0n, pending: 0n };
  for (const e of epochs) {
    if (e.payout !== "void") totals[e.payout] += weiOf(e.amount);
  }
  return totals;
}

/** Wei as the page shows amounts: "0.002500 ETH". */
export const ethText = (wei: bigint): string => formatEth(wei.toString());

/** Whether the Claim button shows: the host holds its payout key and some epoch is yet to be paid. */
export function claimVisible(e: OwnerEarnings): boolean {
  return e.can_claim && e.epochs.some((epoch) => epoch.payout === "claimable" || epoch.payout === "pending");
}

/** What a claim did: "Claimed epoch(s) 0, 1 in 0xabc…". */
export function claimText(outcome: ClaimOutcome): string {
  return `Claimed epoch(s) ${outcome.epochs.join(", ")} in ${outcome.transactions.join(", ")}`;
}


/** The hours chart's caption: "0.01 h served in the last day, 0.01 h confirmed by players". */
export function hoursCaption(history: readonly HistoryBucket[]): string {
  const sum = (pick: (b: HistoryBucket) => number): number => history.reduce((total, b) => total + pick(b), 0);
  return `${hoursText(sum((b) => b.served_seconds) / 3600)} served in the last day, ${hoursText(sum((b) => b.confirmed_seconds) / 3600)} confirmed by players`;
}

/** How long ago a chart starts: "24 h ago". */
export function agoText(ms: number): string {
  return `${Math.round(ms / 3_600_000)} h ago`;
}
