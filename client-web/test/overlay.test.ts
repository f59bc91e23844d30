import assert from "node:assert/strict";
import { test } from "node:test";

import { overlayRows } from "../src/overlay.ts";
import { freshStats, type GridplayStats } from "../src/statsShape.ts";

const base: GridplayStats = { ...freshStats(), sessionId: "s", inputOpen: true };

const values = (s: GridplayStats): Record<string, string> => Object.fromEntries(overlayRows(s).map((r) => [r.key, r.value]));

test("shows every figure the overlay promises", () => {
  const shown = values({
    ...base,
    fps: 59.94,
    width: 1280,
    height: 720,
    bitrateBps: 4_250_000,
    rttMs: 0.84,
    decodeMs: 2.1,
    jitterMs: 1.2,
    loss: 0.0015,
    audioBitrateKbps: 64.4,
    audioJitterBufferMs: 41.24,
    audioPacketsLost: 2,
    audioConcealedSamples: 960,
    avOffsetMs: 4.4,
    clickToPhotonMs: [12, 14, 30, 16],
  });
  assert.deepEqual(shown, {
    fps: "59.9",
    resolution: "1280×720",
    bitrate: "4.25 Mbit/s",
    rtt: "0.8 ms",
    decode: "2.1 ms",
    "c2p-p50": "14.0 ms",
    "c2p-p95": "30.0 ms",
    "c2p-n": "4",
    loss: "0.15 %",
    jitter: "1.2 ms",
    "audio-bitrate": "64 kbit/s",
    "audio-buffer": "41.2 ms",
    "audio-lost": "2",
    "audio-concealed": "960",
    "av-offset": "+4 ms",
    voucher: "–",
  });
});

test("unmeasured figures show a dash, and percentiles use the latest 100 samples", () => {
  const shown = values({ ...base, clickToPhotonMs: [...Array<number>(50).fill(500), ...Array<number>(100).fill(10)] });
  assert.equal(shown["fps"], "–");
  assert.equal(shown["rtt"], "–");
  assert.equal(shown["audio-bitrate"], "–", "no sound yet");
  assert.equal(shown["audio-lost"], "–");
  assert.equal(shown["av-offset"], "–", "no sender reports yet");
  assert.equal(shown["c2p-p95"], "10.0 ms");
  assert.equal(shown["c2p-n"], "100");
});

test("the A/V offset is signed: + when the sound lags the picture, − when it leads", () => {
  assert.equal(values({ ...base, avOffsetMs: -12.6 })["av-offset"], "-13 ms");
  assert.equal(values({ ...base, avOffsetMs: 0.4 })["av-offset"], "0 ms");
  assert.equal(values({ ...base, avOffsetMs: -0.4 })["av-offset"], "0 ms");
});

test("the voucher row names the demo player", () => {
  const player = "0x70997970c51812dc3a010c7d01b50e0d17dc79c8";
  assert.equal(values({ ...base, voucher: { state: "accepted", player, kind: "demo player" } })["voucher"], "demo player 0x7099…79c8: voucher accepted");
  assert.equal(values({ ...base, voucher: { state: "failed", reason: "expired" } })["voucher"], "voucher failed: expired");
});
