// Browser test of a gamepad in an app: a pad in the page's Gamepad API (standard mapping, made in the page as a
// browser reports a connected pad) is played through the lobby into an SDL2 game in its sandbox, which finds it as
// its own game controller and exits with the face button it holds; the page shows that reason. The game is
// tests/apps/gamepad.toml's. Server: `$GRIDPLAY_BIN up --apps tests/apps/gamepad.toml`.

import assert from "node:assert/strict";
import { test } from "node:test";

import type { Browser } from "./browser.ts";
import { WAIT_MS, waitFor, watchPage } from "./helpers.ts";
import { serverAndBrowser } from "./running.ts";
import { repoRoot, type Server } from "./server.ts";

const CATALOGUE = `${repoRoot}tests/apps/gamepad.toml`;
const APP = "pad";

let server: Server | undefined;
let browser: Browser | undefined;

serverAndBrowser({ slots: 1, upArgs: ["--apps", CATALOGUE] }, {}, (started, opened) => {
  [server, browser] = [started, opened];
});

/** Runs in the page before its scripts: one pad holding east (1), the right trigger (7) and d-pad up (12), the left
 * stick right. */
function connectPad(): void {
  const held = new Map([
    [1, 1],
    [7, 1],
    [12, 1],
  ]);
  const pad = {
    id: "Gridplay test pad (STANDARD GAMEPAD)",
    index: 0,
    connected: true,
    mapping: "standard",
    timestamp: 0,
    axes: [1, 0, 0, 0],
    buttons: Array.from({ length: 17 }, (_, i) => {
      const value = held.get(i) ?? 0;
      return { pressed: value > 0, touched: value > 0, value };
    }),
  };
  Object.defineProperty(Navigator.prototype, "getGamepads", { value: () => [pad, null, null, null], configurable: true });
}

test("a pad held in the page is the SDL game's own controller", async () => {
  assert.ok(server && browser);
  const { page } = browser;
  const pageErrors = watchPage(page);
  await page.addInitScript(connectPad);
  await page.goto(server.url);
  await page.locator(`[data-app-id="${APP}"]`).getByRole("button", { name: "Play" }).click({ timeout: WAIT_MS });
  await waitFor(page, "the game's end", () => window.__gridplay.endReason !== null);
  assert.equal(await page.evaluate(() => window.__gridplay.endReason), "app exited (status 11)");
  await page.locator(`[data-app-id="${APP}"]`).getByRole("button", { name: "Play" }).waitFor({ state: "visible", timeout: WAIT_MS });
  assert.deepEqual(pageErrors, [], "uncaught errors in the page");
});
