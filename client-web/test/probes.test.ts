import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";

import type { ProbeReport } from "../src/generated/ProbeReport";
import { ClickToPhoton, percentile, rtpAtOrAfter } from "../src/probes/clickToPhoton.ts";
import { PROBE_REPORT_TYPE, SessionKey, probeDomainSeparator, fromHex, recoverSigner, reportDigest, structHash, toHex } from "../src/probes/report.ts";
import { buildReport, type Mark, type VideoCounters } from "../src/probes/reporter.ts";
import { keccak_256 } from "@noble/hashes/sha3.js";

// build/test/ → client-web/ → repository root.
const vectorsFile = new URL("../../../protocol/tests/vectors/probe_report.json", import.meta.url);

interface ProbeVectors {
  private_key: string;
  address: string;
  public_key: string;
  domain_separator: string;
  type_hash: string;
  reports: { name: string; report: ProbeReport; struct_hash: string; digest: string; signature: string }[];
}

const hex = (bytes: Uint8Array): string => `0x${toHex(bytes)}`;

describe("shared vectors (protocol/tests/vectors/probe_report.json)", () => {
  const v = JSON.parse(readFileSync(vectorsFile, "utf8")) as ProbeVectors;
  const key = new SessionKey(fromHex(v.private_key));

  test("the key's address, domain separator and type hash", () => {
    assert.equal(key.address, v.address);
    assert.equal(hex(probeDomainSeparator()), v.domain_separator);
    assert.equal(hex(keccak_256(new TextEncoder().encode(PROBE_REPORT_TYPE))), v.type_hash);
    assert.ok(v.reports.length >= 2);
  });

  for (const r of v.reports) {
    test(`hashes, signs and recovers: ${r.name}`, () => {
      assert.equal(hex(structHash(r.report)), r.struct_hash);
      assert.equal(hex(reportDigest(r.report)), r.digest);
      assert.equal(key.sign(r.report), r.signature, "RFC 6979 signatures are deterministic");
      assert.equal(recoverSigner(r.report, r.signature), v.address);
    });
  }

  test("a changed report recovers another signer", () => {
    const r = v.reports[0];
    assert.ok(r);
    assert.notEqual(recoverSigner({ ...r.report, fps_centi: r.report.fps_centi + 1 }, r.signature), v.address);
  });
});

describe("session keys", () => {
  test("are fresh each time and sign what they recover to", () => {
    const a = new SessionKey();
    const b = new SessionKey();
    assert.notEqual(a.address, b.address);
    assert.match(a.address, /^0x[0-9a-f]{40}$/);
    const report: ProbeReport = {
      session_id: "s",
      seq: 1,
      interval_ms: 1000,
      frames_presented: 1,
      frames_decoded: 1,
      fps_centi: 100,
      decode_us: null,
      jitter_us: null,
      loss_ppm: null,
      rtt_us: null,
      click_to_photon_p50_us: null,
      click_to_photon_p95_us: null,
      click_to_photon_samples: 0,
      audio_packets_lost: null,
      audio_concealed_samples: null,
    };
    const signature = a.sign(report);
    assert.match(signature, /^0x[0-9a-f]{128}(1b|1c)$/);
    assert.equal(recoverSigner(report, signature), a.address);
  });
});

describe("click-to-photon", () => {
  test("an ack before its frame: measured when the frame is shown", () => {
    const c = new ClickToPhoton();
    c.sent(1, 1000);
    assert.equal(c.acked(1, 9000), null);
    assert.deepEqual(c.presented(7500, 1010), [], "an earlier frame does not show it");
    assert.deepEqual(c.presented(9000, 1018), [18]);
    assert.deepEqual(c.presented(10500, 1035), [], "measured once");
  });

  test("a frame before its ack: measured when the ack arrives", () => {
    const c = new ClickToPhoton();
    c.presented(3000, 500);
    c.sent(4, 505);
    c.presented(4500, 517);
    c.presented(6000, 534);
    assert.equal(c.acked(4, 4500), 12);
    assert.equal(c.acked(4, 4500), null, "a duplicate ack is ignored");
  });

  test("a skipped frame: the first shown frame after it counts", () => {
    const c = new ClickToPhoton();
    c.sent(1, 0);
    c.acked(1, 1500);
    assert.deepEqual(c.presented(3000, 40), [40]);
  });

  test("an ack older than every remembered frame gives no sample, and RTP timestamps wrap", () => {
    const c = new ClickToPhoton();
    c.presented(0xffffff00, 100);
    c.sent(2, 90);
    assert.equal(c.acked(2, 0xfffffe00), null, "older than the oldest frame remembered");
    c.sent(3, 95);
    assert.equal(c.acked(3, 0x100), null);
    assert.deepEqual(c.presented(0x100, 130), [35], "after the wrap");
    assert.ok(rtpAtOrAfter(5, 0xfffffff0));
    assert.ok(!rtpAtOrAfter(0xfffffff0, 5));
  });

  test("unknown inputs give nothing", () => {
    assert.equal(new ClickToPhoton().acked(99, 1), null);
  });

  test("percentiles are nearest rank", () => {
    assert.equal(percentile([], 50), null);
    assert.equal(percentile([4, 1, 3, 2], 50), 2);
    assert.equal(percentile(Array.from({ length: 20 }, (_, i) => i + 1), 95), 19);
  });
});

describe("reports from receiver counters", () => {
  const counters = (over: Partial<VideoCounters>): VideoCounters => ({
    framesDecoded: 0,
    totalDecodeTime: 0,
    packetsLost: 0,
    packetsReceived: 0,
    bytesReceived: 0,
    jitter: null,
    frameWidth: 1280,
    frameHeight: 720,
    ...over,
  });

  test("a second of 60 fps with some loss and three samples", () => {
    const prev: Mark = { at: 1000, presentedFrames: 100, audio: null, avOffsetMs: null, soundLagMs: null, counters: counters({ framesDecoded: 100, totalDecodeTime: 0.2, packetsLost: 1, packetsReceived: 1000, bytesReceived: 1e6 }) };
    const cur: Mark = {
      at: 2000,
      presentedFrames: 160,
      audio: null,
      avOffsetMs: 12,
      soundLagMs: 70,
      counters: counters({ framesDecoded: 160, totalDecodeTime: 0.32, packetsLost: 3, packetsReceived: 1998, bytesReceived: 1.5e6, jitter: 0.0012 }),
    };
    const [report, figures] = buildReport("s1", 7, prev, cur, 1.25, [10, 30, 20]);
    assert.deepEqual(report, {
      session_id: "s1",
      seq: 7,
      interval_ms: 1000,
      frames_presented: 60,
      frames_decoded: 60,
      fps_centi: 6000,
      decode_us: 2000,
      jitter_us: 1200,
      loss_ppm: 2000,
      rtt_us: 1250,
      click_to_photon_p50_us: 20_000,
      click_to_photon_p95_us: 30_000,
      click_to_photon_samples: 3,
      audio_packets_lost: null,
      audio_concealed_samples: null,
    });
    assert.deepEqual(figures, { bitrateBps: 4e6, loss: 0.002, width: 1280, height: 720, audio: null, avOffsetMs: 12, soundLagMs: 70 });
  });

  test("nothing measured yet gives nulls, not zeros", () => {
    const mark: Mark = { at: 0, presentedFrames: 0, counters: null, audio: null, avOffsetMs: null, soundLagMs: null };
    const [report] = buildReport("s", 1, mark, { ...mark, at: 1000 }, null, []);
    assert.equal(report.fps_centi, 0);
    const keys = ["decode_us", "jitter_us", "loss_ppm", "rtt_us", "click_to_photon_p50_us", "click_to_photon_p95_us", "audio_packets_lost", "audio_concealed_samples"] as const;
    for (const key of keys) {
      assert.equal(report[key], null, key);
    }
  });
});
