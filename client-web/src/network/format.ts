// The network page in words: every text it shows, from the broker's NetworkView. Pure (unit-tested).

import { hoursText } from "../units.ts";
import type { Checks } from "../generated/Checks";
import type { Delivered } from "../generated/Delivered";
import type { HourTally } from "../generated/HourTally";
import type { RegionFigures } from "../generated/RegionFigures";
import type { Tally } from "../generated/Tally";
import { NONE } from "../owner/format.ts";
import { surgeText } from "../price.ts";
import { formatEth } from "../receipt.ts";

/** The figures section's text when the broker settles nothing on a chain. */
export const NOT_SETTLING = "This broker does not settle sessions on a chain: there are no verified figures to show.";

/** The regions section's text without a live host. */
export const NO_LIVE_HOST = "No live host.";

/** One headline figure: the id of the element holding its text, and an optional detail beside it. */
export interface Figure {
  id: string;
  label: string;
  text: string;
  detail?: string;
}

const weiOf = (wei: string | null): bigint | null => (wei !== null && /^\d+$/.test(wei) ? BigInt(wei) : null);

/** `part ÷ whole` as a percentage to a tenth, rounded half up, a whole one without decimals: "40%", "66.7%"; null when `whole` is 0. */
export function percentOf(part: bigint, whole: bigint): string | null {
  if (whole <= 0n) return null;
  const tenths = (part * 1000n + whole / 2n) / whole;
  const decimal = tenths % 10n === 0n ? "" : `.${tenths % 10n}`;
  return `${tenths / 10n}${decimal}%`;
}

/** Blocks delivered ÷ billed: "100%"; "—" before any block. */
export function successText(t: Tally): string {
  return percentOf(BigInt(t.blocks_delivered), BigInt(t.blocks_billed)) ?? NONE;
}

/** What checkers found: "2 of 3 checker reports (66.7%) found the service delivered". */
export function checksText(checks: Checks): string {
  if (checks.reports === 0) return "No checker has reported on a host yet.";
  const share = percentOf(BigInt(checks.delivered), BigInt(checks.reports));
  const reports = `checker report${checks.reports === 1 ? "" : "s"}`;
  return `${checks.delivered} of ${checks.reports} ${reports} (${share ?? NONE}) found the service delivered.`;
}

/** The blocks behind the success rate: "(2 of 2 blocks)". */
export function blocksDetail(t: Tally): string {
  return `(${t.blocks_delivered} of ${t.blocks_billed} block${t.blocks_billed === 1 ? "" : "s"})`;
}

const oneDecimal = (n: number | null, unit = ""): string => (n === null ? NONE : `${n.toFixed(1)}${unit}`);

/** A figure in whole milliseconds: "18 ms"; "—" when missing. */
export function msText(ms: number | null): string {
  return ms === null ? NONE : `${Math.round(ms)} ms`;
}

/** Wei (decimal) as ETH; "—" when missing. */
export function ethOrNone(wei: string | null): string {
  return wei === null ? NONE : formatEth(wei);
}

/**
 * What an hour delivered cost against the cloud's price for one: "40% of the cloud's price"; "no cloud reference set"
 * without that price, "—" before anything was paid.
 */
export function costVsCloudText(paidPerHourWei: string | null, cloudPricePerHour: string | null): string {
  const cloud = weiOf(cloudPricePerHour);
  if (cloud === null || cloud === 0n) return "no cloud reference set";
  const paid = weiOf(paidPerHourWei);
  if (paid === null) return NONE;
  return `${percentOf(paid, cloud) ?? NONE} of the cloud's price`;
}

/** The headline figures, in order, of what the network delivered. */
export function headlineFigures(delivered: Delivered, cloudPricePerHour: string | null): Figure[] {
  const t = delivered.total;
  return [
    { id: "delivered-hours", label: "Compute delivered", text: hoursText(t.delivered_hours) },
    { id: "success-rate", label: "Blocks that met the service level", text: successText(t), detail: blocksDetail(t) },
    { id: "sessions-billed", label: "Sessions billed", text: String(t.sessions) },
    { id: "mean-session", label: "Mean session", text: oneDecimal(t.mean_session_minutes, " min") },
    { id: "fps", label: "Frames a second", text: oneDecimal(t.fps) },
    { id: "click-to-photon", label: "Click-to-photon (each second's p95, median)", text: msText(t.click_to_photon_ms) },
    { id: "paid", label: "Paid to hosts", text: formatEth(t.paid_wei) },
    { id: "paid-per-hour", label: "Paid per delivered hour", text: ethOrNone(t.paid_per_hour_wei) },
    { id: "cost-vs-cloud", label: "Against the cloud", text: costVsCloudText(t.paid_per_hour_wei, cloudPricePerHour) },
  ];
}

/** The regions table's columns: each cell's class and its header. */
export const REGION_COLUMNS = [
  ["region", "Region"],
  ["hosts", "Hosts"],
  ["slots", "Slots"],
  ["sessions", "Sessions"],
  ["surge", "Demand"],
] as const;

export type RegionColumn = (typeof REGION_COLUMNS)[number][0];

/** A region's row of the table, by column. */
export function regionCells(r: RegionFigures): Record<RegionColumn, string> {
  return {
    region: r.region,
    hosts: String(r.hosts),
    slots: String(r.slots),
    sessions: String(r.sessions),
    surge: surgeText(r.surge_milli),
  };
}

/** The hours chart's caption: "0.01 h delivered in the last day". */
export function hoursCaption(hours: readonly HourTally[]): string {
  return `${hoursText(hours.reduce((total, h) => total + h.tally.delivered_hours, 0))} delivered in the last day`;
}
