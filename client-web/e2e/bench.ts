// Browser benchmark (not a test: `npm run bench`, never matched by `npm run e2e`'s *.test.js glob).
// Server: GRIDPLAY_URL, or `$GRIDPLAY_BIN up` on free ports (see server.ts). App: GRIDPLAY_APP (default "orbit").
// Runs BENCH_RUNS (default 10) sessions, each in a fresh tab of one Chromium: Play → first frame → End session; on a
// local chain, as `make up` runs it, when the anvil binary is installed (`npm ci` in chain/contracts).
// On the last run the session is held for HOLD_MS while the server's VmRSS and the page's decode rate are sampled,
// then the picture is clicked every 200 ms for CLICK_MS (real pointer input) for click-to-photon samples.
// Logs go to stderr; the last line on stdout is one JSON object:
//   {"settled":..,"click_to_first_frame_ms":{"median":..,"p99":..,"runs":[...]},"start_legs_ms":{"allocated":..,..},
//    "rtt_probe_ms":{"median":..,"runs":[...]},
//    "host_rss_mb_one_session":..,"browser_fps_one_session":..,"click_to_photon_ms":{"p50":..,"p99":..,"samples":..}}

import { readFile } from "node:fs/promises";
import type { Page } from "playwright-core";

import { launchBrowser, type Browser } from "./browser.ts";
import { WAIT_MS, clickFor, sleep, stats, summariseClickToPhoton, waitFor, type ClickToPhotonSummary } from "./helpers.ts";
import { existsSync } from "node:fs";

import type { StartLegs } from "../src/statsShape.ts";
import { repoRoot, startServer, type Server } from "./server.ts";

const APP = process.env["GRIDPLAY_APP"] ?? "orbit";
const HOLD_MS = 10_000;
const CLICK_MS = 10_000;
const RSS_SAMPLE_MS = 500;
const ANVIL = `${repoRoot}chain/contracts/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil`;

interface BenchResult {
  /** Whether sessions settled on a local chain (voucher signed beside the start), as `make up` runs them. */
  settled: boolean;
  click_to_first_frame_ms: { median: number; p99: number; runs: number[] };
  /** The median of each step's end, ms after the Play click: allocation, gathered offer, WHEP answer, ICE, DTLS,
   * first frame. */
  start_legs_ms: Record<keyof StartLegs, number | null>;
  /** Time spent measuring RTT to candidate hosts before allocating (overlaps ICE gathering, after the click). */
  rtt_probe_ms: { median: number; runs: number[] };
  /** Peak VmRSS of the `gridplay up` process (broker + host) while one session streams; null for GRIDPLAY_URL. */
  host_rss_mb_one_session: number | null;
  /** framesDecoded (requestVideoFrameCallback) per second over the hold. */
  browser_fps_one_session: number;
  /** Input event → presentation of the frame that shows it, over CLICK_MS of clicks at 1280x720@60 (app "orbit"). */
  click_to_photon_ms: ClickToPhotonSummary;
}

function positiveInt(text: string | undefined, fallback: number): number {
  if (text === undefined || text === "") return fallback;
  const n = Number(text);
  if (!Number.isInteger(n) || n < 1) throw new Error(`BENCH_RUNS must be a positive integer, got ${JSON.stringify(text)}`);
  return n;
}

const log = (line: string): void => void process.stderr.write(`[bench] ${line}\n`);
const round1 = (x: number): number => Math.round(x * 10) / 10;

function median(xs: number[]): number {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2;
}

/** Nearest-rank percentile (p99 of fewer than 100 runs is the slowest run). */
function percentile(xs: number[], p: number): number {
  const s = [...xs].sort((a, b) => a - b);
  return s[Math.max(0, Math.ceil((p / 100) * s.length) - 1)] ?? NaN;
}

/** VmRSS of `pid` in MiB, from /proc/<pid>/status. */
async function rssMb(pid: number): Promise<number> {
  const status = await readFile(`/proc/${pid}/status`, "utf8");
  const match = /^VmRSS:\s+(\d+)\s+kB$/m.exec(status);
  if (match?.[1] === undefined) throw new Error(`no VmRSS in /proc/${pid}/status`);
  return Number(match[1]) / 1024;
}

/** Holds the running session for HOLD_MS; returns the peak server RSS (MiB) and the decode rate (frames/s). */
async function hold(page: Page, pid: number | null): Promise<{ rss: number | null; fps: number }> {
  const frames = (): Promise<{ n: number; t: number }> =>
    page.evaluate(() => ({ n: window.__gridplay.framesDecoded, t: performance.now() }));
  const start = await frames();
  const rss: number[] = [];
  const end = Date.now() + HOLD_MS;
  while (Date.now() < end) {
    if (pid !== null) rss.push(await rssMb(pid));
    await sleep(Math.min(RSS_SAMPLE_MS, Math.max(0, end - Date.now())));
  }
  const stop = await frames();
  const fps = ((stop.n - start.n) * 1000) / (stop.t - start.t);
  log(`hold: ${stop.n - start.n} frames in ${Math.round(stop.t - start.t)} ms; rss samples (MiB) ${rss.map(round1).join(" ")}`);
  return { rss: rss.length > 0 ? Math.max(...rss) : null, fps };
}

/** Clicks the picture for CLICK_MS, waits for every input's ack, and summarises the click-to-photon samples. */
async function clickToPhoton(page: Page): Promise<ClickToPhotonSummary> {
  await waitFor(page, "the input channel to open", () => window.__gridplay.inputOpen);
  await clickFor(page, CLICK_MS);
  const { inputsSent } = await stats(page);
  await waitFor(page, `acks for ${inputsSent} inputs`, (n) => window.__gridplay.inputsAcked >= n, inputsSent);
  await sleep(200); // the frames that show the last inputs
  const summary = summariseClickToPhoton((await stats(page)).clickToPhotonMs);
  log(`click to photon over ${inputsSent} inputs: ${JSON.stringify(summary)}`);
  return summary;
}

async function run(server: Server & { settled: boolean }, browser: Browser, runs: number): Promise<BenchResult> {
  const firstFrame: number[] = [];
  const probe: number[] = [];
  const legs: StartLegs[] = [];
  let held: { rss: number | null; fps: number; c2p: ClickToPhotonSummary } | null = null;
  for (let i = 0; i < runs; i++) {
    const page = await browser.context.newPage();
    try {
      page.on("pageerror", (err) => log(`run ${i + 1}: page error: ${err.message}`));
      await page.goto(server.url);
      const play = page.locator(`[data-app-id="${APP}"]`).getByRole("button", { name: "Play" });
      await play.waitFor({ timeout: WAIT_MS });
      await play.click();
      await waitFor(page, "the first frame", () => window.__gridplay.clickToFirstFrameMs !== null);
      const { clickToFirstFrameMs: ms, rttProbeMs, startLegs } = await stats(page);
      if (ms === null) throw new Error("clickToFirstFrameMs went back to null");
      firstFrame.push(round1(ms));
      legs.push(startLegs);
      if (rttProbeMs !== null) probe.push(round1(rttProbeMs));
      log(`run ${i + 1}/${runs}: click to first frame ${round1(ms)} ms (RTT probe ${rttProbeMs === null ? "–" : round1(rttProbeMs)} ms; ${legsText(startLegs)})`);

      if (i === runs - 1) held = { ...(await hold(page, server.pid)), c2p: await clickToPhoton(page) };

      await page.getByRole("button", { name: "End session" }).click();
      await play.waitFor({ state: "visible", timeout: WAIT_MS });
    } finally {
      await page.close();
    }
  }
  if (held === null) throw new Error("no run held a session");
  return {
    settled: server.settled,
    click_to_first_frame_ms: { median: round1(median(firstFrame)), p99: percentile(firstFrame, 99), runs: firstFrame },
    start_legs_ms: medianLegs(legs),
    rtt_probe_ms: { median: round1(median(probe)), runs: probe },
    host_rss_mb_one_session: held.rss === null ? null : round1(held.rss),
    browser_fps_one_session: round1(held.fps),
    click_to_photon_ms: held.c2p,
  };
}

/** Each step's median over the runs that reached it. */
function medianLegs(runs: readonly StartLegs[]): Record<keyof StartLegs, number | null> {
  const keys = ["allocated", "offerReady", "answered", "iceConnected", "connected", "firstFrame"] as const;
  const entries = keys.map((key) => {
    const reached = runs.map((r) => r[key]).filter((ms): ms is number => ms !== null);
    return [key, reached.length === 0 ? null : round1(median(reached))] as const;
  });
  return Object.fromEntries(entries) as Record<keyof StartLegs, number | null>;
}

/** One run's steps: "allocated 90 · offer 110 · answer 160 · ICE 200 · DTLS 230 · frame 330". */
function legsText(l: StartLegs): string {
  const ms = (v: number | null): string => (v === null ? "–" : String(round1(v)));
  return `allocated ${ms(l.allocated)} · offer ${ms(l.offerReady)} · answer ${ms(l.answered)} · ICE ${ms(l.iceConnected)} · DTLS ${ms(l.connected)} · frame ${ms(l.firstFrame)}`;
}

async function main(): Promise<void> {
  const runs = positiveInt(process.env["BENCH_RUNS"], 10);
  const settled = existsSync(ANVIL);
  const server = { ...(await startServer(settled ? { upArgs: ["--anvil", ANVIL] } : {})), settled };
  let browser: Browser | undefined;
  try {
    browser = await launchBrowser();
    const result = await run(server, browser, runs);
    process.stdout.write(`${JSON.stringify(result)}\n`);
  } finally {
    await browser?.close();
    await server.stop();
  }
}

main().catch((err: unknown) => {
  process.stderr.write(`[bench] failed: ${err instanceof Error ? (err.stack ?? err.message) : String(err)}\n`);
  process.exitCode = 1;
});
