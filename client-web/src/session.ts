// One play session: allocate at the broker, connect to the host over WHEP, stream, end.

import { createSession, deleteSession } from "./api.ts";
import { onEachFrame } from "./frames.ts";
import type { AllocateResponse } from "./generated/AllocateResponse";
import type { App } from "./generated/App";
import { captureInput } from "./input/capture.ts";
import { SharedClipboard } from "./input/clipboard.ts";
import { InputChannel } from "./input/channel.ts";
import { attachTrack, createPeer, gatheredOffer, iceConfiguration, icePolicyOf, requireRelay, type Peer } from "./peer.ts";
import { ClickToPhoton } from "./probes/clickToPhoton.ts";
import { SessionKey } from "./probes/report.ts";
import { ProbeReporter } from "./probes/reporter.ts";
import { probe } from "./rtt.ts";
import { describeVoucher, type Eip1193Provider, fetchSettlement, sendVoucher, type Settled } from "./settlement.ts";
import { playStream } from "./sound.ts";
import { recordClickToPhoton, resetStats, stats } from "./stats.ts";
import { whepDelete, whepOffer } from "./whep.ts";

const FRAME_SIZE = {
  game: { width: 1280, height: 720 },
  phone: { width: 720, height: 1280 },
} as const;
const FPS = 60;
/** A connected session that shows no frame for this long has failed. */
const FIRST_FRAME_TIMEOUT_MS = 20_000;
/** How long gathering may wait for STUN and TURN servers' answers. */
const ICE_SERVERS_GATHER_MS = 5_000;

export interface SessionHooks {
  /** Progress for the player; "" once video shows. */
  status(text: string): void;
  /** The session broke after it started (connection lost, no video). */
  failed(error: Error): void;
  /** The settlement voucher's state, in words for the player ("" when the broker settles nothing). */
  voucher(text: string): void;
}

/**
 * Allocates and connects; `clickedAt` (performance.now() time base) starts the click-to-first-frame clock. A fresh
 * secp256k1 session key is named in the allocation (`client_key`): the broker puts it in the session token, and the
 * host accepts only probe reports it signed.
 * ICE gathering (~100+ ms, independent of the host) runs while the RTT probe and the allocation do, so the
 * probe adds nothing to click-to-first-frame unless probe + allocation outlast gathering.
 * When the broker settles on chain, the session's voucher is signed and sent beside the connection (see
 * settlement.ts); it never delays the stream, and its failure only shows in the stats.
 * `maxPricePerBlock` (wei, decimal), when given, is the most the player pays per block: the broker places the session
 * on no dearer host, and fails the allocation with `price_above_limit` when every free host is dearer.
 */
export async function startSession(
  app: App,
  video: HTMLVideoElement,
  clickedAt: number,
  hooks: SessionHooks,
  maxPricePerBlock?: string,
): Promise<PlaySession> {
  resetStats();
  const key = new SessionKey();
  stats.clientKey = key.address;
  hooks.status("Finding a host…");
  const settlement = fetchSettlement(); // beside the probe and the allocation; only the voucher waits for it
  let peer = createPeer();
  // Without STUN or TURN servers (the broker hands them out with the allocation) only host candidates can come.
  let offer = gatheredOffer(peer.pc, undefined, true);
  offer.catch(() => undefined); // awaited in connect(); this only keeps an early failure from being "unhandled"
  let allocation: AllocateResponse;
  try {
    const probeStart = performance.now();
    const hints = await probe(app.profile); // location and RTT samples for placement; {} when unavailable
    stats.rttProbeMs = performance.now() - probeStart;
    allocation = await createSession({
      app: app.id,
      profile: app.profile,
      ...FRAME_SIZE[app.profile],
      fps: FPS,
      client_key: key.address,
      ...hints,
      ...(maxPricePerBlock === undefined ? {} : { max_price_per_block: maxPricePerBlock }),
    });
    stats.startLegs.allocated = performance.now() - clickedAt;
  } catch (err) {
    peer.pc.close();
    throw err;
  }
  // STUN and TURN servers come with the allocation: a peer that uses them gathers again.
  const policy = icePolicyOf(location.search);
  try {
    const ice = iceConfiguration(allocation.ice_servers, policy);
    if (ice !== null) {
      peer.pc.close();
      peer = createPeer(ice);
      offer = gatheredOffer(peer.pc, ICE_SERVERS_GATHER_MS).then((sdp) => requireRelay(sdp, policy));
      offer.catch(() => undefined);
    }
  } catch (err) {
    peer.pc.close();
    await deleteSession(allocation).catch(() => undefined);
    throw err;
  }
  stats.sessionId = allocation.session_id;
  const wallet = (window as { ethereum?: Eip1193Provider }).ethereum;
  const settled = sendVoucher(
    settlement,
    allocation,
    key.address,
    (state) => {
      stats.voucher = state;
      hooks.voucher(describeVoucher(state));
    },
    wallet,
  );
  const session = new PlaySession(allocation, peer, video, hooks, key, settled);
  try {
    await session.connect(clickedAt, offer);
  } catch (err) {
    await session.end();
    throw err;
  }
  return session;
}

export class PlaySession {
  private resourceUrl: string | null = null;
  private stopInput = (): void => undefined;
  private stopFrames = (): void => undefined;
  private stopProbes = (): void => undefined;
  private firstFrameTimer = 0;
  private ended = false;

  constructor(
    private readonly allocation: AllocateResponse,
    private readonly peer: Peer,
    private readonly video: HTMLVideoElement,
    private readonly hooks: SessionHooks,
    private readonly key: SessionKey,
    /** Resolves once the broker accepted the session's voucher; to null when the session is not billed. */
    readonly settled: Promise<Settled | null>,
  ) {}

  get id(): string {
    return this.allocation.session_id;
  }

  /** `offer`: the gathered SDP offer of this session's peer (gatheredOffer), started before the allocation. */
  async connect(clickedAt: number, offer: Promise<string>): Promise<void> {
    const { pc, input, probes } = this.peer;
    let presentedFrames = 0;
    const reporter = new ProbeReporter(pc, probes, this.key, this.allocation.session_id, {
      presentedFrames: () => presentedFrames,
      second: (report, figures, rttMs) => {
        stats.probeReportsSent += 1;
        stats.lastProbeReport = report;
        stats.fps = report.fps_centi / 100;
        stats.width = figures.width || null;
        stats.height = figures.height || null;
        stats.bitrateBps = figures.bitrateBps;
        stats.loss = figures.loss;
        stats.rttMs = rttMs;
        stats.decodeMs = report.decode_us === null ? null : report.decode_us / 1000;
        stats.jitterMs = report.jitter_us === null ? null : report.jitter_us / 1000;
        stats.audioBitrateKbps = figures.audio?.bitrateKbps ?? null;
        stats.audioJitterBufferMs = figures.audio?.jitterBufferMs ?? null;
        stats.audioPacketsReceived = figures.audio?.packetsReceived ?? null;
        stats.audioPacketsLost = figures.audio?.packetsLost ?? null;
        stats.audioConcealedSamples = figures.audio?.concealedSamples ?? null;
        stats.avOffsetMs = figures.avOffsetMs;
        stats.soundLagMs = figures.soundLagMs;
      },
      rejected: (seq, reason) => {
        stats.probeReportsRejected += 1;
        console.warn(`gridplay: the host refused probe report ${seq}: ${reason}`);
      },
      ended: (reason) => {
        stats.endReason = reason;
        this.fail(`The session ended: ${reason}`);
      },
      copied: (text) => clipboard.copiedByApp(text),
    });
    const sample = (ms: number): void => {
      recordClickToPhoton(ms);
      reporter.addSample(ms);
    };
    const photons = new ClickToPhoton();
    const channel = new InputChannel(input, photons, sample);
    const clipboard = new SharedClipboard(navigator.clipboard, (kind) => channel.send(kind));
    this.stopInput = captureInput(this.video, (kind, at) => channel.send(kind, at), clipboard);
    reporter.start();
    this.stopProbes = () => reporter.stop();
    pc.addEventListener("track", (e) => {
      attachTrack(this.video, e.track, e.streams);
      playStream(this.video);
    });
    const legs = stats.startLegs;
    const since = (): number => performance.now() - clickedAt;
    pc.addEventListener("iceconnectionstatechange", () => {
      if (legs.iceConnected === null && ["connected", "completed"].includes(pc.iceConnectionState)) legs.iceConnected = since();
    });
    pc.addEventListener("connectionstatechange", () => {
      if (pc.connectionState === "connected" && legs.connected === null) legs.connected = since();
      if (pc.connectionState === "failed") this.fail("The connection to the host was lost");
    });
    this.stopFrames = onEachFrame(this.video, (now, frame) => {
      stats.framesDecoded += 1;
      presentedFrames = frame.presentedFrames;
      // The "photon" of click-to-photon is the frame's presentationTime, when it went to the compositor.
      // (expectedDisplayTime would add the wait for the display's next refresh, up to one refresh interval,
      // which headless Chromium only simulates.)
      if (frame.rtpTimestamp !== undefined) {
        for (const ms of photons.presented(frame.rtpTimestamp, frame.presentationTime)) sample(ms);
      }
      if (stats.framesDecoded === 1) {
        stats.clickToFirstFrameMs = now - clickedAt;
        legs.firstFrame = stats.clickToFirstFrameMs;
        window.clearTimeout(this.firstFrameTimer);
        this.hooks.status("");
      }
    });

    this.hooks.status("Connecting to the host…");
    const sdp = await offer;
    legs.offerReady = since();
    const answer = await whepOffer(this.allocation.whep_url, this.allocation.token, sdp);
    legs.answered = since();
    this.resourceUrl = answer.resourceUrl;
    stats.probesUrl = answer.resourceUrl === null ? null : `${answer.resourceUrl}/probes`;
    await pc.setRemoteDescription({ type: "answer", sdp: answer.sdp });
    this.hooks.status("Waiting for video…");
    this.firstFrameTimer = window.setTimeout(() => this.fail("The host sent no video"), FIRST_FRAME_TIMEOUT_MS);
  }

  /** Ends the session at the host (WHEP DELETE) and at the broker; never throws. */
  async end(): Promise<void> {
    if (this.ended) return;
    this.ended = true;
    this.stopLocal();
    const results = await Promise.allSettled([
      this.resourceUrl === null ? Promise.resolve() : whepDelete(this.resourceUrl, this.allocation.token),
      deleteSession(this.allocation),
    ]);
    this.peer.pc.close();
    for (const r of results) {
      if (r.status === "rejected") console.warn("gridplay: ending the session:", r.reason);
    }
  }

  /** Best-effort end while the page goes away: keepalive requests, nothing awaited. */
  endOnPageHide(): void {
    if (this.ended) return;
    this.ended = true;
    this.stopLocal();
    if (this.resourceUrl !== null) whepDelete(this.resourceUrl, this.allocation.token, true).catch(() => undefined);
    deleteSession(this.allocation, true).catch(() => undefined);
    this.peer.pc.close();
  }

  private fail(message: string): void {
    if (!this.ended) this.hooks.failed(new Error(message));
  }

  private stopLocal(): void {
    window.clearTimeout(this.firstFrameTimer);
    this.stopInput(); // releases held keys while the channel is still open
    this.stopFrames();
    this.stopProbes();
    this.video.srcObject = null;
    stats.sessionId = null;
  }
}
