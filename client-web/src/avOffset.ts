// The audio/video playout offset, from the `estimatedPlayoutTimestamp` of both `inbound-rtp` entries of one getStats()
// report. Each is the sender's NTP time (ms) of what its track plays now, known once the sender's RTCP sender reports
// map its RTP timestamps to NTP time. Pure (unit-tested); the probe reporter reads it each second.

/** The `estimatedPlayoutTimestamp` of the `kind` `inbound-rtp` entry of `report`; null when there is none. */
export function playoutTimestamp(report: RTCStatsReport, kind: "audio" | "video"): number | null {
  let found: number | null = null;
  report.forEach((entry: Record<string, unknown>) => {
    if (entry["type"] !== "inbound-rtp" || entry["kind"] !== kind) return;
    const v = entry["estimatedPlayoutTimestamp"];
    found = typeof v === "number" && Number.isFinite(v) ? v : null;
  });
  return found;
}

/** Milliseconds from the NTP epoch (1900) to the Unix epoch (1970). */
const NTP_TO_UNIX_MS = 2_208_988_800_000;

/**
 * How long ago (ms) the sound playing now was captured, at wall-clock time `nowMs` (Unix ms): `nowMs` − the audio
 * playout timestamp. It compares this machine's clock with the host's, so it means something only where they keep the
 * same time (one machine, or both on NTP); null when unknown.
 */
export function soundLagMs(report: RTCStatsReport, nowMs: number): number | null {
  const audio = playoutTimestamp(report, "audio");
  return audio === null ? null : nowMs - (audio - NTP_TO_UNIX_MS);
}

/**
 * How much later (ms) the sound plays than the picture of the same instant: video − audio playout timestamp (the
 * spec's audio − video, negated), positive when the sound lags, negative when it leads; null when either is unknown.
 */
export function avOffsetMs(report: RTCStatsReport): number | null {
  const audio = playoutTimestamp(report, "audio");
  const video = playoutTimestamp(report, "video");
  return audio === null || video === null ? null : video - audio;
}
