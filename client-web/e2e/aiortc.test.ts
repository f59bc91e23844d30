// An independent WebRTC peer plays a session: aiortc (PyPI, in Python, its H.264 decoded by PyAV) allocates a session,
// negotiates over WHEP and decodes the whole 1280x720@60 stream for 10 s, although it sends no transport-wide
// congestion feedback (only receiver reports), then ends the session with a WHEP DELETE, which the broker sees.
// The peer's Python is GRIDPLAY_PEERS_PYTHON (`make e2e` installs it: `make peers-venv`).

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { after, before, test } from "node:test";
import { promisify } from "node:util";

import { sleep } from "./helpers.ts";
import { repoRoot, startServer, type Server } from "./server.ts";

const run = promisify(execFile);
/** How long the peer counts decoded frames. */
const SECONDS = 10;
/** How long the whole peer run may take: allocation, negotiation, the count and the DELETE. */
const RUN_TIMEOUT_MS = 90_000;
/** How long the broker may take to learn the session ended. */
const END_TIMEOUT_MS = 10_000;

/** What the peer prints, as one JSON line. */
interface PeerResult {
  session_id: string;
  frames: number;
  fps: number;
  width: number;
  height: number;
  delete_status: number;
  packets_received: number;
  packets_lost: number;
}

let server: Server | undefined;

before(async () => {
  server = await startServer({ slots: 1 });
});

after(async () => {
  await server?.stop();
});

test("aiortc decodes the whole 1280x720@60 stream over WHEP for 10 s and ends the session with DELETE", async () => {
  assert.ok(server);
  const python = process.env["GRIDPLAY_PEERS_PYTHON"];
  assert.ok(python, "GRIDPLAY_PEERS_PYTHON must name the Python with aiortc installed (make peers-venv)");
  const args = [`${repoRoot}tests/peers/whep_aiortc.py`, "--broker", server.url, "--width", "1280", "--height", "720", "--fps", "60"];
  const { stdout } = await run(python, [...args, "--seconds", String(SECONDS)], { timeout: RUN_TIMEOUT_MS });
  const result = JSON.parse(stdout.trim().split("\n").at(-1) ?? "{}") as PeerResult;
  process.stderr.write(`[e2e] aiortc: ${JSON.stringify(result)}\n`);
  assert.deepEqual([result.width, result.height], [1280, 720]);
  assert.ok(result.fps >= 55, `aiortc decoded ${result.fps} fps`);
  assert.ok(result.packets_lost <= result.packets_received / 100, `aiortc lost ${result.packets_lost} of ${result.packets_received} packets`);
  assert.equal(result.delete_status, 200);
  // The DELETE ended the session: the broker says so (and frees its slot).
  const url = new URL(`v1/sessions/${result.session_id}`, server.url);
  const deadline = Date.now() + END_TIMEOUT_MS;
  let state = "";
  while (Date.now() < deadline) {
    state = ((await (await fetch(url)).json()) as { state: string }).state;
    if (state === "ended") break;
    await sleep(100);
  }
  assert.equal(state, "ended");
});
