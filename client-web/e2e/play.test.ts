// Browser tests: lobby → Play (the allocation carries RTT samples) → video → keyboard and mouse move the player → End session;
// with geolocation permission already granted the allocation also carries the (coarsened) location;
// closing the tab mid-session (the page's pagehide keepalive DELETEs) ends the session and frees the slot;
// a crashed renderer (no pagehide at all) ends it too, through the host noticing the lost peer connection.
// The server offers one slot, so "a new tab can play" proves the previous session's slot was given back.
// Server: GRIDPLAY_URL, or `$GRIDPLAY_BIN up` on free ports (see server.ts). App: GRIDPLAY_APP (default "orbit").

import assert from "node:assert/strict";
import { test } from "node:test";
import type { Page } from "playwright-core";

import type { AllocateRequest } from "../src/generated/AllocateRequest";
import type { Browser } from "./browser.ts";
import { analyseFrame, pictureBox } from "./frame.ts";
import { WAIT_MS, player, settledFrame, sleep, stats, waitFor, watchPage } from "./helpers.ts";
import { serverAndBrowser } from "./running.ts";
import type { Server } from "./server.ts";

const APP = process.env["GRIDPLAY_APP"] ?? "orbit";
const FIRST_FRAMES = 120;
const HOLD_MS = 600;
/** A uniform (e.g. all-black) picture has a luma std-dev near 0; the scene is far above this. */
const MIN_LUMA_STD_DEV = 4;
/** Frames to wait for in the tab-close test (enough to prove the stream runs, short to keep it quick). */
const FEW_FRAMES = 30;
/** How long the broker may take to see a closed tab's session end (ICE/DTLS loss on the host). */
const END_DEADLINE_MS = 30_000;
const POLL_MS = 100;

let server: Server | undefined;
let browser: Browser | undefined;

serverAndBrowser({ slots: 1 }, {}, (started, opened) => {
  [server, browser] = [started, opened];
});

/** The JSON body of the next POST /v1/sessions that `page` sends. */
async function allocationRequest(page: Page): Promise<AllocateRequest> {
  const request = await page.waitForRequest((r) => r.method() === "POST" && new URL(r.url()).pathname === "/v1/sessions", {
    timeout: WAIT_MS,
  });
  return request.postDataJSON() as AllocateRequest;
}

/** Asserts that the allocation carried an RTT sample for `hostId` (the host the broker chose) within the broker's limits. */
function assertSampled(body: AllocateRequest, hostId: string): void {
  const samples = body.rtt_samples ?? [];
  assert.ok(
    samples.some((s) => s.host_id === hostId),
    `no rtt_sample for host ${hostId} in the allocation request: ${JSON.stringify(body)}`,
  );
  assert.ok(samples.length <= 4 && samples.every((s) => s.rtt_ms >= 0 && s.rtt_ms <= 10_000), JSON.stringify(samples));
}

/** The broker's view of a session: GET /v1/sessions/{id}. */
interface SessionRecord {
  session_id: string;
  host_id: string;
  app: string;
  state: "allocated" | "running" | "ended";
}

async function brokerSession(base: string, id: string): Promise<SessionRecord> {
  const res = await fetch(new URL(`v1/sessions/${encodeURIComponent(id)}`, base), { signal: AbortSignal.timeout(5000) });
  assert.equal(res.status, 200, `GET /v1/sessions/${id}`);
  return (await res.json()) as SessionRecord;
}

/** Polls the broker until the session is "ended"; returns the ms from `since`. Fails at since + END_DEADLINE_MS. */
async function untilEnded(base: string, id: string, since: number): Promise<number> {
  const deadline = since + END_DEADLINE_MS;
  for (;;) {
    const record = await brokerSession(base, id);
    if (record.state === "ended") return Date.now() - since;
    assert.ok(Date.now() < deadline, `session still ${JSON.stringify(record)} ${END_DEADLINE_MS} ms later`);
    await sleep(POLL_MS); // poll interval, not a synchronisation wait
  }
}

/** Plays in a new tab (proving a slot is free), then ends that session with End session. */
async function playAndEnd(context: Browser["context"], base: string): Promise<void> {
  const page = await context.newPage();
  try {
    const id = await play(page, base, FEW_FRAMES);
    assert.equal((await brokerSession(base, id)).state, "running");
    await page.getByRole("button", { name: "End session" }).click();
    await page.locator(`[data-app-id="${APP}"]`).getByRole("button", { name: "Play" }).waitFor({ state: "visible", timeout: WAIT_MS });
    assert.equal((await brokerSession(base, id)).state, "ended");
  } finally {
    await page.close();
  }
}

/** Opens the lobby in `page`, clicks Play on APP and waits for `frames` decoded frames; returns the session id. */
async function play(page: Page, base: string, frames: number): Promise<string> {
  await page.goto(base);
  const card = page.locator(`[data-app-id="${APP}"]`);
  await card.waitFor({ timeout: WAIT_MS });
  await card.getByRole("button", { name: "Play" }).click();
  await waitFor(page, `${frames} frames`, (n) => window.__gridplay.framesDecoded >= n, frames);
  const { sessionId } = await stats(page);
  assert.ok(sessionId !== null, "no session id after frames arrived");
  return sessionId;
}

test(`plays ${APP}: video, keyboard and mouse input, end session`, async () => {
  assert.ok(server && browser);
  const { page } = browser;
  const pageErrors = watchPage(page);

  // Lobby.
  await page.goto(server.url);
  const card = page.locator(`[data-app-id="${APP}"]`);
  await card.waitFor({ timeout: WAIT_MS });
  const allocation = allocationRequest(page);
  await card.getByRole("button", { name: "Play" }).click();

  // Allocation: RTT samples measured before it, no location (permission was never granted, and never asked for).
  const body = await allocation;
  await waitFor(page, "a session id", () => window.__gridplay.sessionId !== null);
  const { sessionId } = await stats(page);
  assert.ok(sessionId !== null);
  assertSampled(body, (await brokerSession(server.url, sessionId)).host_id);
  assert.ok(!("location" in body), `location sent without geolocation permission: ${JSON.stringify(body)}`);

  // Video.
  await waitFor(page, `${FIRST_FRAMES} frames`, (n) => window.__gridplay.framesDecoded >= n, FIRST_FRAMES);
  const first = await page.evaluate(analyseFrame);
  assert.ok(first.lumaStdDev > MIN_LUMA_STD_DEV, `picture is uniform: ${JSON.stringify(first)}`);
  const start = player(first);
  assert.ok(Math.abs(start.x - 0.5) < 0.05 && Math.abs(start.y - 0.5) < 0.05, `player does not start at the centre: ${JSON.stringify(start)}`);

  // Keyboard: hold ArrowRight; the player moves right at 0.5 widths/s.
  await waitFor(page, "the input channel to open", () => window.__gridplay.inputOpen);
  await page.keyboard.down("ArrowRight");
  await sleep(HOLD_MS); // the hold itself is the one fixed wait
  await page.keyboard.up("ArrowRight");
  const moved = player(await settledFrame(page));
  assert.ok(moved.x - start.x >= 0.1, `ArrowRight moved the player too little: ${JSON.stringify({ start, moved })}`);
  assert.ok(Math.abs(moved.y - start.y) < 0.03, `ArrowRight moved the player vertically: ${JSON.stringify({ start, moved })}`);

  // Mouse: a click puts the player where it lands.
  const box = await page.evaluate(pictureBox);
  await page.mouse.click(box.left + 0.2 * box.width, box.top + 0.25 * box.height);
  const clicked = player(await settledFrame(page));
  assert.ok(Math.abs(clicked.x - 0.2) < 0.05 && Math.abs(clicked.y - 0.25) < 0.05, `click did not move the player: ${JSON.stringify(clicked)}`);

  const s = await stats(page);
  assert.ok(s.clickToFirstFrameMs !== null && s.sessionId !== null);
  console.log(`click_to_first_frame_ms=${Math.round(s.clickToFirstFrameMs)}`);
  // Every step of the start was reached, in the order a start takes them.
  const { allocated, offerReady, answered, iceConnected, connected, firstFrame } = s.startLegs;
  const order = [allocated, answered, iceConnected, connected, firstFrame];
  assert.ok(order.every((ms, i) => ms !== null && ms >= 0 && (i === 0 || ms >= (order[i - 1] ?? 0))), JSON.stringify(s.startLegs));
  assert.ok(offerReady !== null && answered !== null && offerReady <= answered, JSON.stringify(s.startLegs));
  assert.equal(firstFrame, s.clickToFirstFrameMs);
  if (s.rttProbeMs !== null) console.log(`rtt_probe_ms=${Math.round(s.rttProbeMs)}`);
  if (s.lastInputLatencyMs !== null) console.log(`input_ack_latency_ms=${Math.round(s.lastInputLatencyMs)}`);

  // End session: both DELETEs succeed and the lobby is back.
  const sessionPath = `/v1/sessions/${encodeURIComponent(s.sessionId)}`;
  const brokerDelete = page.waitForResponse((r) => r.request().method() === "DELETE" && new URL(r.url()).pathname === sessionPath);
  const whepDelete = page.waitForResponse((r) => r.request().method() === "DELETE" && new URL(r.url()).pathname !== sessionPath);
  await page.getByRole("button", { name: "End session" }).click();
  assert.equal((await brokerDelete).status(), 204, "DELETE /v1/sessions/{id}");
  const whep = await whepDelete;
  assert.ok(whep.ok(), `WHEP DELETE ${whep.url()} answered ${whep.status()}`);
  await card.getByRole("button", { name: "Play" }).waitFor({ state: "visible", timeout: WAIT_MS });
  assert.ok(await page.locator("#player").isHidden());
  assert.equal((await stats(page)).sessionId, null);

  assert.deepEqual(pageErrors, [], "uncaught errors in the page");
});

test("with geolocation already granted, the allocation carries the coarsened location", async () => {
  assert.ok(server && browser);
  const base = server.url;
  const { context } = browser;
  await context.grantPermissions(["geolocation"], { origin: new URL(base).origin });
  await context.setGeolocation({ latitude: 48.856613, longitude: 2.352222 });
  const page = await context.newPage();
  try {
    const allocation = allocationRequest(page);
    const id = await play(page, base, FEW_FRAMES);
    const body = await allocation;
    assert.deepEqual(body.location, { lat: 48.86, lon: 2.35 });
    assertSampled(body, (await brokerSession(base, id)).host_id);
    await page.getByRole("button", { name: "End session" }).click();
    await page.locator(`[data-app-id="${APP}"]`).getByRole("button", { name: "Play" }).waitFor({ state: "visible", timeout: WAIT_MS });
  } finally {
    await page.close();
    await context.clearPermissions();
  }
});

test("closing the tab mid-session ends the session and frees the slot", async () => {
  assert.ok(server && browser);
  const base = server.url;

  // A session in a tab of its own, streaming.
  const tab = await browser.context.newPage();
  const sessionId = await play(tab, base, FEW_FRAMES);
  const running = await brokerSession(base, sessionId);
  assert.equal(running.state, "running", `broker state before closing: ${JSON.stringify(running)}`);

  // Close the tab without End session (and without beforeunload handlers).
  const closedAt = Date.now();
  await tab.close({ runBeforeUnload: false });
  console.log(`tab_close_to_ended_ms=${await untilEnded(base, sessionId, closedAt)}`);

  // The one slot is free again.
  await playAndEnd(browser.context, base);
});

test("a crashed tab (no pagehide) ends the session through the host and frees the slot", async () => {
  assert.ok(server && browser);
  const base = server.url;

  const tab = await browser.context.newPage();
  const sessionId = await play(tab, base, FEW_FRAMES);
  assert.equal((await brokerSession(base, sessionId)).state, "running");

  // Kill the renderer: no pagehide, no DELETEs, no DTLS/SCTP goodbye; only the host can end the session.
  const crashed = tab.waitForEvent("crash", { timeout: WAIT_MS });
  const cdp = await browser.context.newCDPSession(tab);
  const crashedAt = Date.now();
  cdp.send("Page.crash").catch(() => undefined); // never answers: the target dies
  await crashed;
  console.log(`renderer_crash_to_ended_ms=${await untilEnded(base, sessionId, crashedAt)}`);
  await tab.close();

  await playAndEnd(browser.context, base);
});
