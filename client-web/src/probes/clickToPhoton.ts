// Click-to-photon: from an input event to the presentation of the first frame that reflects it.
//
// The host acks each input with the RTP timestamp of the first frame that reflects it (InputApplied 0x81), and
// requestVideoFrameCallback reports the RTP timestamp and presentation time of each presented frame. An input is
// shown by the first presented frame whose RTP timestamp is at or after the acked one (the acked frame itself, or a
// later one when the compositor skipped it). Ack and frame may arrive in either order. No DOM: times are passed in
// (performance.now() time base, milliseconds).

/** Inputs or frames older than this are forgotten (their ack or frame never came). */
const FORGET_AFTER_MS = 10_000;
/** Presented frames remembered for acks that arrive after their frame: 2 s at 60 fps. */
const FRAMES_KEPT = 120;

/** Whether RTP timestamp `a` is at or after `b`, across the 32-bit wrap. */
export function rtpAtOrAfter(a: number, b: number): boolean {
  return ((a - b) >>> 0) < 0x80000000;
}

export class ClickToPhoton {
  /** seq → when the input event happened. */
  private readonly inputAt = new Map<number, number>();
  /** Acked inputs whose frame has not been presented yet. */
  private waiting: { rtp: number; at: number }[] = [];
  /** Recently presented frames, oldest first. */
  private readonly frames: { rtp: number; shownAt: number }[] = [];

  /** Records that input `seq` happened at `eventTime`. */
  sent(seq: number, eventTime: number): void {
    this.inputAt.set(seq, eventTime);
    for (const [old, at] of this.inputAt) {
      if (eventTime - at <= FORGET_AFTER_MS) break; // insertion order: the rest are newer
      this.inputAt.delete(old);
    }
  }

  /** Input `seq` is first reflected by the frame with RTP timestamp `rtp`; returns its sample (ms) if that frame was shown already. */
  acked(seq: number, rtp: number): number | null {
    const at = this.inputAt.get(seq);
    if (at === undefined) return null;
    this.inputAt.delete(seq);
    const oldest = this.frames[0];
    if (oldest !== undefined) {
      // A frame older than every frame remembered was shown (or skipped) too long ago to tell when: no sample.
      if (!rtpAtOrAfter(rtp, oldest.rtp)) return null;
      const frame = this.frames.find((f) => rtpAtOrAfter(f.rtp, rtp));
      if (frame !== undefined) return frame.shownAt - at;
    }
    this.waiting.push({ rtp, at });
    return null;
  }

  /** A frame with RTP timestamp `rtp` is displayed at `shownAt`; returns the samples (ms) of the inputs it is the first to show. */
  presented(rtp: number, shownAt: number): number[] {
    this.frames.push({ rtp, shownAt });
    if (this.frames.length > FRAMES_KEPT) this.frames.shift();
    const samples: number[] = [];
    this.waiting = this.waiting.filter((w) => {
      if (rtpAtOrAfter(rtp, w.rtp)) {
        samples.push(shownAt - w.at);
        return false;
      }
      return shownAt - w.at <= FORGET_AFTER_MS;
    });
    return samples;
  }
}

/** The `p`th percentile by nearest rank of `values` (unsorted), or null when empty. */
export function percentile(values: readonly number[], p: number): number | null {
  if (values.length === 0) return null;
  const sorted = [...values].sort((a, b) => a - b);
  const rank = Math.max(1, Math.ceil((sorted.length * p) / 100));
  return sorted[rank - 1] ?? null;
}
