// The owner's dashboard: its texts (src/owner/format.ts) and its charts' geometry (src/owner/charts.ts).

import assert from "node:assert/strict";
import { describe, test } from "node:test";

import type { CapacityVerdict } from "../src/generated/CapacityVerdict";
import type { EpochEarning } from "../src/generated/EpochEarning";
import type { HistoryBucket } from "../src/generated/HistoryBucket";
import type { OwnerEarnings } from "../src/generated/OwnerEarnings";
import type { OwnerSession } from "../src/generated/OwnerSession";
import type { OwnerView } from "../src/generated/OwnerView";
import { BASELINE, hourBars, PLOT_HEIGHT, pointsAttr, qualityLines } from "../src/owner/charts.ts";
import {
  admittedText,
  agoText,
  blocksText,
  capacityFacts,
  claimText,
  claimVisible,
  durationText,
  earningsTotals,
  ethText,
  failureText,
  hostFacts,
  hoursCaption,
  localTime,
  NONE,
  offerText,
  profileHeading,
  reputationText,
  sessionCells,
  shortId,
  TOKEN_NEEDED,
  tokenFromHash,
  trialCells,
} from "../src/owner/format.ts";

const NOW = 1_700_000_000_000;

const running: OwnerSession = {
  session_id: "s-run",
  app: "orbit",
  stream: "1920x1080@60",
  started_at_ms: NOW - 65_000,
  ended_at_ms: null,
  fps: 59.84,
  rtt_ms: 1.23,
  click_to_photon_ms: 14,
  reports: 3,
  blocks: { billed: 1, delivered: 1, committed: 0, amount: "2500000000000000" },
};

const ended: OwnerSession = {
  session_id: "s-end",
  app: "tones",
  stream: "1280x720@30",
  started_at_ms: NOW - 600_000,
  ended_at_ms: NOW - 600_000 + 5_000,
  fps: null,
  rtt_ms: null,
  click_to_photon_ms: null,
  reports: 0,
  blocks: null,
};

const epoch = (epoch_id: number, amount: string, payout: EpochEarning["payout"]): EpochEarning => ({ epoch_id, amount, payout });

const earnings = (over: Partial<OwnerEarnings> = {}): OwnerEarnings => ({
  payout_address: "0x00000000000000000000000000000000000000aa",
  can_claim: true,
  epochs: [],
  note: null,
  ...over,
});

const bucket = (i: number, served: number, confirmed: number, fps: number | null = null, c2p: number | null = null): HistoryBucket => ({
  start_ms: NOW - (96 - i) * 900_000,
  served_seconds: served,
  confirmed_seconds: confirmed,
  fps,
  click_to_photon_ms: c2p,
});

describe("the token and the banner", () => {
  test("reads the token from the fragment", () => {
    assert.equal(tokenFromHash("#token=ab12"), "ab12");
    assert.equal(tokenFromHash("#x=1&token=cd34"), "cd34");
    assert.equal(tokenFromHash(""), null);
    assert.equal(tokenFromHash("#token="), null);
  });

  test("a 401 asks for the token; other failures show their own message", () => {
    assert.equal(failureText(401, "missing token"), TOKEN_NEEDED);
    assert.equal(failureText(409, "nothing to claim"), "nothing to claim");
  });
});

describe("the host", () => {
  test("shortens its id and keeps the whole in the title", () => {
    const id = "AbCdEfGhIjKlMnOpQrStUvWxYz0123456789-_abcde";
    assert.equal(shortId(id), "AbCdEfGh…bcde");
    assert.equal(shortId("short"), "short");
    const view = { host_id: id, region: "eu-west", gpu: "RTX 4090", broker_url: "http://b", up_since_ms: NOW, offers: [] } as unknown as OwnerView;
    const [host, ...rest] = hostFacts(view);
    assert.deepEqual(host, { label: "Host", text: "AbCdEfGh…bcde", title: id });
    assert.deepEqual(
      rest.map((f) => f.text),
      ["eu-west", "RTX 4090", "http://b", localTime(NOW), "none"],
    );
  });

  test("says what it offers", () => {
    assert.equal(offerText({ profile: "game", slots: 4, max_width: 1920, max_height: 1080, max_fps: 60 }), "game: 4 slots up to 1920x1080@60");
    assert.equal(offerText({ profile: "phone", slots: 1, max_width: 720, max_height: 1280, max_fps: 30 }), "phone: 1 slot up to 720x1280@30");
  });
});

describe("the sessions", () => {
  test("durations run to the second", () => {
    assert.equal(durationText(5_400), "5 s");
    assert.equal(durationText(65_000), "1 min 05 s");
    assert.equal(durationText(3_789_000), "1 h 03 min 09 s");
    assert.equal(durationText(-10), "0 s");
  });

  test("a running session runs to now, with its figures", () => {
    assert.deepEqual(sessionCells(running, NOW), {
      app: "orbit",
      stream: "1920x1080@60",
      state: "running",
      started: localTime(NOW - 65_000),
      duration: "1 min 05 s",
      fps: "59.8",
      rtt: "1.2 ms",
      c2p: "14.0 ms",
      reports: "3",
      blocks: "1 of 1 delivered · 0.002500 ETH · 0 committed",
    });
  });

  test("an ended session runs to its end; missing figures show as a dash", () => {
    const cells = sessionCells(ended, NOW);
    assert.equal(cells.state, "ended");
    assert.equal(cells.duration, "5 s");
    assert.deepEqual([cells.fps, cells.rtt, cells.c2p, cells.blocks], [NONE, NONE, NONE, NONE]);
    assert.equal(cells.reports, "0");
  });

  test("blocks say what was delivered, billed and committed", () => {
    assert.equal(blocksText({ billed: 3, delivered: 2, committed: 3, amount: "7500000000000000" }), "2 of 3 delivered · 0.007500 ETH · 3 committed");
    assert.equal(blocksText(null), "—");
  });
});

describe("the capacity check", () => {
  const verdict: CapacityVerdict = {
    host_id: "h",
    offers_key: "k",
    claimed: [{ profile: "game", slots: 4, max_width: 1920, max_height: 1080, max_fps: 60 }],
    state: "probation",
    admitted: {},
    profiles: [],
    checker: null,
    reason: "not checked yet",
    due_ms: NOW + 250_000,
    failures: 0,
  };

  test("on probation: none admitted, the next check due", () => {
    assert.deepEqual(capacityFacts(verdict, NOW), {
      state: "probation",
      reason: "not checked yet",
      admitted: "none yet",
      checker: "none yet",
      due: "in 4 min 10 s",
      failures: "none",
    });
    assert.equal(capacityFacts({ ...verdict, due_ms: NOW - 1 }, NOW).due, "now");
  });

  test("admitted: slots per profile, the checker, nothing due", () => {
    const facts = capacityFacts({ ...verdict, state: "admitted", admitted: { game: 2, phone: 1 }, checker: "checker-1", due_ms: null }, NOW);
    assert.equal(facts.state, "admitted");
    assert.equal(facts.admitted, "game: 2 slots, phone: 1 slot");
    assert.equal(facts.checker, "checker-1");
    assert.equal(facts.due, null);
    assert.equal(admittedText({}), "none yet");
  });

  test("failed checks count", () => {
    assert.equal(capacityFacts({ ...verdict, state: "failed", failures: 1 }, NOW).failures, "1 check failed in a row");
    assert.equal(capacityFacts({ ...verdict, state: "failed", failures: 3 }, NOW).failures, "3 checks failed in a row");
  });

  test("each profile's trials", () => {
    assert.equal(profileHeading({ profile: "game", claimed: 4, admitted: 2, stream: "1920x1080@60", trials: [] }), "game at 1920x1080@60: 2 of 4 slots admitted");
    assert.deepEqual(trialCells({ sessions: 2, min_fps_centi: 5_984, max_click_to_photon_p99_ms: 31, met: true }), {
      sessions: "2",
      "min-fps": "59.8",
      "c2p-p99": "31 ms",
      met: "yes",
    });
    assert.deepEqual(trialCells({ sessions: 4, min_fps_centi: 2_000, max_click_to_photon_p99_ms: null, met: false }), {
      sessions: "4",
      "min-fps": "20.0",
      "c2p-p99": "—",
      met: "no",
    });
  });
});

describe("reputation", () => {
  test("as a rounded percentage, or a dash", () => {
    assert.equal(reputationText(1), "100%");
    assert.equal(reputationText(0.876), "88%");
    assert.equal(reputationText(null), "—");
  });
});

describe("earnings", () => {
  const epochs = [
    epoch(0, "1000000000000000", "claimed"),
    epoch(1, "2000000000000000", "claimed"),
    epoch(2, "2500000000000000", "claimable"),
    epoch(3, "500000000000000", "pending"),
    epoch(4, "9000000000000000", "void"),
  ];

  test("sums claimed, claimable and pending wei apart, leaving void epochs out", () => {
    assert.deepEqual(earningsTotals(epochs), { claimed: 3_000_000_000_000_000n, claimable: 2_500_000_000_000_000n, pending: 500_000_000_000_000n });
    assert.deepEqual(earningsTotals([]), { claimed: 0n, claimable: 0n, pending: 0n });
  });

  test("sums beyond a double's precision exactly", () => {
    const big = "123456789012345678901";
    assert.equal(earningsTotals([epoch(0, big, "claimable"), epoch(1, "1", "claimable")]).claimable, 123_456_789_012_345_678_902n);
  });

  test("amounts read as ETH", () => {
    assert.equal(ethText(3_000_000_000_000_000n), "0.003000 ETH");
    assert.equal(ethText(0n), "0.000000 ETH");
  });

  test("the Claim button shows only with the payout key and something to claim", () => {
    assert.equal(claimVisible(earnings({ epochs })), true);
    assert.equal(claimVisible(earnings({ epochs: [epoch(0, "1", "pending")] })), true);
    assert.equal(claimVisible(earnings({ epochs, can_claim: false })), false);
    assert.equal(claimVisible(earnings({ epochs: [epoch(0, "1", "claimed"), epoch(1, "1", "void")] })), false);
    assert.equal(claimVisible(earnings()), false);
  });

  test("a claim lists its epochs and transactions", () => {
    assert.equal(claimText({ epochs: [0, 1], transactions: ["0xabc"] }), "Claimed epoch(s) 0, 1 in 0xabc");
  });
});

describe("the charts", () => {
  test("bar heights are proportional to the hours served, confirmed bars overlaid from the same baseline", () => {
    const bars = hourBars([bucket(0, 900, 450), bucket(1, 1800, 1800), bucket(2, 0, 0)]);
    assert.equal(bars.length, 3);
    const [quarter, half, none] = bars;
    assert.ok(quarter && half && none);
    assert.equal(half.served.height, PLOT_HEIGHT);
    assert.equal(quarter.served.height, PLOT_HEIGHT / 2);
    assert.equal(quarter.confirmed.height, PLOT_HEIGHT / 4);
    assert.equal(none.served.height, 0);
    for (const bar of bars) {
      assert.equal(bar.served.y + bar.served.height, BASELINE);
      assert.equal(bar.confirmed.y + bar.confirmed.height, BASELINE);
    }
    assert.ok(quarter.x < half.x && half.x < none.x);
  });

  test("a whole day of buckets spans the chart, each keeping its start", () => {
    const day = Array.from({ length: 96 }, (_, i) => bucket(i, i % 4 === 0 ? 60 : 0, 0));
    const bars = hourBars(day);
    assert.equal(bars.length, 96);
    assert.deepEqual(
      bars.map((b) => b.start_ms),
      day.map((b) => b.start_ms),
    );
    const last = bars[95];
    assert.ok(last && last.x + last.width <= 640);
  });

  test("an idle day draws empty bars without dividing by zero", () => {
    const bars = hourBars(Array.from({ length: 96 }, (_, i) => bucket(i, 0, 0)));
    assert.ok(bars.every((b) => b.served.height === 0 && b.confirmed.height === 0 && b.served.y === BASELINE));
    assert.ok(bars.every((b) => Number.isFinite(b.x) && Number.isFinite(b.width)));
    assert.deepEqual(hourBars([]), []);
  });

  test("quality lines skip buckets without figures, on one scale", () => {
    const lines = qualityLines([bucket(0, 60, 60, 60, 15), bucket(1, 0, 0), bucket(2, 60, 0, 30, null), bucket(3, 60, 60, null, 30)]);
    assert.equal(lines.max, 60);
    assert.equal(lines.fps.length, 2);
    assert.equal(lines.c2p.length, 2);
    const [fps0, fps2] = lines.fps;
    const [c2p0, c2p3] = lines.c2p;
    assert.ok(fps0 && fps2 && c2p0 && c2p3);
    assert.equal(fps0.y, BASELINE - PLOT_HEIGHT);
    assert.equal(fps2.y, BASELINE - PLOT_HEIGHT / 2);
    assert.equal(c2p0.x, fps0.x);
    assert.equal(c2p3.y, fps2.y);
    assert.ok(fps0.x < fps2.x && fps2.x < c2p3.x);
    assert.equal(pointsAttr(lines.fps), `${fps0.x},${fps0.y} ${fps2.x},${fps2.y}`);
  });

  test("a day without figures draws no line", () => {
    const lines = qualityLines([bucket(0, 0, 0), bucket(1, 0, 0)]);
    assert.deepEqual(lines, { fps: [], c2p: [], max: 0 });
    assert.equal(pointsAttr(lines.fps), "");
  });

  test("captions the day's hours served and confirmed", () => {
    assert.equal(hoursCaption([bucket(0, 30, 20), bucket(1, 6, 0)]), "0.01 h served in the last day, 0.0056 h confirmed by players");
    assert.equal(hoursCaption([]), "0 h served in the last day, 0 h confirmed by players");
    assert.equal(agoText(96 * 900_000), "24 h ago");
  });
});
