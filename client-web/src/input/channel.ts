// Sends input events on the "input" data channel with sequence numbers and measures their acks; acks that carry
// the frame's RTP timestamp feed the click-to-photon tracker.

import type { InputKind } from "../generated/InputKind";
import type { ClickToPhoton } from "../probes/clickToPhoton.ts";
import { stats } from "../stats.ts";
import { CodecError, decodeApplied, encodeInput } from "./codec.ts";
import { LatencyTracker } from "./latency.ts";

export class InputChannel {
  private seq = 0;
  private readonly latency = new LatencyTracker();

  /** `photons` tracks click-to-photon; `sample` gets each sample (ms) an ack completes. */
  constructor(
    private readonly channel: RTCDataChannel,
    private readonly photons?: ClickToPhoton,
    private readonly sample: (ms: number) => void = () => undefined,
  ) {
    channel.binaryType = "arraybuffer";
    channel.addEventListener("open", () => (stats.inputOpen = true));
    channel.addEventListener("close", () => (stats.inputOpen = false));
    channel.addEventListener("message", (e: MessageEvent<unknown>) => this.onMessage(e.data));
  }

  /** Sends one event that happened at `at` (default now) if the channel is open; false when it was not (input made
   * before it opens is dropped). */
  send(kind: InputKind, at: number = performance.now()): boolean {
    if (this.channel.readyState !== "open") return false;
    this.seq = this.seq >= 0xffffffff ? 1 : this.seq + 1;
    const bytes = encodeInput({ seq: this.seq, kind });
    this.channel.send(bytes);
    this.latency.sent(this.seq, performance.now());
    this.photons?.sent(this.seq, at);
    stats.inputsSent += 1;
    return true;
  }

  private onMessage(data: unknown): void {
    if (!(data instanceof ArrayBuffer)) return;
    try {
      const applied = decodeApplied(new Uint8Array(data));
      if (applied.rtp_timestamp !== undefined) {
        const shown = this.photons?.acked(applied.seq, applied.rtp_timestamp) ?? null;
        if (shown !== null) this.sample(shown);
      }
      const ms = this.latency.acked(applied.seq, performance.now());
      if (ms === null) return;
      stats.inputsAcked += 1;
      stats.lastInputLatencyMs = ms;
      stats.lastAckedFrameId = applied.frame_id;
    } catch (err) {
      if (!(err instanceof CodecError)) throw err;
      console.warn("gridplay: bad message on the input channel:", err.message);
    }
  }
}
