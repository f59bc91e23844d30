// Headless Chromium as the player of one session over whatever network lies between it and GRIDPLAY_URL: the
// Chromium leg of tests/netns/constrained_network.sh (`sudo tests/netns/constrained_network.sh
// target/debug/gridplay 30 chromium`, after `cd client-web && npm run build && npm run build:node`).
// By hand: `GRIDPLAY_URL=http://10.77.1.2:8080 PLAY_SECONDS=30 node build/e2e/netplay.js`. App: GRIDPLAY_APP
// (default "orbit", a 1280x720@60 game). Play → first frame → a click on the picture every 200 ms for
// PLAY_SECONDS → End session. Logs go to stderr; stdout gets one JSON line:
//   {"transport":"chromium","mean_fps":..,"longest_freeze_ms":..,"click_to_photon_ms_p50":..,
//    "click_to_photon_ms_p99":..,"click_to_photon_samples":..,"seconds":[{"decoded_frames":..,"received_kbit":..,
//    "presented_frames":..,"sent_kbit":..,"target_kbit":..,"keyframes":..,"sent_frames":..},..]}
//    (as `gridplay play --headless` prints)
// GRIDPLAY_ICE=relay opens the page with `?ice=relay` (through the broker's TURN relay alone); the summary's
// "ice_route" names the candidate types of the pair that carried the media.
// Exits non-zero when no frame arrives. Click-to-photon comes from the page's raw samples (the latest 1000, about 65 s
// of clicks: three inputs, move/down/up, per click).

import type { Page } from "playwright-core";

import type { StreamStats } from "../src/generated/StreamStats";
import type { GridplayStats } from "../src/stats.ts";
import { launchBrowser } from "./browser.ts";
import { WAIT_MS, clickFor, nextAllocation, sleep, stats, summariseClickToPhoton, waitFor } from "./helpers.ts";

const APP = process.env["GRIDPLAY_APP"] ?? "orbit";

/** presentationTime (ms) and presentedFrames of each requestVideoFrameCallback on #stream, recorded in the page. */
type FrameTrace = { at: number; presented: number }[];

declare global {
  interface Window {
    __netplayFrames: FrameTrace;
    /** Every RTCPeerConnection the page made, the current session's last. */
    __netplayPeers: RTCPeerConnection[];
  }
}

/** Init script (serialised by Playwright): records every presented frame of #stream and keeps the peer connections. */
function instrument(): void {
  const frames: FrameTrace = [];
  const peers: RTCPeerConnection[] = [];
  window.__netplayFrames = frames;
  window.__netplayPeers = peers;
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Native {
    constructor(config?: RTCConfiguration) {
      super(config);
      peers.push(this);
    }
  };
  document.addEventListener("DOMContentLoaded", () => {
    const video = document.getElementById("stream");
    if (!(video instanceof HTMLVideoElement)) return;
    const tick = (_now: number, meta: VideoFrameCallbackMetadata): void => {
      frames.push({ at: meta.presentationTime, presented: meta.presentedFrames });
      video.requestVideoFrameCallback(tick);
    };
    video.requestVideoFrameCallback(tick);
  });
}

/** Evaluated in the page: the session's video inbound-rtp counters so far (zeros before there are any). */
async function videoCounters(): Promise<{ framesDecoded: number; bytesReceived: number }> {
  const counters = { framesDecoded: 0, bytesReceived: 0 };
  const pc = window.__netplayPeers.at(-1);
  if (pc === undefined) return counters;
  (await pc.getStats()).forEach((entry: Record<string, unknown>) => {
    if (entry["type"] !== "inbound-rtp" || entry["kind"] !== "video") return;
    const { framesDecoded, bytesReceived } = entry;
    if (typeof framesDecoded === "number") counters.framesDecoded = framesDecoded;
    if (typeof bytesReceived === "number") counters.bytesReceived = bytesReceived;
  });
  return counters;
}

/** One second of the run, named as in `gridplay play`'s summary. */
interface Second {
  /** Video frames decoded and received video kbit (WebRTC inbound-rtp counters) in the second. */
  decoded_frames: number;
  received_kbit: number;
  /** Frames presented (requestVideoFrameCallback calls, window.__gridplay.framesDecoded) in the second. */
  presented_frames: number;
  /** From the host's session resource (GET on the WHEP resource): video sent, its rate target, keyframes sent;
   * absent when it did not answer. */
  sent_kbit?: number;
  target_kbit?: number;
  keyframes?: number;
  /** Video frames the host sent in the second. */
  sent_frames?: number;
}

/** The candidate types ("host", "srflx", "prflx", "relay") of the pair that carries the media. */
interface IceRoute {
  local: string | null;
  remote: string | null;
}

/** Evaluated in the page: the types of the session's selected candidate pair. */
async function iceRoute(): Promise<IceRoute> {
  const route: IceRoute = { local: null, remote: null };
  const pc = window.__netplayPeers.at(-1);
  if (pc === undefined) return route;
  const entries = new Map<string, Record<string, unknown>>();
  (await pc.getStats()).forEach((entry: Record<string, unknown>) => void entries.set(String(entry["id"]), entry));
  const transport = [...entries.values()].find((e) => e["type"] === "transport" && typeof e["selectedCandidatePairId"] === "string");
  const pair = transport === undefined ? undefined : entries.get(String(transport["selectedCandidatePairId"]));
  if (pair === undefined) return route;
  const typeOf = (id: unknown): string | null => {
    const type = entries.get(String(id))?.["candidateType"];
    return typeof type === "string" ? type : null;
  };
  return { local: typeOf(pair["localCandidateId"]), remote: typeOf(pair["remoteCandidateId"]) };
}

interface Summary {
  transport: "chromium";
  ice_route: IceRoute;
  mean_fps: number;
  longest_freeze_ms: number;
  click_to_photon_ms_p50: number | null;
  click_to_photon_ms_p99: number | null;
  click_to_photon_samples: number;
  seconds: Second[];
}

const log = (line: string): void => void process.stderr.write(`[netplay] ${line}\n`);
const round1 = (x: number): number => Math.round(x * 10) / 10;

function seconds(text: string | undefined): number {
  const n = Number(text ?? 30);
  if (!Number.isFinite(n) || n <= 0) throw new Error(`PLAY_SECONDS must be a positive number, got ${JSON.stringify(text)}`);
  return n;
}

/** Mean fps after the first frame up to `end`, and the longest gap between presentations (the tail up to `end` included). */
function frameFigures(frames: FrameTrace, end: number): { fps: number; freeze: number } {
  const first = frames[0];
  const last = frames.at(-1);
  if (first === undefined || last === undefined) throw new Error("no frame was presented");
  let freeze = end - last.at;
  for (let i = 1; i < frames.length; i++) freeze = Math.max(freeze, (frames[i]?.at ?? 0) - (frames[i - 1]?.at ?? 0));
  return { fps: ((last.presented - first.presented) * 1000) / Math.max(1, end - first.at), freeze };
}

/** The session's token, renewed (`POST /v1/sessions/{id}/token` on the broker) once half its life is gone: tokens are
 * short-lived, a run may be long. */
class SessionToken {
  private renewAt: number;

  constructor(
    private readonly broker: string,
    private readonly sessionId: string,
    private token: string,
    expiresAtMs: number,
  ) {
    this.renewAt = SessionToken.halfLife(expiresAtMs);
  }

  private static halfLife(expiresAtMs: number): number {
    const now = Date.now();
    return now + Math.max(0, expiresAtMs - now) / 2;
  }

  /** The token, renewed first when due; after a failed renewal, the old one until it expires. */
  async current(): Promise<string> {
    if (Date.now() < this.renewAt) return this.token;
    try {
      const url = `${this.broker}/v1/sessions/${encodeURIComponent(this.sessionId)}/token`;
      const headers = { Authorization: `Bearer ${this.token}` };
      const res = await fetch(url, { method: "POST", headers, signal: AbortSignal.timeout(900) });
      if (!res.ok) throw new Error(`HTTP ${res.status}`);
      const fresh = (await res.json()) as { token: string; expires_at_ms: number };
      this.token = fresh.token;
      this.renewAt = SessionToken.halfLife(fresh.expires_at_ms);
    } catch (err) {
      log(`renewing the session token failed (${String(err)}): the host's figures stop when it expires`);
      this.renewAt = Infinity;
    }
    return this.token;
  }
}

/** What the host has sent so far (StreamStats from GET on the WHEP session resource, with the session's token); null if
 * it does not answer. */
async function hostStats(s: GridplayStats, token: SessionToken): Promise<StreamStats | null> {
  if (s.probesUrl === null) return null;
  const resource = s.probesUrl.replace(/\/probes$/, "");
  try {
    const headers = { Authorization: `Bearer ${await token.current()}` };
    const res = await fetch(resource, { headers, signal: AbortSignal.timeout(900) });
    return res.ok ? ((await res.json()) as StreamStats) : null;
  } catch {
    return null;
  }
}

/** Samples window.__gridplay, the video counters and the host's counters (read with `token`) once a second for
 * `durationMs`; logs each second. */
async function sampleSeconds(page: Page, token: SessionToken, durationMs: number): Promise<Second[]> {
  const sample = async () => {
    const s = await stats(page);
    return { s, video: await page.evaluate(videoCounters), host: await hostStats(s, token) };
  };
  const seconds: Second[] = [];
  const start = Date.now();
  let prev = await sample();
  for (let i = 1; Date.now() - start < durationMs; i++) {
    await sleep(start + i * 1000 - Date.now());
    const cur = await sample();
    const second: Second = {
      decoded_frames: cur.video.framesDecoded - prev.video.framesDecoded,
      received_kbit: Math.round(((cur.video.bytesReceived - prev.video.bytesReceived) * 8) / 1000),
      presented_frames: cur.s.framesDecoded - prev.s.framesDecoded,
    };
    if (cur.host !== null) {
      second.target_kbit = Math.round(cur.host.target_bps / 1000);
      if (prev.host !== null) {
        second.sent_kbit = Math.round(((cur.host.bytes_sent - prev.host.bytes_sent) * 8) / 1000);
        second.keyframes = cur.host.keyframes_sent - prev.host.keyframes_sent;
        second.sent_frames = cur.host.frames_sent - prev.host.frames_sent;
      }
    }
    const sentFrames = second.sent_frames ?? "–";
    seconds.push(second);
    const { s } = cur;
    const loss = s.loss === null ? "–" : (s.loss * 100).toFixed(1);
    const rtt = s.rttMs === null ? "–" : round1(s.rttMs);
    log(`${i} s: ${JSON.stringify(second)} host frames ${sentFrames}, loss ${loss} %, rtt ${rtt} ms, ` +
      `inputs ${s.inputsAcked}/${s.inputsSent}, c2p samples ${s.clickToPhotonMs.length}`);
    prev = cur;
  }
  return seconds;
}

async function main(): Promise<void> {
  const url = process.env["GRIDPLAY_URL"];
  if (!url) throw new Error("set GRIDPLAY_URL to a broker that serves the web client");
  const playMs = seconds(process.env["PLAY_SECONDS"]) * 1000;
  const browser = await launchBrowser();
  try {
    const { page } = browser;
    page.on("pageerror", (err) => log(`page error: ${err.message}`));
    page.on("console", (msg) => {
      if (msg.type() === "error" || msg.type() === "warning") log(`page ${msg.type()}: ${msg.text()}`);
    });
    await page.addInitScript(instrument);
    await page.goto(process.env["GRIDPLAY_ICE"] === "relay" ? `${url.replace(/\/+$/, "")}/?ice=relay` : url);
    const play = page.locator(`[data-app-id="${APP}"]`).getByRole("button", { name: "Play" });
    await play.waitFor({ timeout: WAIT_MS });
    const allocated = nextAllocation(page);
    await play.click();
    const allocation = await allocated;
    const broker = url.replace(/\/+$/, "");
    const token = new SessionToken(broker, allocation.session_id, allocation.token, allocation.expires_at_ms);
    await waitFor(page, "the first frame (none arrived)", () => window.__gridplay.framesDecoded > 0);
    await waitFor(page, "the input channel to open", () => window.__gridplay.inputOpen);
    log(`first frame after ${round1((await stats(page)).clickToFirstFrameMs ?? NaN)} ms; playing ${playMs / 1000} s`);

    const [, perSecond] = await Promise.all([clickFor(page, playMs), sampleSeconds(page, token, playMs)]);
    const end = await page.evaluate(() => performance.now());
    const frames = await page.evaluate(() => window.__netplayFrames);
    const samples = (await stats(page)).clickToPhotonMs;
    const route = await page.evaluate(iceRoute);

    await page.getByRole("button", { name: "End session" }).click();
    await play.waitFor({ state: "visible", timeout: WAIT_MS });

    const { fps, freeze } = frameFigures(frames, end);
    const c2p = summariseClickToPhoton(samples);
    const summary: Summary = {
      transport: "chromium",
      ice_route: route,
      mean_fps: round1(fps),
      longest_freeze_ms: Math.round(freeze),
      click_to_photon_ms_p50: c2p.p50,
      click_to_photon_ms_p99: c2p.p99,
      click_to_photon_samples: c2p.samples,
      seconds: perSecond,
    };
    process.stdout.write(`${JSON.stringify(summary)}\n`);
  } finally {
    await browser.close();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`[netplay] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
