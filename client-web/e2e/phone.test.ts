// Browser test of the phone profile on a mobile viewport (390x844, touch, isMobile): the lobby
// fits, Play on the phone app streams a portrait 720x1280 picture that fits the viewport, a tap
// puts the player under the finger (touch events only: no mouse emulation), and a two-finger tap
// grows the player in place, and the game is heard. Server: GRIDPLAY_URL, or `$GRIDPLAY_BIN up` (see server.ts).
// App: GRIDPLAY_PHONE_APP (default "orbit-phone").

import assert from "node:assert/strict";
import { test } from "node:test";

import { PHONE, type Browser } from "./browser.ts";
import { analyseFrame, pictureBox } from "./frame.ts";
import { WAIT_MS, player, settledFrame, stats, waitFor, watchPage } from "./helpers.ts";
import { serverAndBrowser } from "./running.ts";
import type { Server } from "./server.ts";

const APP = process.env["GRIDPLAY_PHONE_APP"] ?? "orbit-phone";
const FIRST_FRAMES = 60;
/** How far (in picture fractions) the player may land from where it was put. */
const NEAR = 0.05;

let server: Server | undefined;
let browser: Browser | undefined;

serverAndBrowser({ slots: 1 }, PHONE, (started, opened) => {
  [server, browser] = [started, opened];
});

test(`plays ${APP} on a phone: portrait video that fits, tap and two-finger tap`, async () => {
  assert.ok(server && browser);
  const { page } = browser;
  const pageErrors = watchPage(page);

  // Lobby: fits the phone's width (no sideways scrolling); Play is tapped.
  await page.goto(server.url);
  const card = page.locator(`[data-app-id="${APP}"]`);
  await card.waitFor({ timeout: WAIT_MS });
  const lobbyWidth = await page.evaluate(() => document.documentElement.scrollWidth);
  assert.ok(lobbyWidth <= PHONE.viewport.width, `the lobby is ${lobbyWidth} px wide on a ${PHONE.viewport.width} px phone`);
  await card.getByRole("button", { name: "Play" }).tap();

  // Portrait video, filling the viewport's width and inside it.
  await waitFor(page, `${FIRST_FRAMES} frames`, (n) => window.__gridplay.framesDecoded >= n, FIRST_FRAMES);
  const first = await page.evaluate(analyseFrame);
  assert.deepEqual([first.width, first.height], [720, 1280], "the phone profile streams 720x1280 portrait");
  assert.ok(first.width < first.height);
  const box = await page.evaluate(pictureBox);
  const { width: vw, height: vh } = PHONE.viewport;
  assert.ok(
    box.left >= -0.5 && box.top >= -0.5 && box.left + box.width <= vw + 0.5 && box.top + box.height <= vh + 0.5,
    `the picture ${JSON.stringify(box)} leaves the ${vw}x${vh} viewport`,
  );
  assert.ok(box.width >= vw - 1, `the picture does not use the phone's width: ${JSON.stringify(box)}`);
  const start = player(first);
  assert.ok(Math.abs(start.x - 0.5) < NEAR && Math.abs(start.y - 0.5) < NEAR, `player does not start at the centre: ${JSON.stringify(start)}`);

  // Tap: the player jumps under the finger. One tap is one TouchStart and one TouchEnd, no pointer events.
  await waitFor(page, "the input channel to open", () => window.__gridplay.inputOpen);
  const sentBefore = (await stats(page)).inputsSent;
  await page.touchscreen.tap(box.left + 0.3 * box.width, box.top + 0.7 * box.height);
  const tapped = await settledFrame(page);
  const at = player(tapped);
  assert.ok(Math.abs(at.x - 0.3) < NEAR && Math.abs(at.y - 0.7) < NEAR, `tap did not move the player: ${JSON.stringify(at)}`);
  assert.equal((await stats(page)).inputsSent - sentBefore, 2, "a tap sends TouchStart + TouchEnd only");

  // Two-finger tap (raw CDP touch events: Playwright's touchscreen has one finger): the player grows where it is.
  const cdp = await browser.context.newCDPSession(page);
  const finger = (id: number, fx: number, fy: number) => ({ x: box.left + fx * box.width, y: box.top + fy * box.height, id });
  await cdp.send("Input.dispatchTouchEvent", { type: "touchStart", touchPoints: [finger(0, 0.7, 0.2), finger(1, 0.8, 0.3)] });
  await cdp.send("Input.dispatchTouchEvent", { type: "touchEnd", touchPoints: [] });
  const grown = await settledFrame(page);
  const still = player(grown);
  assert.ok(Math.abs(still.x - at.x) < 0.02 && Math.abs(still.y - at.y) < 0.02, `two-finger tap moved the player: ${JSON.stringify({ at, still })}`);
  const ratio = grown.yellowPixels / tapped.yellowPixels;
  assert.ok(ratio > 3 && ratio < 5, `two-finger tap did not double the player's side: ${tapped.yellowPixels} → ${grown.yellowPixels} yellow pixels`);

  // The phone hears the game as well: its sound arrives and plays, unmuted since the Play tap.
  await waitFor(page, "sound", () => (window.__gridplay.audioPacketsReceived ?? 0) > 50);
  const muted = await page.evaluate(() => (document.getElementById("stream") as HTMLVideoElement).muted);
  assert.equal(muted, false, "the Play tap unmutes the stream");

  // End session.
  await page.getByRole("button", { name: "End session" }).tap();
  await card.getByRole("button", { name: "Play" }).waitFor({ state: "visible", timeout: WAIT_MS });
  assert.deepEqual(pageErrors, [], "uncaught errors in the page");
});
