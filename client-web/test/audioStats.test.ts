import assert from "node:assert/strict";
import { test } from "node:test";

import { audioFigures, readAudioCounters, type AudioCounters } from "../src/audioStats.ts";
import { buildReport, type Mark } from "../src/probes/reporter.ts";

/** A getStats() report holding `entries` (RTCStatsReport is a maplike of id → stats). */
const report = (...entries: Record<string, unknown>[]): RTCStatsReport =>
  new Map(entries.map((e, i) => [String(i), e])) as unknown as RTCStatsReport;

const counters = (over: Partial<AudioCounters>): AudioCounters => ({
  bytesReceived: 0,
  packetsReceived: 0,
  packetsLost: 0,
  jitterBufferDelay: 0,
  jitterBufferEmittedCount: 0,
  concealedSamples: 0,
  ...over,
});

test("reads the audio inbound-rtp entry and nothing else", () => {
  const read = readAudioCounters(
    report(
      { type: "inbound-rtp", kind: "video", bytesReceived: 9e6, packetsReceived: 9000 },
      { type: "codec", mimeType: "audio/opus" },
      {
        type: "inbound-rtp",
        kind: "audio",
        bytesReceived: 80_000,
        packetsReceived: 500,
        packetsLost: 3,
        jitterBufferDelay: 960,
        jitterBufferEmittedCount: 24_000,
        concealedSamples: 480,
        jitter: 0.002,
      },
    ),
  );
  assert.deepEqual(read, counters({ bytesReceived: 80_000, packetsReceived: 500, packetsLost: 3, jitterBufferDelay: 960, jitterBufferEmittedCount: 24_000, concealedSamples: 480 }));
});

test("no audio entry (a host without sound) reads as null; missing or odd counters read as 0", () => {
  assert.equal(readAudioCounters(report({ type: "inbound-rtp", kind: "video" })), null);
  assert.deepEqual(
    readAudioCounters(report({ type: "inbound-rtp", kind: "audio", bytesReceived: "12", packetsReceived: Number.NaN, packetsLost: 1 })),
    counters({ packetsLost: 1 }),
  );
});

test("a second of 50 packets of Opus: bitrate, jitter buffer delay per sample, totals", () => {
  const prev = counters({ bytesReceived: 40_000, packetsReceived: 500, packetsLost: 1, jitterBufferDelay: 2_400, jitterBufferEmittedCount: 48_000, concealedSamples: 0 });
  // 48 000 samples played out in the second, 1 920 s of buffer time between them: 40 ms each.
  const cur = counters({ bytesReceived: 48_000, packetsReceived: 600, packetsLost: 2, jitterBufferDelay: 4_320, jitterBufferEmittedCount: 96_000, concealedSamples: 960 });
  assert.deepEqual(audioFigures(prev, cur, 1000), {
    bitrateKbps: 64,
    jitterBufferMs: 40,
    packetsReceived: 600,
    packetsLost: 2,
    concealedSamples: 960,
  });
});

test("the first reading: no bitrate yet, the jitter buffer delay since the start", () => {
  const figures = audioFigures(null, counters({ bytesReceived: 8_000, jitterBufferDelay: 3, jitterBufferEmittedCount: 96 }), 1000);
  assert.equal(figures?.bitrateKbps, null);
  assert.equal(figures?.jitterBufferMs, 31.25);
});

test("nothing played out in the interval, or no reading at all, gives nulls rather than zeros or NaN", () => {
  const still = counters({ bytesReceived: 100, jitterBufferDelay: 5, jitterBufferEmittedCount: 100 });
  assert.equal(audioFigures(still, still, 1000)?.jitterBufferMs, null);
  assert.equal(audioFigures(still, counters({}), 1000)?.bitrateKbps, 0, "counters reset (a new receiver) never go negative");
  assert.equal(audioFigures(still, null, 1000), null);
  assert.equal(audioFigures(counters({}), counters({ packetsLost: -1 }), 1000)?.packetsLost, 0, "duplicates can make packetsLost negative");
});

test("the probe reporter's second carries the sound's figures beside the video's", () => {
  const mark = (at: number, audio: AudioCounters | null): Mark => ({ at, presentedFrames: 0, counters: null, audio, avOffsetMs: null, soundLagMs: null });
  const [, figures] = buildReport("s", 1, mark(0, counters({})), mark(500, counters({ bytesReceived: 4_000 })), null, []);
  assert.equal(figures.audio?.bitrateKbps, 64);
  const [, silent] = buildReport("s", 2, mark(0, null), mark(1000, null), null, []);
  assert.equal(silent.audio, null);
});

test("the signed report carries the sound's losses of its second: packets lost and samples concealed", () => {
  const mark = (at: number, audio: AudioCounters | null): Mark => ({ at, presentedFrames: 0, counters: null, audio, avOffsetMs: null, soundLagMs: null });
  const before = counters({ packetsLost: 3, concealedSamples: 1_440 });
  const [report] = buildReport("s", 3, mark(0, before), mark(1000, counters({ packetsLost: 5, concealedSamples: 2_400 })), null, []);
  assert.deepEqual([report.audio_packets_lost, report.audio_concealed_samples], [2, 960]);
  // The sound's first second counts from its start; no sound at all reports nulls, not zeros.
  const [first] = buildReport("s", 1, mark(0, null), mark(1000, counters({ packetsLost: 1, concealedSamples: 480 })), null, []);
  assert.deepEqual([first.audio_packets_lost, first.audio_concealed_samples], [1, 480]);
  const [none] = buildReport("s", 2, mark(0, null), mark(1000, null), null, []);
  assert.deepEqual([none.audio_packets_lost, none.audio_concealed_samples], [null, null]);
  // Counters that go backwards (a new receiver) never make a negative figure.
  const [reset] = buildReport("s", 4, mark(0, before), mark(1000, counters({})), null, []);
  assert.deepEqual([reset.audio_packets_lost, reset.audio_concealed_samples], [0, 0]);
});
