// The shape of the session's counters and their starting values; no side effects, so tests can import it.

import type { ProbeReport } from "./generated/ProbeReport";
import type { SessionReceipt } from "./generated/SessionReceipt";
import type { VoucherState } from "./settlement.ts";

/** The steps of a session's start, each in ms after the Play click; null until reached. */
export interface StartLegs {
  /** The broker's allocation answer (after the RTT probe). */
  allocated: number | null;
  /** The SDP offer, its ICE candidates gathered. */
  offerReady: number | null;
  /** The host's WHEP answer. */
  answered: number | null;
  /** ICE connected. */
  iceConnected: number | null;
  /** DTLS done: the peer connection connected. */
  connected: number | null;
  /** The first frame presented. */
  firstFrame: number | null;
}

/** A start none of whose steps is reached yet. */
export const noLegs = (): StartLegs => ({ allocated: null, offerReady: null, answered: null, iceConnected: null, connected: null, firstFrame: null });

export interface GridplayStats {
  sessionId: string | null;
  /** requestVideoFrameCallback callbacks since the session started. */
  framesDecoded: number;
  inputsSent: number;
  inputsAcked: number;
  /** True while the "input" data channel is open. */
  inputOpen: boolean;
  /** Time spent measuring RTT to candidate hosts before allocating (overlaps ICE gathering, after the click). */
  rttProbeMs: number | null;
  /** From the Play click to the first presented frame. */
  clickToFirstFrameMs: number | null;
  /** When each step from the Play click to the first frame finished, ms after the click. */
  startLegs: StartLegs;
  /** From sending an input to its InputApplied ack, for the latest ack. */
  lastInputLatencyMs: number | null;
  /** The frame id named by the latest ack. */
  lastAckedFrameId: number | null;
  /** The session key's Ethereum address (the allocation's `client_key`), which signs the probe reports. */
  clientKey: string | null;
  /** The session's probes endpoint on the host (`GET` with the session's token, which is never kept here: a token
   * is a capability, and this object is a global on the page). */
  probesUrl: string | null;
  /** Click-to-photon samples in ms (input event → presentation of the first frame showing it), the latest last. */
  clickToPhotonMs: number[];
  /** Signed probe reports sent, and refused by the host. */
  probeReportsSent: number;
  probeReportsRejected: number;
  lastProbeReport: ProbeReport | null;
  /** Why the host ended the last session (e.g. "app exited (status 0)"); null while none has. */
  endReason: string | null;
  /** The latest second's figures (null until measured). */
  fps: number | null;
  width: number | null;
  height: number | null;
  bitrateBps: number | null;
  rttMs: number | null;
  decodeMs: number | null;
  jitterMs: number | null;
  /** Packets lost / expected in the latest second, 0..1. */
  loss: number | null;
  /** The sound (null while no audio arrives): kbit/s received in the latest second, and the mean time its samples
   * played out in that second spent in the jitter buffer. */
  audioBitrateKbps: number | null;
  audioJitterBufferMs: number | null;
  /** The sound's totals since the stream started: packets received and lost, samples concealed (made up for lost
   * or late packets). */
  audioPacketsReceived: number | null;
  audioPacketsLost: number | null;
  audioConcealedSamples: number | null;
  /** How much later (ms) the sound plays than the picture of the same instant, negative when it plays earlier (from
   * both tracks' estimatedPlayoutTimestamp; null until the host's RTCP sender reports for both arrived). */
  avOffsetMs: number | null;
  /** How long ago the sound now playing was captured, by this machine's clock against the host's (ms; meaningful where
   * both keep the same time); null while unknown. */
  soundLagMs: number | null;
  /** The session's settlement voucher. */
  voucher: VoucherState;
  /** The latest receipt fetched for the session after it ended (GET /v1/sessions/{id}/receipt). */
  receipt: SessionReceipt | null;
}

/** Counters before anything happened. */
export function freshStats(): GridplayStats {
  return {
    sessionId: null,
    framesDecoded: 0,
    inputsSent: 0,
    inputsAcked: 0,
    inputOpen: false,
    rttProbeMs: null,
    clickToFirstFrameMs: null,
    startLegs: noLegs(),
    lastInputLatencyMs: null,
    lastAckedFrameId: null,
    clientKey: null,
    probesUrl: null,
    clickToPhotonMs: [],
    probeReportsSent: 0,
    probeReportsRejected: 0,
    lastProbeReport: null,
    endReason: null,
    fps: null,
    width: null,
    height: null,
    bitrateBps: null,
    rttMs: null,
    decodeMs: null,
    jitterMs: null,
    loss: null,
    audioBitrateKbps: null,
    audioJitterBufferMs: null,
    audioPacketsReceived: null,
    audioPacketsLost: null,
    audioConcealedSamples: null,
    avOffsetMs: null,
    soundLagMs: null,
    voucher: { state: "off" },
    receipt: null,
  };
}
