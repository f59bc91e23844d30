// Browser tests of catalogue apps (the repository's example catalogue, as `make up` offers it), driven through the
// lobby like a player: every app is listed with its name and description; in the terminal a typed line appears on
// the picture (and, still, it plays at the full frame rate) and `exit` ends the session with "app exited" in the page, and so does an `exit` pasted from the
// page's clipboard; vkcube (Vulkan on lavapipe, in its
// sandbox) plays at 30 fps or more at 1280x720; glxgears (OpenGL) animates. Server: `$GRIDPLAY_BIN up --apps …`.

import assert from "node:assert/strict";
import { test } from "node:test";

import type { App } from "../src/generated/App.ts";
import type { Browser } from "./browser.ts";
import { analyseFrame, lumaGrid, pictureBox } from "./frame.ts";
import { WAIT_MS, sleep, stats, waitFor, watchPage } from "./helpers.ts";
import { serverAndBrowser } from "./running.ts";
import { repoRoot, type Server } from "./server.ts";

const CATALOGUE = `${repoRoot}apps/catalogue.toml`;
/** How long the frame rate is measured over. */
const MEASURE_MS = 5_000;
/** How long a still terminal's frame rate is measured over. */
const STILL_MS = 2_000;
/** The grid the picture is compared on. */
const GRID = 8;

let server: Server | undefined;
let browser: Browser | undefined;

serverAndBrowser({ slots: 2, upArgs: ["--apps", CATALOGUE] }, {}, (started, opened) => {
  [server, browser] = [started, opened];
});

/** Waits for the terminal's window (white, top left) and puts the pointer over it, which gives it the keyboard. */
async function pointAtTerminal(): Promise<void> {
  assert.ok(browser);
  const { page } = browser;
  await waitFor(page, "the terminal's window", () => {
    const video = document.getElementById("stream") as HTMLVideoElement;
    const canvas = document.createElement("canvas");
    canvas.width = 8;
    canvas.height = 8;
    const ctx = canvas.getContext("2d");
    ctx?.drawImage(video, 0, 0, video.videoWidth / 4, video.videoHeight / 4, 0, 0, 8, 8);
    const data = ctx?.getImageData(0, 0, 8, 8).data ?? [];
    return Array.from(data).filter((v, i) => i % 4 === 1 && v > 200).length > 48;
  });
  const box = await page.evaluate(pictureBox);
  await page.mouse.move(box.left + 0.1 * box.width, box.top + 0.1 * box.height);
}

/** Opens the lobby and plays `id`; resolves once `frames` frames were shown. */
async function play(id: string, frames = 30): Promise<void> {
  assert.ok(server && browser);
  const { page } = browser;
  await page.goto(server.url);
  await page.locator(`[data-app-id="${id}"]`).getByRole("button", { name: "Play" }).click();
  await waitFor(page, `${frames} frames of ${id}`, (n) => window.__gridplay.framesDecoded >= n, frames);
}

/** The grid of the current picture differs from `base` in at least `cells` cells by more than `by`, darker only when
 * `darker`. Runs in the page, with lumaGrid installed by installLumaGrid. */
function differs({ base, grid, cells, by, darker }: { base: number[]; grid: number; cells: number; by: number; darker: boolean }): boolean {
  const now = (window as unknown as { gridplayLumaGrid(c: number): number[] }).gridplayLumaGrid(grid);
  return now.filter((luma, i) => (darker ? (base[i] ?? 0) - luma : Math.abs(luma - (base[i] ?? 0))) > by).length >= cells;
}

/** Makes lumaGrid callable from functions evaluated in the page. */
async function installLumaGrid(): Promise<void> {
  assert.ok(browser);
  await browser.page.evaluate(`window.gridplayLumaGrid = ${lumaGrid.toString()}`);
}

/** Waits until the app has drawn something: the picture is no longer one flat colour. */
async function drawn(what: string): Promise<void> {
  assert.ok(browser);
  await installLumaGrid();
  const flat = new Array<number>(GRID * GRID).fill(0);
  // Against an all-black grid, "drawn" means some cell brighter than black by a margin.
  await browser.page.waitForFunction(differs, { base: flat, grid: GRID, cells: 1, by: 8, darker: false }, { timeout: WAIT_MS, polling: 50 }).catch((err) => {
    throw new Error(`${what} never drew anything`, { cause: err });
  });
}

/** Ends the session from the page and waits for the lobby. */
async function endFromPage(): Promise<void> {
  assert.ok(browser);
  await browser.page.locator("#end").click();
  await browser.page.locator("#lobby").waitFor({ state: "visible" });
}

test("the lobby lists every app of the host's catalogue with its name and description", async () => {
  assert.ok(server && browser);
  const apps = (await (await fetch(new URL("v1/apps", server.url))).json()) as App[];
  const ids = apps.map((a) => a.id);
  for (const id of ["orbit", "terminal", "vkcube", "glxgears", "lbreakout2", "freecell"]) assert.ok(ids.includes(id), `${id} is missing from ${ids}`);
  const { page } = browser;
  await page.goto(server.url);
  for (const app of apps) {
    const card = page.locator(`[data-app-id="${app.id}"]`);
    await card.waitFor();
    const text = (await card.textContent()) ?? "";
    assert.ok(text.includes(app.title) && text.includes(app.description), `the ${app.id} card shows ${JSON.stringify(text)}`);
  }
});

test("terminal: a typed line appears on the picture, and exit ends the session with its reason", async () => {
  assert.ok(browser);
  const { page } = browser;
  const pageErrors = watchPage(page);
  await play("terminal");
  await pointAtTerminal();
  // Still, the terminal is repeated rather than encoded again, and those repeats are frames: the page decodes the
  // stream's full rate (which its probes report for billing).
  const start = (await stats(page)).framesDecoded;
  await sleep(STILL_MS);
  const fps = (((await stats(page)).framesDecoded - start) * 1000) / STILL_MS;
  process.stderr.write(`[e2e] a still terminal: ${fps.toFixed(1)} fps in Chromium\n`);
  assert.ok(fps >= 50, `a still terminal plays at ${fps.toFixed(1)} fps`);
  const before = await page.evaluate(lumaGrid, GRID);
  await page.keyboard.type(`echo ${"M".repeat(40)}`);
  await page.keyboard.press("Enter");
  // Each typed character and the echoed line darken the top rows of the terminal.
  await waitFor(page, "acks for the typed keys", (n) => window.__gridplay.inputsAcked >= n, (await stats(page)).inputsSent);
  await installLumaGrid();
  await page.waitForFunction(differs, { base: before, grid: GRID, cells: 2, by: 8, darker: true }, { timeout: WAIT_MS, polling: 50 });
  await page.keyboard.type("exit");
  await page.keyboard.press("Enter");
  await waitFor(page, "the session's end", () => window.__gridplay.endReason !== null);
  assert.equal((await stats(page)).endReason, "app exited (status 0)");
  await page.locator("#lobby").waitFor({ state: "visible" });
  assert.match((await page.locator("#error").textContent()) ?? "", /app exited/);
  assert.deepEqual(pageErrors, []);
});

test("terminal: the player's clipboard pastes into the app (Shift+Insert)", async () => {
  assert.ok(browser && server);
  const { page, context } = browser;
  await context.grantPermissions(["clipboard-read", "clipboard-write"], { origin: server.url });
  await play("terminal");
  await pointAtTerminal();
  // The pasted line shows at the prompt (a paste is answered after the keys already sent, so Enter waits for it),
  // and then ends the shell: the session's end shows the whole line arrived.
  await page.evaluate((line) => navigator.clipboard.writeText(line), `echo ${"M".repeat(40)}; exit`);
  const before = await page.evaluate(lumaGrid, GRID);
  await page.keyboard.press("Shift+Insert");
  await installLumaGrid();
  await page.waitForFunction(differs, { base: before, grid: GRID, cells: 2, by: 8, darker: true }, { timeout: WAIT_MS, polling: 50 });
  await page.keyboard.press("Enter");
  await waitFor(page, "the session's end", () => window.__gridplay.endReason !== null);
  assert.equal((await stats(page)).endReason, "app exited (status 0)");
});

test("vkcube: Vulkan in its sandbox plays at 30 fps or more at 1280x720", async () => {
  assert.ok(browser);
  const { page } = browser;
  await play("vkcube", 60);
  await drawn("vkcube");
  const frame = await page.evaluate(analyseFrame);
  assert.deepEqual([frame.width, frame.height], [1280, 720]);
  assert.ok(frame.lumaStdDev > 5, `vkcube's picture is uniform: ${JSON.stringify(frame)}`);
  const start = (await stats(page)).framesDecoded;
  await sleep(MEASURE_MS);
  const fps = (((await stats(page)).framesDecoded - start) * 1000) / MEASURE_MS;
  process.stderr.write(`[e2e] vkcube 1280x720: ${fps.toFixed(1)} fps in Chromium\n`);
  assert.ok(fps >= 30, `vkcube plays at ${fps.toFixed(1)} fps`);
  await endFromPage();
});

test("glxgears: OpenGL in its sandbox animates", async () => {
  assert.ok(browser);
  const { page } = browser;
  await play("glxgears");
  await drawn("glxgears");
  const first = await page.evaluate(lumaGrid, GRID);
  await page.waitForFunction(differs, { base: first, grid: GRID, cells: 1, by: 1, darker: false }, { timeout: WAIT_MS, polling: 50 }).catch((err) => {
    throw new Error("the gears do not turn", { cause: err });
  });
  await endFromPage();
});
