// Sound benchmark (not a test: `npm run bench:audio`). Server: `$GRIDPLAY_BIN up` on free ports (see server.ts).
// Plays Orbit in Chromium for AUDIO_BENCH_S seconds (default 600) and samples, at each of the page's stats updates (one
// a second), the A/V offset (how much later the sound plays than the picture of the same instant) and how long ago the
// sound playing then was captured (host and page share this machine's clock). Logs go to stderr; the last line on
// stdout is one JSON object:
//   {"duration_s":..,"av_offset_ms":{"p50":..,"p95":..,"abs_p95":..,"first_minute_median":..,"last_minute_median":..,
//    "samples":..},"sound_capture_to_playout_ms":{"median":..,"p99":..,"samples":..}}

import { percentile } from "../src/probes/clickToPhoton.ts";
import { launchBrowser } from "./browser.ts";
import { WAIT_MS, sleep, waitFor } from "./helpers.ts";
import { startServer } from "./server.ts";

const SECONDS = Number(process.env["AUDIO_BENCH_S"] ?? "600");
if (!Number.isInteger(SECONDS) || SECONDS < 120) throw new Error(`AUDIO_BENCH_S must be a whole number of seconds, at least 120, got ${SECONDS}`);
/** The stretch at each end whose offsets are compared for drift. */
const MINUTE_SAMPLES = 60;

const log = (line: string): void => void process.stderr.write(`[bench] ${line}\n`);

const server = await startServer({ slots: 1 });
const browser = await launchBrowser();
const offsets: number[] = [];
const lags: number[] = [];
try {
  const { page } = browser;
  await page.goto(server.url);
  await page.locator(`[data-app-id="orbit"]`).getByRole("button", { name: "Play" }).click({ timeout: WAIT_MS });
  await waitFor(page, "the A/V offset", () => window.__gridplay.avOffsetMs !== null);
  let last = await page.evaluate(() => window.__gridplay.probeReportsSent);
  const end = Date.now() + SECONDS * 1000;
  while (Date.now() < end) {
    await sleep(200);
    const now = await page.evaluate(() => {
      const s = window.__gridplay;
      return { sent: s.probeReportsSent, offset: s.avOffsetMs, lag: s.soundLagMs, ended: s.endReason };
    });
    if (now.ended !== null) throw new Error(`the session ended: ${now.ended}`);
    if (now.sent === last) continue;
    last = now.sent;
    if (now.offset !== null) offsets.push(now.offset);
    if (now.lag !== null) lags.push(now.lag);
    if (offsets.length % 60 === 0) log(`${offsets.length} s: A/V offset ${now.offset} ms, sound ${now.lag?.toFixed(1)} ms after capture`);
  }
} finally {
  await browser.close();
  await server.stop();
}
const round1 = (x: number | null): number | null => (x === null ? null : Math.round(x * 10) / 10);
const firstMinute = percentile(offsets.slice(0, MINUTE_SAMPLES), 50);
const lastMinute = percentile(offsets.slice(-MINUTE_SAMPLES), 50);
const result = {
  duration_s: SECONDS,
  av_offset_ms: {
    p50: percentile(offsets, 50),
    p95: percentile(offsets, 95),
    abs_p95: percentile(offsets.map(Math.abs), 95),
    first_minute_median: firstMinute,
    last_minute_median: lastMinute,
    samples: offsets.length,
  },
  sound_capture_to_playout_ms: { median: round1(percentile(lags, 50)), p99: round1(percentile(lags, 99)), samples: lags.length },
};
log(`A/V offset p50 ${result.av_offset_ms.p50} ms, p95 ${result.av_offset_ms.p95} ms; first minute ${firstMinute} ms, last ${lastMinute} ms`);
console.log(JSON.stringify(result));
