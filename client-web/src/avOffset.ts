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

/**
 * How much later (ms) the sound plays than the picture of the same instant: video − audio playout timestamp (the
 * spec's audio − video, negated), positive when the sound lags, negative when it leads; null when either is unknown.
 */
export function avOffsetMs(report: RTCStatsReport): number | null {
  const audio = playoutTimestamp(report, "audio");
  const video = playoutTimestamp(report, "video");
  return audio === null || video === null ? null : video - audio;
}
