// Browser benchmark of app sessions (not a test: `npm run bench:apps`): Play to first frame per app of the example
// catalogue, against Orbit in the same run, each in BENCH_RUNS (default 5) sessions in a fresh tab of one Chromium.
// Server: `$GRIDPLAY_BIN up --apps apps/catalogue.toml` (see server.ts). Logs go to stderr; the last line on stdout is
// one JSON object: {"play_to_first_frame_ms":{"orbit":{"median":..,"runs":[..]},"terminal":{..},..}}.

import { launchBrowser } from "./browser.ts";
import { stats, waitFor } from "./helpers.ts";
import { repoRoot, startServer } from "./server.ts";

const APPS = ["orbit", "terminal", "vkcube", "glxgears", "lbreakout2"];
const RUNS = Number(process.env["BENCH_RUNS"] ?? "5");

const median = (xs: number[]): number => {
  const s = [...xs].sort((a, b) => a - b);
  const mid = Math.floor(s.length / 2);
  return s.length % 2 === 1 ? (s[mid] ?? NaN) : ((s[mid - 1] ?? NaN) + (s[mid] ?? NaN)) / 2;
};

const server = await startServer({ slots: 2, upArgs: ["--apps", `${repoRoot}apps/catalogue.toml`] });
const browser = await launchBrowser();
const result: Record<string, { median: number; runs: number[] }> = {};
try {
  for (const app of APPS) {
    const runs: number[] = [];
    for (let i = 0; i < RUNS; i++) {
      const page = await browser.context.newPage();
      await page.goto(server.url);
      await page.locator(`[data-app-id="${app}"]`).getByRole("button", { name: "Play" }).click();
      await waitFor(page, `the first frame of ${app}`, () => window.__gridplay.framesDecoded >= 1);
      const ms = (await stats(page)).clickToFirstFrameMs;
      if (ms !== null) runs.push(Math.round(ms * 10) / 10);
      await page.locator("#end").click();
      await page.locator("#lobby").waitFor({ state: "visible" });
      await page.close();
    }
    result[app] = { median: median(runs), runs };
    process.stderr.write(`[bench] ${app}: Play to first frame median ${median(runs)} ms (${runs.join(", ")})\n`);
  }
} finally {
  await browser.close();
  await server.stop();
}
console.log(JSON.stringify({ play_to_first_frame_ms: result }));
