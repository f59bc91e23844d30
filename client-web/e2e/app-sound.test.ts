// Browser test of a catalogue app's sound: an app that plays a 440 Hz sine through PulseAudio (pacat, against its
// session's own sound server) is played from the lobby like a player; its Opus track arrives in the video's
// MediaStream, and through WebAudio the tone is heard, with the 400–480 Hz band holding at least 20 times the power of
// the 900–1100 Hz band and the loudest bin in the band. Server: `$GRIDPLAY_BIN up --apps e2e/tone-apps.toml`.

import assert from "node:assert/strict";
import { test } from "node:test";

import { listen, sumBands, type BandTrace } from "./audio.ts";
import type { Browser } from "./browser.ts";
import { WAIT_MS, stats, waitFor, watchPage } from "./helpers.ts";
import { serverAndBrowser } from "./running.ts";
import { repoRoot, type Server } from "./server.ts";

const CATALOGUE = `${repoRoot}client-web/e2e/tone-apps.toml`;
const APP = "tone";
/** Around the tone (440 Hz), with room for the analyser's bin width; and a band well away from it. */
const TONE_BAND = { lowHz: 400, highHz: 480 };
const ELSEWHERE = { lowHz: 900, highHz: 1100 };
const FFT_SIZE = 4096;
const LOOK_EVERY_MS = 20;
/** How long the tone is listened to once heard. */
const HEAR_MS = 1000;
/** The tone band's power over the other band's, at least (13 dB). */
const MIN_RATIO = 20;

let server: Server | undefined;
let browser: Browser | undefined;

serverAndBrowser({ slots: 1, upArgs: ["--apps", CATALOGUE] }, {}, (started, opened) => {
  [server, browser] = [started, opened];
});

test("a catalogue app's PulseAudio tone is heard in the page at 440 Hz", async () => {
  assert.ok(server && browser);
  const { page } = browser;
  const pageErrors = watchPage(page);
  await page.goto(server.url);
  await page.locator(`[data-app-id="${APP}"]`).getByRole("button", { name: "Play" }).click({ timeout: WAIT_MS });
  await waitFor(page, "the first frame", () => window.__gridplay.framesDecoded > 0);
  await waitFor(page, "audio packets", () => (window.__gridplay.audioPacketsReceived ?? 0) > 0);

  // The sound through WebAudio, a look at its spectrum every LOOK_EVERY_MS, until a stretch of HEAR_MS was heard.
  const state = await page.evaluate(listen, { ...TONE_BAND, others: [ELSEWHERE], fftSize: FFT_SIZE, everyMs: LOOK_EVERY_MS });
  assert.equal(state, "running", "the AudioContext did not start");
  await waitFor(
    page,
    `${HEAR_MS} ms of sound in WebAudio`,
    (ms) => {
      const heard = window.__gridplaySound.samples.filter((s) => s.total > 0);
      const [first, last] = [heard[0], heard.at(-1)];
      return first !== undefined && last !== undefined && last.at - first.at >= ms;
    },
    HEAR_MS,
  );
  const trace = await page.evaluate((): BandTrace => window.__gridplaySound);
  const firstHeard = trace.samples.find((s) => s.total > 0);
  assert.ok(firstHeard !== undefined);
  const heard = trace.samples.filter((s) => s.at >= firstHeard.at && s.at <= firstHeard.at + HEAR_MS);
  const sums = sumBands(heard);
  const elsewhere = sums.others[0] ?? 0;
  const ratio = sums.band / Math.max(elsewhere, Number.MIN_VALUE);
  const peaks = heard.map((s) => s.peakHz).filter((hz) => hz !== null).sort((a, b) => a - b);
  const medianPeakHz = peaks[Math.floor(peaks.length / 2)] ?? null;
  const shown = `${JSON.stringify(sums)}, median peak ${medianPeakHz} Hz`;
  console.log(`tone_band_ratio_db=${(10 * Math.log10(ratio)).toFixed(1)} tone_peak_hz=${medianPeakHz?.toFixed(1)}`);

  // The tone is what is heard: its band holds MIN_RATIO times the power of a band elsewhere, and most of the sound.
  assert.ok(sums.band > 0, `nothing in ${TONE_BAND.lowHz}–${TONE_BAND.highHz} Hz: ${shown}`);
  assert.ok(sums.band >= MIN_RATIO * elsewhere, `the tone's band is not ${MIN_RATIO} times the power of ${ELSEWHERE.lowHz}–${ELSEWHERE.highHz} Hz: ${shown}`);
  assert.ok(sums.band >= 0.5 * sums.total, `the tone's band is not most of the sound: ${shown}`);
  assert.ok(medianPeakHz !== null && medianPeakHz >= TONE_BAND.lowHz && medianPeakHz <= TONE_BAND.highHz, `the loudest frequency is not the tone's: ${shown}`);
  assert.ok(((await stats(page)).audioPacketsReceived ?? 0) > 0, "no audio packets counted");

  await page.getByRole("button", { name: "End session" }).click();
  await page.locator(`[data-app-id="${APP}"]`).getByRole("button", { name: "Play" }).waitFor({ state: "visible", timeout: WAIT_MS });
  assert.deepEqual(pageErrors, [], "uncaught errors in the page");
});
