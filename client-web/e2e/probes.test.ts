// Browser test of the probes: the stats overlay toggles with F2 (which never reaches the game) and shows live
// figures, click-to-photon samples arrive as keys are pressed, and the host's probes endpoint serves the session's
// per-second records with the client's signed reports, the whole body signed by the host.
// Server: GRIDPLAY_URL, or `$GRIDPLAY_BIN up` on free ports (see server.ts). App: GRIDPLAY_APP (default "orbit").

import assert from "node:assert/strict";
import { test } from "node:test";

import { ed25519 } from "@noble/curves/ed25519.js";
import type { Page } from "playwright-core";

import type { SessionProbes } from "../src/generated/SessionProbes";
import { percentile } from "../src/probes/clickToPhoton.ts";
import { recoverSigner } from "../src/probes/report.ts";
import type { Browser } from "./browser.ts";
import { WAIT_MS, nextAllocation, sleep, stats, waitFor, watchPage } from "./helpers.ts";
import { serverAndBrowser } from "./running.ts";
import type { Server } from "./server.ts";

const APP = process.env["GRIDPLAY_APP"] ?? "orbit";
/** Key presses (down + up: two inputs each) for the click-to-photon samples. */
const PRESSES = Number(process.env["C2P_PRESSES"] ?? 60);
const PRESS_GAP_MS = 60;

let server: Server | undefined;
let browser: Browser | undefined;

serverAndBrowser({ slots: 1 }, {}, (started, opened) => {
  [server, browser] = [started, opened];
});

const overlayValue = (page: Page, key: string): Promise<string> => page.locator(`#stats [data-stat="${key}"]`).innerText();

function fromBase64Url(text: string): Uint8Array {
  return new Uint8Array(Buffer.from(text, "base64url"));
}

/** GET the session's probe log with its token; checks the host's ed25519 signature over the exact body. */
async function fetchProbes(url: string, token: string): Promise<SessionProbes> {
  const res = await fetch(url, { headers: { Authorization: `Bearer ${token}` }, signal: AbortSignal.timeout(5000) });
  assert.equal(res.status, 200, `GET ${url}`);
  const signature = res.headers.get("gridplay-signature");
  assert.ok(signature !== null, "no gridplay-signature header");
  const body = new Uint8Array(await res.arrayBuffer());
  const probes = JSON.parse(new TextDecoder().decode(body)) as SessionProbes;
  assert.ok(ed25519.verify(fromBase64Url(signature), body, fromBase64Url(probes.host_id)), "the host's signature does not verify");
  return probes;
}

test("the stats overlay, click-to-photon and the host's signed probe log", async () => {
  assert.ok(server && browser);
  const { page } = browser;
  const pageErrors = watchPage(page);

  await page.goto(server.url);
  const card = page.locator(`[data-app-id="${APP}"]`);
  await card.waitFor({ timeout: WAIT_MS });
  const allocated = nextAllocation(page);
  await card.getByRole("button", { name: "Play" }).click();
  const { token } = await allocated;
  await waitFor(page, "60 frames", () => window.__gridplay.framesDecoded >= 60);
  await waitFor(page, "the input channel to open", () => window.__gridplay.inputOpen);

  // F2 shows the overlay and is not sent to the game.
  const overlay = page.locator("#stats");
  assert.ok(await overlay.isHidden(), "the overlay starts hidden");
  const sentBefore = (await stats(page)).inputsSent;
  await page.keyboard.press("F2");
  await overlay.waitFor({ state: "visible", timeout: WAIT_MS });
  assert.equal((await stats(page)).inputsSent, sentBefore, "F2 went to the game");

  // Live numbers once a report second has passed.
  await waitFor(page, "a measured second", () => (window.__gridplay.fps ?? 0) > 0 && window.__gridplay.width !== null);
  await page.waitForFunction(() => document.querySelector('#stats [data-stat="fps"]')?.textContent !== "–", undefined, { timeout: WAIT_MS });
  const fps = Number(await overlayValue(page, "fps"));
  assert.ok(fps > 0, `overlay fps ${fps}`);
  assert.match(await overlayValue(page, "resolution"), /^1280×720$/);
  assert.match(await overlayValue(page, "bitrate"), /^\d+\.\d+ Mbit\/s$/);
  assert.match(await overlayValue(page, "decode"), /^\d+\.\d ms$/);
  assert.match(await overlayValue(page, "loss"), /^\d+\.\d+ %$/);

  // Key presses: each down and up is a click-to-photon sample once its frame is shown.
  for (let i = 0; i < PRESSES; i++) {
    const key = i % 2 === 0 ? "ArrowRight" : "ArrowLeft";
    await page.keyboard.down(key);
    await sleep(PRESS_GAP_MS);
    await page.keyboard.up(key);
    await sleep(PRESS_GAP_MS);
  }
  const { inputsSent } = await stats(page);
  await waitFor(page, `acks for ${inputsSent} inputs`, (n) => window.__gridplay.inputsAcked >= n, inputsSent);
  await waitFor(page, "click-to-photon samples", (n) => window.__gridplay.clickToPhotonMs.length >= n, Math.floor(PRESSES * 1.8));
  await waitFor(page, "an RTT", () => window.__gridplay.rttMs !== null);
  await sleep(1200); // one more report second, so the overlay and the reports carry the samples
  assert.match(await overlayValue(page, "c2p-p50"), /^\d+\.\d ms$/);
  assert.match(await overlayValue(page, "c2p-p95"), /^\d+\.\d ms$/);
  assert.match(await overlayValue(page, "rtt"), /^\d+\.\d ms$/);

  // F2 again hides it.
  await page.keyboard.press("F2");
  await overlay.waitFor({ state: "hidden", timeout: WAIT_MS });

  const s = await stats(page);
  const samples = s.clickToPhotonMs;
  const summary = {
    samples: samples.length,
    p50_ms: percentile(samples, 50),
    p95_ms: percentile(samples, 95),
    p99_ms: percentile(samples, 99),
    min_ms: Math.min(...samples),
    max_ms: Math.max(...samples),
  };
  console.log(`click_to_photon ${JSON.stringify(summary)}`);
  assert.ok(samples.every((ms) => ms > 0 && ms < 1000), `implausible samples: ${JSON.stringify(samples)}`);

  // The host's probe log: verified client reports in the per-second records, and a block summary.
  assert.ok(s.probesUrl !== null && s.clientKey !== null && s.sessionId !== null);
  assert.ok(!JSON.stringify(s).includes(token), "the page's global holds the session's token");
  assert.equal(s.probeReportsRejected, 0, "the host refused reports");
  const probes = await fetchProbes(s.probesUrl, token);
  assert.equal(probes.session_id, s.sessionId);
  assert.equal(probes.client_key, s.clientKey);
  assert.ok(probes.reports_valid >= 3, `only ${probes.reports_valid} valid reports`);
  assert.deepEqual(probes.reports_rejected, { no_client_key: 0, invalid: 0, bad_signature: 0, wrong_session: 0, replayed: 0, too_frequent: 0 });
  const reports = probes.records.flatMap((r) => (r.client === null ? [] : [r.client]));
  assert.ok(reports.length >= 3, `${reports.length} records carry a client report`);
  for (const signed of reports) {
    assert.equal(recoverSigner(signed.report, signed.signature), s.clientKey, "a report not signed by the session key");
  }
  assert.ok(reports.some((r) => r.report.click_to_photon_samples > 0 && r.report.click_to_photon_p50_us !== null), "no report carries click-to-photon");
  assert.ok(probes.records.some((r) => r.host.frames_sent > 0 && r.host.render_encode_p50_us !== null));
  const block = probes.blocks[0];
  assert.ok(block !== undefined && !block.complete && block.seconds_with_client_report >= 3, JSON.stringify(probes.blocks));
  const round = (x: number | null): number | null => (x === null ? null : Math.round(x * 10) / 10);
  const figures = {
    fps_mean: round(block.fps_mean),
    fps_min: round(block.fps_min),
    rtt_ms_mean: round(block.rtt_ms_mean),
    decode_ms_mean: round(block.decode_ms_mean),
    jitter_ms_mean: round(block.jitter_ms_mean),
    render_encode_p50_ms: round(block.render_encode_p50_ms),
    bitrate_mbps_mean: round(block.bitrate_bps_mean === null ? null : block.bitrate_bps_mean / 1e6),
  };
  console.log(`probe_block ${JSON.stringify(figures)}`);

  await page.getByRole("button", { name: "End session" }).click();
  await card.getByRole("button", { name: "Play" }).waitFor({ state: "visible", timeout: WAIT_MS });
  // The log outlives the session, every block complete once the host has wound the session down (just after DELETE).
  let ended = await fetchProbes(s.probesUrl, token);
  for (const deadline = Date.now() + WAIT_MS; !ended.ended && Date.now() < deadline; ) {
    await sleep(100);
    ended = await fetchProbes(s.probesUrl, token);
  }
  assert.ok(ended.ended && ended.blocks.every((b) => b.complete));
  assert.deepEqual(pageErrors, [], "uncaught errors in the page");
});
