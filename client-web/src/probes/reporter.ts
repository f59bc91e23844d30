// Once a second: read the video and audio receivers' counters (getStats), build the second's probe report (the sound's
// lost packets and concealed samples included), sign it with the session key and send it on the reliable "probes"
// data channel; ping the host on the same channel for the RTT. The same reading gives the overlay its figures, the
// sound's and the A/V offset included (the offset is never reported). The pure part
// (counters → report) is separate and unit-tested.

import { audioFigures, readAudioCounters, type AudioCounters, type AudioFigures } from "../audioStats.ts";
import { avOffsetMs, soundLagMs } from "../avOffset.ts";
import type { ClientProbeMessage } from "../generated/ClientProbeMessage";
import type { HostProbeMessage } from "../generated/HostProbeMessage";
import type { ProbeReport } from "../generated/ProbeReport";
import { percentile } from "./clickToPhoton.ts";
import { NONE, type SessionKey } from "./report.ts";

const REPORT_EVERY_MS = 1000;
/** Pings unanswered for this long are forgotten. */
const PING_TIMEOUT_MS = 5000;

/** Cumulative counters of the inbound video stream (WebRTC `inbound-rtp`), seconds for times. */
export interface VideoCounters {
  framesDecoded: number;
  totalDecodeTime: number;
  packetsLost: number;
  packetsReceived: number;
  bytesReceived: number;
  /** Current inter-arrival jitter in seconds, when known. */
  jitter: number | null;
  frameWidth: number;
  frameHeight: number;
}

/** One end of a reporting interval: when, the video and audio counters, the frames presented so far (rVFC) and the
 * A/V offset then (ms, see avOffset.ts). */
export interface Mark {
  at: number;
  counters: VideoCounters | null;
  audio: AudioCounters | null;
  presentedFrames: number;
  avOffsetMs: number | null;
  /** How long ago the sound playing then was captured (ms, see avOffset.ts). */
  soundLagMs: number | null;
}

/** Reads the video `inbound-rtp` entry of a getStats() report. */
export function readVideoCounters(report: RTCStatsReport): VideoCounters | null {
  let found: VideoCounters | null = null;
  report.forEach((entry: Record<string, unknown>) => {
    if (entry["type"] !== "inbound-rtp" || entry["kind"] !== "video") return;
    const num = (key: string): number => {
      const v = entry[key];
      return typeof v === "number" && Number.isFinite(v) ? v : 0;
    };
    const jitter = entry["jitter"];
    found = {
      framesDecoded: num("framesDecoded"),
      totalDecodeTime: num("totalDecodeTime"),
      packetsLost: num("packetsLost"),
      packetsReceived: num("packetsReceived"),
      bytesReceived: num("bytesReceived"),
      jitter: typeof jitter === "number" && Number.isFinite(jitter) ? jitter : null,
      frameWidth: num("frameWidth"),
      frameHeight: num("frameHeight"),
    };
  });
  return found;
}

/** A measured value as a report integer: rounded, clamped below NONE. */
function u32(value: number): number {
  return Math.min(NONE - 1, Math.max(0, Math.round(value)));
}

/** What the overlay shows besides the report's own figures. */
export interface SecondFigures {
  /** Video bits received per second. */
  bitrateBps: number | null;
  /** Lost / expected packets in the second, 0..1. */
  loss: number | null;
  width: number;
  height: number;
  /** The sound's figures; null while no audio arrives. */
  audio: AudioFigures | null;
  /** How much later the sound plays than the picture (ms) at the interval's end; null while unknown. */
  avOffsetMs: number | null;
  /** How long ago the sound playing at the interval's end was captured (ms); null while unknown. */
  soundLagMs: number | null;
}

/**
 * The report of the interval from `prev` to `cur`: `rttMs` is the latest ping round trip (null if none answered),
 * `samples` the click-to-photon samples (ms) of inputs whose frame was presented in the interval.
 */
export function buildReport(sessionId: string, seq: number, prev: Mark, cur: Mark, rttMs: number | null, samples: readonly number[]): [ProbeReport, SecondFigures] {
  const interval = Math.max(1, Math.round(cur.at - prev.at));
  const presented = Math.max(0, cur.presentedFrames - prev.presentedFrames);
  const a = prev.counters;
  const b = cur.counters;
  const decoded = a && b ? Math.max(0, b.framesDecoded - a.framesDecoded) : 0;
  const decodeSeconds = a && b ? b.totalDecodeTime - a.totalDecodeTime : 0;
  const lost = a && b ? Math.max(0, b.packetsLost - a.packetsLost) : 0;
  const received = a && b ? Math.max(0, b.packetsReceived - a.packetsReceived) : 0;
  const loss = a && b && lost + received > 0 ? lost / (lost + received) : null;
  // The sound's losses in the interval, counted from the stream's start when it began in it.
  const sound = cur.audio;
  const soundLost = sound === null ? null : u32(Math.max(0, sound.packetsLost - (prev.audio?.packetsLost ?? 0)));
  const concealed = sound === null ? null : u32(Math.max(0, sound.concealedSamples - (prev.audio?.concealedSamples ?? 0)));
  const p50 = percentile(samples, 50);
  const p95 = percentile(samples, 95);
  const report: ProbeReport = {
    session_id: sessionId,
    seq,
    interval_ms: Math.min(60_000, interval),
    frames_presented: u32(presented),
    frames_decoded: u32(decoded),
    fps_centi: u32((presented * 100_000) / interval),
    decode_us: decoded > 0 ? u32((decodeSeconds / decoded) * 1e6) : null,
    jitter_us: b?.jitter != null ? u32(b.jitter * 1e6) : null,
    loss_ppm: loss === null ? null : u32(loss * 1e6),
    rtt_us: rttMs === null ? null : u32(rttMs * 1000),
    click_to_photon_p50_us: p50 === null ? null : u32(p50 * 1000),
    click_to_photon_p95_us: p95 === null ? null : u32(p95 * 1000),
    click_to_photon_samples: samples.length,
    audio_packets_lost: soundLost,
    audio_concealed_samples: concealed,
  };
  const figures: SecondFigures = {
    bitrateBps: a && b ? (Math.max(0, b.bytesReceived - a.bytesReceived) * 8 * 1000) / interval : null,
    loss,
    width: b?.frameWidth ?? 0,
    height: b?.frameHeight ?? 0,
    audio: audioFigures(prev.audio, cur.audio, interval),
    avOffsetMs: cur.avOffsetMs,
    soundLagMs: cur.soundLagMs,
  };
  return [report, figures];
}

export interface ReporterHooks {
  /** rVFC `presentedFrames` so far. */
  presentedFrames(): number;
  /** Called each second with the report just sent (signed) and the overlay's extra figures. */
  second(report: ProbeReport, figures: SecondFigures, rttMs: number | null): void;
  /** The host refused a report. */
  rejected(seq: number, reason: string): void;
  /** The host ended the session (its app exited, the broker ended it…). */
  ended(reason: string): void;
  /** The app copied text to its clipboard. */
  copied(text: string): void;
}

/** Sends a signed report and a ping every second while started. */
export class ProbeReporter {
  private seq = 0;
  private pingId = 0;
  private readonly pings = new Map<number, number>();
  private rttMs: number | null = null;
  private prev: Mark | null = null;
  private samples: number[] = [];
  private timer = 0;
  private busy = false;

  constructor(
    private readonly pc: RTCPeerConnection,
    private readonly channel: RTCDataChannel,
    private readonly key: SessionKey,
    private readonly sessionId: string,
    private readonly hooks: ReporterHooks,
  ) {
    channel.addEventListener("message", (e: MessageEvent<unknown>) => this.onMessage(e.data));
  }

  /** A click-to-photon sample (ms) measured now. */
  addSample(ms: number): void {
    this.samples.push(ms);
  }

  start(): void {
    if (this.timer !== 0) return;
    this.timer = window.setInterval(() => void this.tick(), REPORT_EVERY_MS);
  }

  stop(): void {
    window.clearInterval(this.timer);
    this.timer = 0;
  }

  private async tick(): Promise<void> {
    if (this.busy) return; // a slow getStats: skip rather than overlap
    this.busy = true;
    try {
      const stats = await this.pc.getStats();
      const cur: Mark = {
        at: performance.now(),
        counters: readVideoCounters(stats),
        audio: readAudioCounters(stats),
        presentedFrames: this.hooks.presentedFrames(),
        avOffsetMs: avOffsetMs(stats),
        soundLagMs: soundLagMs(stats, Date.now()),
      };
      const prev = this.prev;
      this.prev = cur;
      if (prev === null) return; // the first mark only starts the first interval
      const samples = this.samples;
      this.samples = [];
      this.seq += 1;
      const [report, figures] = buildReport(this.sessionId, this.seq, prev, cur, this.rttMs, samples);
      this.send({ type: "report", report, signature: this.key.sign(report) });
      this.ping();
      this.hooks.second(report, figures, this.rttMs);
    } catch (err) {
      console.warn("gridplay: probe report failed:", err);
    } finally {
      this.busy = false;
    }
  }

  private ping(): void {
    const now = performance.now();
    for (const [id, at] of this.pings) if (now - at > PING_TIMEOUT_MS) this.pings.delete(id);
    this.pingId = (this.pingId + 1) >>> 0;
    this.pings.set(this.pingId, now);
    this.send({ type: "ping", id: this.pingId });
  }

  private send(message: ClientProbeMessage): void {
    if (this.channel.readyState === "open") this.channel.send(JSON.stringify(message));
  }

  private onMessage(data: unknown): void {
    if (typeof data !== "string") return;
    let message: HostProbeMessage;
    try {
      message = JSON.parse(data) as HostProbeMessage;
    } catch {
      return;
    }
    if (message.type === "pong") {
      const at = this.pings.get(message.id);
      if (at === undefined) return;
      this.pings.delete(message.id);
      this.rttMs = performance.now() - at;
    } else if (message.type === "rejected") {
      this.hooks.rejected(message.seq, message.reason);
    } else if (message.type === "ended") {
      this.hooks.ended(message.reason);
    } else if (message.type === "clipboard") {
      this.hooks.copied(message.text);
    }
  }
}
