// The network page: its texts (src/network/format.ts) and its charts' geometry (src/network/charts.ts).

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import { BASELINE, CHART, PLOT_HEIGHT } from "../src/charts.ts";
import type { Delivered } from "../src/generated/Delivered";
import type { HourTally } from "../src/generated/HourTally";
import type { Tally } from "../src/generated/Tally";
import { deliveredBars, maxDeliveredHours, qualityLines } from "../src/network/charts.ts";
import { hoursText } from "../src/units.ts";
import {
  blocksDetail,
  checksText,
  costVsCloudText,
  headlineFigures,
  hoursCaption,
  NOT_SETTLING,
  percentOf,
  regionCells,
  successText,
} from "../src/network/format.ts";

const NOW = 1_700_000_000_000;
const HOUR_MS = 3_600_000;

const tally = (over: Partial<Tally> = {}): Tally => ({
  blocks_billed: 2,
  blocks_delivered: 2,
  success_rate: 1,
  delivered_hours: 0.0125,
  sessions: 2,
  mean_session_minutes: 1.5,
  paid_wei: "5000000000000000",
  paid_per_hour_wei: "400000000000000000",
  fps: 59.84,
  click_to_photon_ms: 17.6,
  ...over,
});

const EMPTY = tally({
  blocks_billed: 0,
  blocks_delivered: 0,
  success_rate: null,
  delivered_hours: 0,
  sessions: 0,
  mean_session_minutes: null,
  paid_wei: "0",
  paid_per_hour_wei: null,
  fps: null,
  click_to_photon_ms: null,
});

/** The last day, an hour a bucket, oldest first: hour `i` tallies `at(i)`, empty hours elsewhere. */
const day = (at: (i: number) => Partial<Tally> | null = () => null): HourTally[] =>
  Array.from({ length: 24 }, (_, i) => {
    const over = at(i);
    return { start_ms: NOW - (24 - i) * HOUR_MS, tally: over === null ? EMPTY : tally(over) };
  });

const figureTexts = (delivered: Delivered, cloud: string | null): Record<string, string> =>
  Object.fromEntries(headlineFigures(delivered, cloud).map((f) => [f.id, f.text]));

describe("the headline figures", () => {
  test("compute hours to two decimals", () => {
    assert.equal(hoursText(0.0125), "0.01 h");
    assert.equal(hoursText(0), "0 h");
    assert.equal(hoursText(0.0036111), "0.0036 h", "a short session still shows");
    assert.equal(hoursText(12.345), "12.35 h");
  });

  test("percentages to a tenth, whole ones without decimals", () => {
    assert.equal(percentOf(2n, 2n), "100%");
    assert.equal(percentOf(2n, 5n), "40%");
    assert.equal(percentOf(2n, 3n), "66.7%");
    assert.equal(percentOf(1n, 3n), "33.3%");
    assert.equal(percentOf(0n, 4n), "0%");
    assert.equal(percentOf(1n, 0n), null);
  });

  test("the success rate counts blocks delivered of those billed", () => {
    assert.equal(successText(tally()), "100%");
    assert.equal(successText(tally({ blocks_billed: 3, blocks_delivered: 2 })), "66.7%");
    assert.equal(successText(EMPTY), "—");
    assert.equal(blocksDetail(tally()), "(2 of 2 blocks)");
    assert.equal(blocksDetail(tally({ blocks_billed: 1, blocks_delivered: 0 })), "(0 of 1 block)");
  });

  test("each figure under its id", () => {
    assert.deepEqual(figureTexts({ total: tally(), hours: day() }, "1000000000000000000"), {
      "delivered-hours": "0.01 h",
      "success-rate": "100%",
      "sessions-billed": "2",
      "mean-session": "1.5 min",
      fps: "59.8",
      "click-to-photon": "18 ms",
      paid: "0.005000 ETH",
      "paid-per-hour": "0.400000 ETH",
      "cost-vs-cloud": "40% of the cloud's price",
    });
    assert.equal(headlineFigures({ total: tally(), hours: day() }, null).find((f) => f.id === "success-rate")?.detail, "(2 of 2 blocks)");
  });

  test("before anything was billed, missing figures show as a dash", () => {
    const texts = figureTexts({ total: EMPTY, hours: day() }, "1000000000000000000");
    assert.deepEqual(
      [texts["success-rate"], texts["mean-session"], texts["fps"], texts["click-to-photon"], texts["paid-per-hour"], texts["cost-vs-cloud"]],
      ["—", "—", "—", "—", "—", "—"],
    );
    assert.equal(texts["paid"], "0.000000 ETH");
    assert.equal(texts["delivered-hours"], "0 h");
  });

  test("the not-settling text", () => {
    assert.equal(NOT_SETTLING, "This broker does not settle sessions on a chain: there are no verified figures to show.");
  });
});

describe("the cost against the cloud", () => {
  test("paid per hour as a share of the cloud's price per hour", () => {
    assert.equal(costVsCloudText("400000000000000000", "1000000000000000000"), "40% of the cloud's price");
    assert.equal(costVsCloudText("2000000000000000000", "1000000000000000000"), "200% of the cloud's price");
    assert.equal(costVsCloudText("1", "3"), "33.3% of the cloud's price");
  });

  test("computes exactly beyond a double's precision", () => {
    // Just under half of a tenth of a percent: a double rounds 10^17 − 1 up to 10^17, and the share up to 0.1%.
    assert.equal(costVsCloudText("99999999999999999", "200000000000000000000"), "0% of the cloud's price");
    assert.equal(costVsCloudText("100000000000000000", "200000000000000000000"), "0.1% of the cloud's price");
    assert.equal(costVsCloudText("123456789012345678901234", "246913578024691357802468"), "50% of the cloud's price");
    assert.equal(costVsCloudText("123456789012345678901235", "1234567890123456789012340"), "10% of the cloud's price");
  });

  test("without a cloud reference, or before anything was paid", () => {
    assert.equal(costVsCloudText("400000000000000000", null), "no cloud reference set");
    assert.equal(costVsCloudText(null, null), "no cloud reference set");
    assert.equal(costVsCloudText("400000000000000000", "0"), "no cloud reference set");
    assert.equal(costVsCloudText(null, "1000000000000000000"), "—");
  });
});

describe("the regions", () => {
  test("a row per region, its demand as a factor", () => {
    assert.deepEqual(regionCells({ region: "eu-west", hosts: 2, slots: 8, sessions: 3, surge_milli: 1000 }), {
      region: "eu-west",
      hosts: "2",
      slots: "8",
      sessions: "3",
      surge: "×1",
    });
    assert.equal(regionCells({ region: "us-east", hosts: 1, slots: 4, sessions: 4, surge_milli: 1250 }).surge, "×1.25");
    assert.equal(regionCells({ region: "ap", hosts: 1, slots: 1, sessions: 1, surge_milli: 2000 }).surge, "×2");
  });
});

describe("the charts", () => {
  test("24 hourly bars span the chart, each keeping its start", () => {
    const hours = day((i) => (i === 23 ? { delivered_hours: 0.5 } : i === 11 ? { delivered_hours: 0.25 } : null));
    const bars = deliveredBars(hours);
    assert.equal(bars.length, 24);
    assert.deepEqual(
      bars.map((b) => b.start_ms),
      hours.map((h) => h.start_ms),
    );
    assert.equal(maxDeliveredHours(hours), 0.5);
    assert.equal(bars[23]?.delivered.height, PLOT_HEIGHT);
    assert.equal(bars[11]?.delivered.height, PLOT_HEIGHT / 2);
    assert.equal(bars[0]?.delivered.height, 0);
    for (const bar of bars) assert.equal(bar.delivered.y + bar.delivered.height, BASELINE);
    assert.ok(bars.every((b, i) => i === 0 || (bars[i - 1]?.x ?? Infinity) < b.x));
    const last = bars[23];
    assert.ok(last && last.x + last.width <= CHART.width);
  });

  test("an idle day draws empty bars without dividing by zero", () => {
    const bars = deliveredBars(day());
    assert.equal(bars.length, 24);
    assert.ok(bars.every((b) => b.delivered.height === 0 && b.delivered.y === BASELINE));
    assert.ok(bars.every((b) => [b.x, b.width, b.delivered.y, b.delivered.height].every(Number.isFinite)));
    assert.deepEqual(deliveredBars([]), []);
    assert.deepEqual(qualityLines(day()), { fps: [], c2p: [], max: 0 });
  });

  test("quality lines skip hours without figures, on one scale", () => {
    const lines = qualityLines(day((i) => (i === 2 ? { fps: 60, click_to_photon_ms: 15 } : i === 5 ? { fps: 30, click_to_photon_ms: null } : null)));
    assert.equal(lines.max, 60);
    assert.equal(lines.fps.length, 2);
    assert.equal(lines.c2p.length, 1);
    assert.equal(lines.fps[0]?.y, BASELINE - PLOT_HEIGHT);
    assert.equal(lines.fps[1]?.y, BASELINE - PLOT_HEIGHT / 2);
    assert.equal(lines.c2p[0]?.x, lines.fps[0]?.x);
  });

  test("captions the day's compute hours", () => {
    assert.equal(hoursCaption(day((i) => (i < 2 ? { delivered_hours: 0.006 } : null))), "0.01 h delivered in the last day");
    assert.equal(hoursCaption([]), "0 h delivered in the last day");
  });
});

describe("what checkers found", () => {
  test("the share of reports that found the service delivered", () => {
    assert.equal(checksText({ reports: 0, delivered: 0 }), "No checker has reported on a host yet.");
    assert.equal(checksText({ reports: 1, delivered: 1 }), "1 of 1 checker report (100%) found the service delivered.");
    assert.equal(checksText({ reports: 3, delivered: 2 }), "2 of 3 checker reports (66.7%) found the service delivered.");
  });
});
