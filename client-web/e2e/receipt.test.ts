// Browser test of settlement: a server on a local chain (`gridplay up --anvil … --epoch-seconds 10`) gives the page a
// demo player, whose voucher the broker accepts; the lobby card quotes the demo price before Play; the session plays
// ~15 s with two clicks (so the probe reports carry click-to-photon), ends, and the lobby's receipt shows a committed block
// with an amount; the downloaded chain receipt then passes `gridplay verify-receipt` against the chain.
// Server: `$GRIDPLAY_BIN up` on free ports with the chain flags, or GRIDPLAY_URL (a server already started on a
// chain; verify-receipt still needs GRIDPLAY_BIN or a built target/). Skipped only when the anvil binary is missing
// (`npm ci` in chain/contracts installs it). App: GRIDPLAY_APP (default "orbit").

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { existsSync } from "node:fs";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, test } from "node:test";
import { promisify } from "node:util";
import type { Page } from "playwright-core";

import type { SettlementInfo } from "../src/generated/SettlementInfo";
import { pollWindowMs, receiptFileName } from "../src/receipt.ts";
import { launchBrowser, type Browser } from "./browser.ts";
import { CLICK_EVERY_MS, WAIT_MS, clickFor, stats, waitFor, watchPage } from "./helpers.ts";
import { gridplayBinary, repoRoot, startServer, type Server } from "./server.ts";

const APP = process.env["GRIDPLAY_APP"] ?? "orbit";
const ANVIL = `${repoRoot}chain/contracts/node_modules/@foundry-rs/anvil-linux-amd64/bin/anvil`;
const EPOCH_SECONDS = 10;
/** Seconds played, each with the player's signed report. */
const PLAY_REPORTS = 15;
/** Clicks, for click-to-photon: few enough that the block is delivered even if each one's second misses the bar on
 * a loaded machine (the demo bills a block delivered at 75 % of its seconds). */
const CLICKS = 2;
/** The page polls the receipt this long after the end; a little more for the page's own steps. */
const RECEIPT_WAIT_MS = pollWindowMs(EPOCH_SECONDS) + 10_000;
const VERIFY_TIMEOUT_MS = 60_000;

let server: Server | undefined;
let browser: Browser | undefined;

after(async () => {
  await browser?.close();
  await server?.stop();
});

async function settlementInfo(base: string): Promise<SettlementInfo> {
  const res = await fetch(new URL("v1/settlement", base), { signal: AbortSignal.timeout(5000) });
  assert.equal(res.status, 200, "GET /v1/settlement: the server settles nothing, though it was started on a chain");
  return (await res.json()) as SettlementInfo;
}

/** Waits for the page's receipt to hold a committed block with an amount and the chain receipt. */
async function committedReceipt(page: Page): Promise<void> {
  try {
    await page.waitForFunction(
      () => {
        const r = window.__gridplay.receipt;
        return r !== null && r.receipt != null && r.lines.some((l) => l.commit_tx !== undefined && BigInt(l.amount) > 0n);
      },
      undefined,
      { timeout: RECEIPT_WAIT_MS, polling: 500 },
    );
  } catch (err) {
    const shown = await page.evaluate(() => document.getElementById("receipt")?.innerText ?? "(no #receipt)");
    const s = await stats(page);
    throw new Error(`no committed, billed block within ${RECEIPT_WAIT_MS} ms; voucher ${JSON.stringify(s.voucher)}; receipt ${JSON.stringify(s.receipt)}; panel: ${shown}`, {
      cause: err,
    });
  }
}

test("a billed session's receipt shows committed blocks and verifies against the chain", { timeout: 240_000 }, async (t) => {
  if (!process.env["GRIDPLAY_URL"] && !existsSync(ANVIL)) {
    t.skip(`no anvil binary at ${ANVIL} (run npm ci in chain/contracts)`);
    return;
  }
  try {
    server = await startServer({ slots: 1, upArgs: ["--anvil", ANVIL, "--epoch-seconds", String(EPOCH_SECONDS)] });
  } catch (err) {
    assert.fail(
      `gridplay up on a local chain failed: does this binary support \`up --anvil <path> --epoch-seconds <n>\`?\n${err instanceof Error ? err.message : String(err)}`,
    );
  }
  const info = await settlementInfo(server.url);
  const rpcUrl = info.rpc_url;
  assert.ok(rpcUrl !== undefined, `SettlementInfo names no rpc_url: ${JSON.stringify(info)}`);
  assert.ok(info.demo_player_key !== undefined, "SettlementInfo has no demo_player_key on a local chain");

  browser = await launchBrowser();
  const { page } = browser;
  const pageErrors = watchPage(page);

  await page.goto(server.url);
  const card = page.locator(`[data-app-id="${APP}"]`);
  await card.waitFor({ timeout: WAIT_MS });
  const price = card.locator(".price");
  await price.waitFor({ timeout: WAIT_MS });
  assert.equal(await price.innerText(), "0.010000 ETH per 15 min", "the card's price before Play (one free host at the demo price)");
  await card.getByRole("button", { name: "Play" }).click();
  await waitFor(page, "30 frames", () => window.__gridplay.framesDecoded >= 30);
  await waitFor(page, "the voucher to be accepted", () => window.__gridplay.voucher.state === "accepted");
  assert.match(await page.locator("#settlement").innerText(), /^demo player 0x[0-9a-f]{4}…[0-9a-f]{4}: voucher accepted$/);

  await clickFor(page, CLICKS * CLICK_EVERY_MS);
  await waitFor(page, `${PLAY_REPORTS} probe reports`, (n) => window.__gridplay.probeReportsSent >= n, PLAY_REPORTS);
  const played = await stats(page);
  assert.ok(played.clickToPhotonMs.length > 0, "no click-to-photon samples");
  assert.equal(played.probeReportsRejected, 0, "the host refused probe reports");
  const sessionId = played.sessionId;
  assert.ok(sessionId !== null);

  await page.getByRole("button", { name: "End session" }).click();
  await card.getByRole("button", { name: "Play" }).waitFor({ state: "visible", timeout: WAIT_MS });
  await committedReceipt(page);
  const receipt = (await stats(page)).receipt;
  assert.ok(receipt !== null && receipt.session_id === sessionId, JSON.stringify(receipt));
  console.log(`receipt ${JSON.stringify({ lines: receipt.lines, total: receipt.total })}`);
  assert.ok(BigInt(receipt.total) > 0n);

  // The panel: a committed line, the download of the same JSON, and the command to check it.
  const panel = page.locator("#receipt");
  assert.match(await panel.locator('li[data-committed="true"]').first().innerText(), /committed in epoch \d+, tx 0x[0-9a-f]{2}…[0-9a-f]{2}$/);
  const link = panel.locator("a[download]");
  await link.waitFor({ timeout: WAIT_MS });
  const fileName = receiptFileName(sessionId);
  assert.equal(await link.getAttribute("download"), fileName);
  const href = await link.getAttribute("href");
  assert.ok(href !== null && href.startsWith("blob:"));
  const downloaded = await page.evaluate(async (url) => (await fetch(url)).text(), href);
  assert.deepEqual(JSON.parse(downloaded), receipt.receipt, "the download is not the receipt the page holds");
  assert.equal(await panel.locator("code").innerText(), `gridplay verify-receipt ${fileName} --rpc-url ${rpcUrl}`);

  // The chain agrees.
  const dir = await mkdtemp(join(tmpdir(), "gridplay-receipt-"));
  try {
    const file = join(dir, fileName);
    await writeFile(file, downloaded);
    const bin = gridplayBinary();
    try {
      const { stdout } = await promisify(execFile)(bin, ["verify-receipt", file, "--rpc-url", rpcUrl], { timeout: VERIFY_TIMEOUT_MS });
      console.log(`verify-receipt: ${stdout.trim()}`);
    } catch (err) {
      const { code, stdout, stderr } = err as { code?: unknown; stdout?: string; stderr?: string };
      assert.fail(`${bin} verify-receipt ${file} --rpc-url ${rpcUrl} exited with ${String(code)}\nstdout: ${stdout ?? ""}\nstderr: ${stderr ?? ""}`);
    }
  } finally {
    await rm(dir, { recursive: true, force: true });
  }
  assert.deepEqual(pageErrors, [], "uncaught errors in the page");
});
