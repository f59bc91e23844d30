import assert from "node:assert/strict";
import { test } from "node:test";

import { avOffsetMs, playoutTimestamp, soundLagMs } from "../src/avOffset.ts";

/** A getStats() report holding `entries` (RTCStatsReport is a maplike of id → stats). */
const report = (...entries: Record<string, unknown>[]): RTCStatsReport =>
  new Map(entries.map((e, i) => [String(i), e])) as unknown as RTCStatsReport;

const inbound = (kind: string, estimatedPlayoutTimestamp?: unknown): Record<string, unknown> => ({
  type: "inbound-rtp",
  kind,
  ...(estimatedPlayoutTimestamp === undefined ? {} : { estimatedPlayoutTimestamp }),
});

test("reads each kind's estimatedPlayoutTimestamp from its inbound-rtp entry only", () => {
  const both = report(
    { type: "remote-outbound-rtp", kind: "audio", estimatedPlayoutTimestamp: 1 },
    inbound("video", 3_960_000_000_040),
    inbound("audio", 3_960_000_000_000),
  );
  assert.equal(playoutTimestamp(both, "audio"), 3_960_000_000_000);
  assert.equal(playoutTimestamp(both, "video"), 3_960_000_000_040);
});

test("the picture ahead of the sound (it shows a later instant) is a positive offset: the sound lags", () => {
  assert.equal(avOffsetMs(report(inbound("audio", 3_960_000_000_000), inbound("video", 3_960_000_000_040))), 40);
  assert.equal(avOffsetMs(report(inbound("audio", 3_960_000_000_025), inbound("video", 3_960_000_000_000))), -25);
  assert.equal(avOffsetMs(report(inbound("audio", 3_960_000_000_000), inbound("video", 3_960_000_000_000))), 0);
});

test("no sender reports yet (the field missing on either side), no entry, or an odd value gives null", () => {
  const at = 3_960_000_000_000;
  assert.equal(avOffsetMs(report(inbound("audio"), inbound("video", at))), null, "audio without the field");
  assert.equal(avOffsetMs(report(inbound("audio", at), inbound("video"))), null, "video without the field");
  assert.equal(avOffsetMs(report(inbound("audio"), inbound("video"))), null, "neither has it");
  assert.equal(avOffsetMs(report(inbound("video", at))), null, "no audio entry (a host without sound)");
  assert.equal(avOffsetMs(report()), null, "an empty report");
  assert.equal(avOffsetMs(report(inbound("audio", "12"), inbound("video", at))), null, "not a number");
  assert.equal(avOffsetMs(report(inbound("audio", Number.NaN), inbound("video", at))), null, "NaN");
});

test("the sound's lag is the wall clock against the NTP time of what plays", () => {
  // 2026-01-01T00:00:00Z is 1_767_225_600_000 Unix ms, 3_976_214_400_000 NTP ms.
  const playing = report(inbound("audio", 3_976_214_400_000), inbound("video", 3_976_214_400_010));
  assert.equal(soundLagMs(playing, 1_767_225_600_045), 45);
  assert.equal(soundLagMs(report(inbound("video", 3_976_214_400_000)), 1_767_225_600_045), null, "no sound");
});
