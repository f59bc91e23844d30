// Browser tests of Orbit's sound: the page offers to receive audio, the host's Opus track arrives in the video's
// MediaStream and plays unmuted from the Play click; through WebAudio the engine hum is heard at rest, and Space's jump
// chirp (600 → 1200 Hz) lifts the 550–1300 Hz band within a second. The mute button and volume slider drive the
// element and are kept for the next session. Server: GRIDPLAY_URL, or `$GRIDPLAY_BIN up` on free ports (see
// server.ts). App: GRIDPLAY_APP (default "orbit").

import assert from "node:assert/strict";
import { after, before, test } from "node:test";
import type { Page } from "playwright-core";

import { bandRise, listen, type BandTrace } from "./audio.ts";
import { launchBrowser, type Browser } from "./browser.ts";
import { WAIT_MS, stats, waitFor, watchPage } from "./helpers.ts";
import { startServer, type Server } from "./server.ts";

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

let server: Server | undefined;
let browser: Browser | undefined;

before(async () => {
  server = await startServer({ slots: 1 });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await server?.stop();
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

test(`plays ${APP} with sound: the hum at rest, and Space's chirp within a second`, async () => {
  assert.ok(server && browser);
  const { page } = browser;
  const pageErrors = watchPage(page);
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
