// The sound's receive figures for the stats overlay, from the audio `inbound-rtp` entry of getStats(): bitrate, time in
// the jitter buffer, packets lost and samples concealed. Pure (unit-tested); the probe reporter reads them each second.

/** Cumulative counters of the inbound audio stream, seconds for times. */
export interface AudioCounters {
  bytesReceived: number;
  packetsReceived: number;
  packetsLost: number;
  /** Total time the emitted samples spent in the jitter buffer. */
  jitterBufferDelay: number;
  jitterBufferEmittedCount: number;
  /** Samples the receiver made up for lost or late packets. */
  concealedSamples: number;
}

/** What the overlay shows of the sound. */
export interface AudioFigures {
  /** Audio kbit received per second in the interval; null without an earlier reading. */
  bitrateKbps: number | null;
  /** Mean time the samples played out in the interval spent in the jitter buffer (ms); null when none played. */
  jitterBufferMs: number | null;
  /** Totals since the stream started. */
  packetsReceived: number;
  packetsLost: number;
  concealedSamples: number;
}

/** Reads the audio `inbound-rtp` entry of a getStats() report; null when there is none (no sound yet, or a host
 * without sound). */
export function readAudioCounters(report: RTCStatsReport): AudioCounters | null {
  let found: AudioCounters | null = null;
  report.forEach((entry: Record<string, unknown>) => {
    if (entry["type"] !== "inbound-rtp" || entry["kind"] !== "audio") return;
    const num = (key: string): number => {
      const v = entry[key];
      return typeof v === "number" && Number.isFinite(v) ? v : 0;
    };
    found = {
      bytesReceived: num("bytesReceived"),
      packetsReceived: num("packetsReceived"),
      packetsLost: num("packetsLost"),
      jitterBufferDelay: num("jitterBufferDelay"),
      jitterBufferEmittedCount: num("jitterBufferEmittedCount"),
      concealedSamples: num("concealedSamples"),
    };
  });
  return found;
}

/** The figures of the `intervalMs` from `prev` (null: the stream's start) to `cur`; null without a current reading. */
export function audioFigures(prev: AudioCounters | null, cur: AudioCounters | null, intervalMs: number): AudioFigures | null {
  if (cur === null) return null;
  const emitted = cur.jitterBufferEmittedCount - (prev?.jitterBufferEmittedCount ?? 0);
  const delay = cur.jitterBufferDelay - (prev?.jitterBufferDelay ?? 0);
  return {
    bitrateKbps: prev === null ? null : (Math.max(0, cur.bytesReceived - prev.bytesReceived) * 8) / Math.max(1, intervalMs),
    jitterBufferMs: emitted > 0 && delay >= 0 ? (delay / emitted) * 1000 : null,
    packetsReceived: cur.packetsReceived,
    packetsLost: Math.max(0, cur.packetsLost),
    concealedSamples: cur.concealedSamples,
  };
}
