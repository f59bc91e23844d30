// Waiting on the page's stats and reading the player off the picture, shared by the browser tests.

import assert from "node:assert/strict";
import type { Page } from "playwright-core";

import type { GridplayStats } from "../src/stats.ts";
import { analyseFrame, type FrameAnalysis } from "./frame.ts";

export const WAIT_MS = 30_000;

export const stats = (page: Page): Promise<GridplayStats> => page.evaluate(() => ({ ...window.__gridplay }));

/** page.waitForFunction with the page's stats and messages in the error. */
export async function waitFor(page: Page, what: string, fn: (arg: number) => boolean, arg = 0): Promise<void> {
  try {
    await page.waitForFunction(fn, arg, { timeout: WAIT_MS, polling: 50 });
  } catch (err) {
    const shown = await page.evaluate(() =>
      ["error", "status", "lobby-status"].map((id) => `#${id}: ${document.getElementById(id)?.textContent ?? ""}`).join("; "),
    );
    throw new Error(`timed out waiting for ${what}; stats ${JSON.stringify(await stats(page))}; ${shown}`, { cause: err });
  }
}

/** Waits until every input sent so far is acknowledged, then a few more frames, and measures the frame. */
export async function settledFrame(page: Page): Promise<FrameAnalysis> {
  const { inputsSent } = await stats(page);
  await waitFor(page, `acks for ${inputsSent} inputs`, (n) => window.__gridplay.inputsAcked >= n, inputsSent);
  const { framesDecoded } = await stats(page);
  await waitFor(page, "5 more frames", (n) => window.__gridplay.framesDecoded >= n, framesDecoded + 5);
  return page.evaluate(analyseFrame);
}

/** The player's centre as fractions of the picture; fails when no yellow player is in the frame. */
export function player(frame: FrameAnalysis): { x: number; y: number } {
  assert.ok(frame.cx !== null && frame.cy !== null, `no yellow player in the frame: ${JSON.stringify(frame)}`);
  return { x: frame.cx, y: frame.cy };
}
