// Browser test of the owner's dashboard: `gridplay up` on a local chain with its host's dashboard on a known loopback
// port. One tab plays Orbit (two clicks, ten seconds) while another shows the dashboard: the running session with the player's fps
// and click-to-photon; after the end, its delivered block and the host's epoch, first pending (a claim is refused:
// not final yet) and, once the challenge window has passed on the chain, claimed with the page's Claim button; and
// the broker's network page counts the same block and session.
// Skipped only when the anvil binary is missing (`npm ci` in chain/contracts installs it); needs a spawned server.

import assert from "node:assert/strict";
import { existsSync } from "node:fs";
import { after, test } from "node:test";
import type { Page } from "playwright-core";

import type { SettlementInfo } from "../src/generated/SettlementInfo";
import { launchBrowser, type Browser } from "./browser.ts";
import { CLICK_EVERY_MS, WAIT_MS, clickFor, stats, waitFor, watchPage } from "./helpers.ts";
import { freePort, repoRoot, startServer, type Server } from "./server.ts";

const ANVIL = `${repoRoot}chain/contracts/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil`;
const EPOCH_SECONDS = 10;
/** Seconds played, each with the player's signed report. */
const PLAY_REPORTS = 10;
/** Clicks, for click-to-photon: few enough that the block is delivered even if each one's second misses the bar on
 * a loaded machine (the demo bills a block delivered at 75 % of its seconds). */
const CLICKS = 2;
/** The session's bill and its epoch's commit: two epochs and the dashboard's polling. */
const SETTLED_MS = (2 * EPOCH_SECONDS + 20) * 1000;
/** The local chain's challenge window, and a second more. */
const CHALLENGE_WINDOW_S = 61;

let server: Server | undefined;
let browser: Browser | undefined;

after(async () => {
  await browser?.close();
  await server?.stop();
});

/** Waits for `selector`'s text on the dashboard to match `pattern`. */
async function shows(dashboard: Page, selector: string, pattern: RegExp, timeout = WAIT_MS): Promise<string> {
  const element = dashboard.locator(selector);
  try {
    await dashboard.waitForFunction(
      ([sel, source]) => new RegExp(source).test(document.querySelector(sel)?.textContent ?? ""),
      [selector, pattern.source] as const,
      { timeout, polling: 250 },
    );
  } catch (err) {
    const text = await dashboard.evaluate(() => document.body.innerText);
    throw new Error(`${selector} never matched ${String(pattern)}; the page shows:\n${text}`, { cause: err });
  }
  return element.innerText();
}

/** Moves the local chain's clock on by `seconds` and mines a block at the new time. */
async function advanceChain(rpcUrl: string, seconds: number): Promise<void> {
  for (const [method, params] of [["evm_increaseTime", [seconds]], ["evm_mine", []]] as const) {
    const res = await fetch(rpcUrl, {
      method: "POST",
      headers: { "content-type": "application/json" },
      body: JSON.stringify({ jsonrpc: "2.0", id: 1, method, params }),
    });
    assert.equal(res.status, 200, `${method}: HTTP ${res.status}`);
  }
}

test("the owner's dashboard shows the session, its delivered block and the epoch it claims", { timeout: 240_000 }, async (t) => {
  if (process.env["GRIDPLAY_URL"] || !existsSync(ANVIL)) {
    t.skip(process.env["GRIDPLAY_URL"] ? "needs a server it starts itself" : `no anvil binary at ${ANVIL}`);
    return;
  }
  const port = await freePort();
  const dashboardUrl = `http://127.0.0.1:${port}/`;
  server = await startServer({
    slots: 1,
    upArgs: ["--anvil", ANVIL, "--epoch-seconds", String(EPOCH_SECONDS), "--dashboard", `127.0.0.1:${port}`],
  });
  const info = (await (await fetch(new URL("v1/settlement", server.url))).json()) as SettlementInfo;
  const rpcUrl = info.rpc_url;
  assert.ok(rpcUrl !== undefined, "the demo broker names no JSON-RPC endpoint");

  browser = await launchBrowser();
  const player = browser.page;
  const dashboard = await browser.context.newPage();
  const errors = [watchPage(player), watchPage(dashboard)];

  // Before any session: an empty list, no capacity check on this broker, a spotless reputation.
  await dashboard.goto(dashboardUrl);
  await shows(dashboard, "#sessions", /No sessions yet/);
  await shows(dashboard, "#capacity", /runs no capacity check/);
  await shows(dashboard, "#reputation-value", /^100%$/);

  // The player's tab in front: a background tab gets no video frame callbacks.
  await player.bringToFront();
  await player.goto(server.url);
  const card = player.locator('[data-app-id="orbit"]');
  await card.getByRole("button", { name: "Play" }).click();
  await waitFor(player, "30 frames", () => window.__gridplay.framesDecoded >= 30);
  await waitFor(player, "the voucher to be accepted", () => window.__gridplay.voucher.state === "accepted");
  const sessionId = (await stats(player)).sessionId;
  assert.ok(sessionId !== null);
  await clickFor(player, CLICKS * CLICK_EVERY_MS);

  // While it runs: the player's own figures, from its signed reports.
  const row = `tr[data-session="${sessionId}"]`;
  await shows(dashboard, `${row} .state`, /^running$/);
  await shows(dashboard, `${row} .c2p`, /^\d+\.\d ms$/);
  const fps = Number(await shows(dashboard, `${row} .fps`, /^\d+\.\d$/));
  assert.ok(fps >= 50, `the dashboard shows ${fps} fps for a 60 fps session`);
  assert.equal(await dashboard.locator(`${row} .app`).innerText(), "orbit");
  await waitFor(player, `${PLAY_REPORTS} probe reports`, (n) => window.__gridplay.probeReportsSent >= n, PLAY_REPORTS);

  await player.getByRole("button", { name: "End session" }).click();
  await shows(dashboard, `${row} .state`, /^ended$/);
  const blocks = await shows(dashboard, `${row} .blocks`, /^1 of 1 delivered/, SETTLED_MS);
  console.log(`dashboard blocks: ${blocks}`);

  // The epoch that holds the block: pending in its challenge window, and a claim now is refused.
  const epoch = dashboard.locator("#earnings tr[data-epoch]").first();
  await shows(dashboard, "#earnings tr[data-epoch] .payout", /^pending$/, SETTLED_MS);
  assert.match(await epoch.locator(".amount").innerText(), /^0\.\d{6} ETH$/);
  const claim = dashboard.locator("#claim");
  await claim.click();
  await shows(dashboard, "#claim-result", /not final yet/);

  // Past the window: the Claim button finalises and claims it.
  await advanceChain(rpcUrl, CHALLENGE_WINDOW_S);
  await claim.click();
  const claimed = await shows(dashboard, "#claim-result", /^Claimed epoch\(s\) \d+/);
  console.log(`dashboard claim: ${claimed}`);
  await shows(dashboard, "#earnings tr[data-epoch] .payout", /^claimed$/);

  // The last day: served time, confirmed by the player, in the session's bucket (or two, across a boundary).
  const heights = async (bars: string): Promise<number[]> =>
    dashboard.locator(`#hours-chart rect.${bars}`).evaluateAll((rects) => rects.map((r) => Number(r.getAttribute("height"))));
  const served = await heights("served");
  assert.equal(served.length, 96, "a bar per 15 minutes of the last day");
  const withTime = served.filter((h) => h > 0).length;
  assert.ok(withTime >= 1 && withTime <= 2, `served time outside the session's buckets: ${served.join(",")}`);
  assert.ok((await heights("confirmed")).some((h) => h > 0), "no time confirmed by the player");
  assert.equal(await dashboard.locator("#quality-chart polyline.fps").count(), 1);

  // The broker's network page counts the same block and session, from the settler's bills.
  const network = await browser.context.newPage();
  errors.push(watchPage(network));
  await network.goto(new URL("network.html", server.url).href);
  await shows(network, "#success-rate", /^100%$/);
  await shows(network, "#sessions-billed", /^1$/);
  await shows(network, "#delivered-hours", /^0\.0\d+ h$/);
  await shows(network, 'tr[data-region="local"] .hosts', /^1$/);
  await shows(network, "#checks", /^No checker has reported on a host yet\.$/);
  assert.equal(await network.locator("#hours-chart rect.delivered").count(), 24);

  assert.deepEqual(errors.flat(), [], "uncaught errors in the pages");
});
