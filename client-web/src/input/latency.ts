// Input-to-ack latency: remembers when each seq was sent and measures until its InputApplied.

/** Sends older than this are forgotten (their ack was lost on the unordered channel). */
const FORGET_AFTER_MS = 10_000;

export class LatencyTracker {
  private readonly sentAt = new Map<number, number>();

  /** Records that `seq` left at `now` (ms). */
  sent(seq: number, now: number): void {
    this.sentAt.set(seq, now);
    for (const [old, at] of this.sentAt) {
      if (now - at <= FORGET_AFTER_MS) break; // insertion order: the rest are newer
      this.sentAt.delete(old);
    }
  }

  /** The latency of `seq` in ms when its ack arrives at `now`, or null if it is unknown or acked already. */
  acked(seq: number, now: number): number | null {
    const at = this.sentAt.get(seq);
    if (at === undefined) return null;
    this.sentAt.delete(seq);
    return now - at;
  }

  get pending(): number {
    return this.sentAt.size;
  }
}
