// Browser tests of Orbit's sound: the page offers to receive audio, the host's Opus track arrives in the video's
// MediaStream and plays unmuted from the Play click; through WebAudio the engine hum is heard at rest, and Space's jump
// chirp (600 → 1200 Hz) lifts the 550–1300 Hz band within a second; sound and picture stay together, within 150 ms of
// each other (getStats' estimatedPlayoutTimestamp; the offset is logged). The mute button and volume slider drive the element and are kept for the next
// session. Server: GRIDPLAY_URL, or `$GRIDPLAY_BIN up` on free ports (see server.ts). App: GRIDPLAY_APP (default
// "orbit").

import assert from "node:assert/strict";
import { test } from "node:test";
import type { Page } from "playwright-core";

import { percentile } from "../src/probes/clickToPhoton.ts";
import { bandRise, listen, type BandTrace } from "./audio.ts";
import type { Browser } from "./browser.ts";
import { WAIT_MS, stats, waitFor, watchPage } from "./helpers.ts";
import { inboundRtp, keepPeers } from "./peers.ts";
import { serverAndBrowser } from "./running.ts";
import type { Server } from "./server.ts";

const APP = process.env["GRIDPLAY_APP"] ?? "orbit";
const FIRST_FRAMES = 30;
/** The jump chirp's band, with room for the analyser's bin width. */
const BAND = { lowHz: 550, highHz: 1300 };
const FFT_SIZE = 4096;
const LOOK_EVERY_MS = 20;
/** The quiet second before Space, and the second after it in which the chirp must be heard. */
const QUIET_MS = 1000;
const CHIRP_WITHIN_MS = 1000;
/** The chirp's band power over the hum's, at least (6 dB). */
const MIN_RISE = 4;
/** Stats updates (one a second) at which the A/V offset is sampled, and the most its p95 of |offset| may be: sound
 * and picture of one instant together, not the lip-sync goal (20 ms), which the logged figure is held to. */
const AV_SAMPLES = 5;
const MAX_AV_OFFSET_MS = 150;

let server: Server | undefined;
let browser: Browser | undefined;

serverAndBrowser({ slots: 1 }, {}, (started, opened) => {
  [server, browser] = [started, opened];
});

/** Opens the lobby, plays APP and waits for frames and the input channel. */
async function play(page: Page, base: string): Promise<void> {
  await page.goto(base);
  const card = page.locator(`[data-app-id="${APP}"]`);
  await card.getByRole("button", { name: "Play" }).click({ timeout: WAIT_MS });
  await waitFor(page, `${FIRST_FRAMES} frames`, (n) => window.__gridplay.framesDecoded >= n, FIRST_FRAMES);
  await waitFor(page, "the input channel to open", () => window.__gridplay.inputOpen);
}

async function endSession(page: Page): Promise<void> {
  await page.getByRole("button", { name: "End session" }).click();
  await page.locator(`[data-app-id="${APP}"]`).getByRole("button", { name: "Play" }).waitFor({ state: "visible", timeout: WAIT_MS });
}

/** window.__gridplay.avOffsetMs at each of the next `n` stats updates once it is known; fails, showing the raw
 * inbound-rtp entries, when it never becomes known. */
async function avOffsets(page: Page, n: number): Promise<number[]> {
  try {
    await waitFor(page, "the A/V offset", () => window.__gridplay.avOffsetMs !== null);
  } catch {
    const entries = JSON.stringify(await page.evaluate(inboundRtp), null, 1);
    process.stderr.write(`[e2e] inbound-rtp entries:\n${entries}\n`);
    assert.fail(`no A/V offset in ${WAIT_MS} ms: estimatedPlayoutTimestamp missing on the audio or video inbound-rtp entry (no RTCP sender reports?); inbound-rtp entries: ${entries}`);
  }
  const offsets: number[] = [];
  while (offsets.length < n) {
    const { probeReportsSent } = await stats(page);
    await waitFor(page, "the next stats update", (sent) => window.__gridplay.probeReportsSent > sent, probeReportsSent);
    const { avOffsetMs } = await stats(page);
    assert.ok(avOffsetMs !== null, `the A/V offset became unknown after ${offsets.join(", ")} ms`);
    offsets.push(avOffsetMs);
  }
  return offsets;
}

/** The stream element's sound as the page set it. */
const element = (page: Page): Promise<{ muted: boolean; volume: number; paused: boolean; video: number; audio: number }> =>
  page.evaluate(() => {
    const video = document.getElementById("stream") as HTMLVideoElement;
    const stream = video.srcObject instanceof MediaStream ? video.srcObject : null;
    return {
      muted: video.muted,
      volume: video.volume,
      paused: video.paused,
      video: stream?.getVideoTracks().length ?? 0,
      audio: stream?.getAudioTracks().length ?? 0,
    };
  });

test(`plays ${APP} with sound: the hum at rest in step with the picture, and Space's chirp within a second`, async () => {
  assert.ok(server && browser);
  const { page } = browser;
  const pageErrors = watchPage(page);
  await page.addInitScript(keepPeers);
  await play(page, server.url);

  // One stream holds the picture and the sound, playing unmuted since the Play click (a fresh profile's setting).
  assert.deepEqual(await element(page), { muted: false, volume: 1, paused: false, video: 1, audio: 1 });

  // (a) Opus packets arrive: the stats count them, and the overlay shows their bitrate.
  await waitFor(page, "audio packets and their bitrate", () => (window.__gridplay.audioPacketsReceived ?? 0) > 0 && (window.__gridplay.audioBitrateKbps ?? 0) > 0);
  await page.keyboard.press("F2");
  await page.locator('[data-stat="audio-bitrate"]').filter({ hasText: "kbit/s" }).waitFor({ timeout: WAIT_MS });

  // The sound through WebAudio, a look at its spectrum every LOOK_EVERY_MS; first a quiet second of the hum.
  const state = await page.evaluate(listen, { ...BAND, fftSize: FFT_SIZE, everyMs: LOOK_EVERY_MS, key: "Space" });
  assert.equal(state, "running", "the AudioContext did not start");
  await waitFor(
    page,
    "a second of sound in WebAudio",
    (ms) => {
      const heard = window.__gridplaySound.samples.filter((s) => s.total > 0);
      const [first, last] = [heard[0], heard.at(-1)];
      return first !== undefined && last !== undefined && last.at - first.at >= ms;
    },
    QUIET_MS,
  );

  // With the hum heard, how much later each instant's sound plays than its picture, over AV_SAMPLES seconds (judged
  // below, after the chirp).
  const offsets = await avOffsets(page, AV_SAMPLES);
  const absOffsets = offsets.map(Math.abs);
  const absP95 = percentile(absOffsets, 95) ?? Infinity;
  process.stderr.write(
    `[e2e] av_offset_ms samples=[${offsets.join(", ")}] p50=${percentile(offsets, 50)} p95=${percentile(offsets, 95)} ` +
      `abs_p95=${absP95} max_abs=${Math.max(...absOffsets)}\n`,
  );

  // Space: the square hops, and the chirp sounds. The page's keydown time starts the clock.
  await page.keyboard.press("Space");
  await waitFor(
    page,
    "a second of sound after Space",
    (ms) => {
      const { keyAt, samples } = window.__gridplaySound;
      return keyAt !== null && (samples.at(-1)?.at ?? 0) >= keyAt + ms;
    },
    CHIRP_WITHIN_MS,
  );
  const trace = await page.evaluate((): BandTrace => window.__gridplaySound);
  const rise = bandRise(trace, QUIET_MS, CHIRP_WITHIN_MS, MIN_RISE);
  const shown = JSON.stringify(rise);

  // (b) The hum plays at rest, and little of it lies in the chirp's band.
  assert.ok(rise.quietTotal > 0, `no sound in the second before Space: ${shown}`);
  assert.ok(rise.quietBand * MIN_RISE <= rise.loudBand, `the band is not quiet before Space, or no louder after: ${shown}`);
  // (c) Within a second of Space the band's power rises MIN_RISE times or more, and the band holds most of the sound.
  assert.ok(rise.riseAfterMs !== null, `no chirp within ${CHIRP_WITHIN_MS} ms of Space: ${shown}`);
  assert.ok(rise.loudest !== null && rise.loudest.band >= 0.5 * rise.loudest.total, `the chirp is not in the band: ${shown}`);
  console.log(`space_to_chirp_ms=${Math.round(rise.riseAfterMs)}`);
  console.log(`chirp_band_rise_db=${(10 * Math.log10(rise.loudBand / Math.max(rise.quietBand, Number.MIN_VALUE))).toFixed(1)}`);

  const s = await stats(page);
  console.log(`audio_bitrate_kbps=${s.audioBitrateKbps?.toFixed(1)} audio_jitter_buffer_ms=${s.audioJitterBufferMs?.toFixed(1)}`);
  await endSession(page);
  // (d) Sound and picture of the same instant play within MAX_AV_OFFSET_MS of each other (judged with the session
  // ended, so that the next test finds the slot free).
  assert.ok(absP95 <= MAX_AV_OFFSET_MS, `A/V offset: p95 of |offset| ${absP95} ms over ${MAX_AV_OFFSET_MS} ms (${offsets.join(", ")} ms)`);
  assert.deepEqual(pageErrors, [], "uncaught errors in the page");
});

test("Mute and the volume slider drive the sound and are kept for the next session", async () => {
  assert.ok(server && browser);
  const page = await browser.context.newPage();
  try {
    const pageErrors = watchPage(page);
    await play(page, server.url);
    const mute = page.getByRole("button", { name: "Mute" });
    const volume = page.getByRole("slider", { name: "Volume" });
    assert.equal(await mute.getAttribute("aria-pressed"), "false");

    await mute.click();
    await volume.fill("0.3");
    assert.equal(await mute.getAttribute("aria-pressed"), "true");
    assert.deepEqual(await element(page), { muted: true, volume: 0.3, paused: false, video: 1, audio: 1 });

    // The next session, on a freshly loaded page, starts with the saved setting.
    await endSession(page);
    await play(page, server.url);
    assert.deepEqual(await element(page), { muted: true, volume: 0.3, paused: false, video: 1, audio: 1 });
    assert.equal(await mute.getAttribute("aria-pressed"), "true");
    assert.equal(await volume.inputValue(), "0.3");

    await mute.click();
    assert.equal((await element(page)).muted, false);
    assert.equal(await mute.getAttribute("aria-pressed"), "false");
    await endSession(page);
    assert.deepEqual(pageErrors, [], "uncaught errors in the page");
  } finally {
    await page.close();
  }
});
