// Media through a TURN relay: coturn (from apt) on loopback shares a secret with `gridplay up`, whose broker hands the
// page short-lived TURN credentials with each allocation. A page told to go through the relay alone (`?ice=relay`)
// plays through it; against a broker that hands out no TURN server, or credentials coturn refuses, it fails with a
// clear error, and gives its slot back.

import assert from "node:assert/strict";
import { type ChildProcess, spawn } from "node:child_process";
import { mkdtemp, rm, writeFile } from "node:fs/promises";
import { connect } from "node:net";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";

import { launchBrowser, type Browser } from "./browser.ts";
import { WAIT_MS, sleep, waitFor, watchPage } from "./helpers.ts";
import { freePort, startServer, type Server } from "./server.ts";

const SECRET = "gridplay-e2e-turn-secret";

let dir: string | undefined;
let coturn: ChildProcess | undefined;
let relayed: Server | undefined;
let plain: Server | undefined;
/** A broker whose TURN secret is not coturn's: every credential it hands out is refused. */
let refused: Server | undefined;
let browser: Browser | undefined;

/** Resolves once something listens on TCP `port` of 127.0.0.1. */
async function listening(port: number): Promise<void> {
  const deadline = Date.now() + WAIT_MS;
  for (;;) {
    const up = await new Promise<boolean>((resolve) => {
      const socket = connect(port, "127.0.0.1", () => {
        socket.destroy();
        resolve(true);
      });
      socket.once("error", () => resolve(false));
    });
    if (up) return;
    if (Date.now() > deadline) throw new Error(`turnserver never listened on ${port}`);
    await sleep(50);
  }
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "gridplay-turn-"));
  const secretFile = join(dir, "turn.secret");
  await writeFile(secretFile, `${SECRET}\n`);
  const port = await freePort();
  coturn = spawn(
    "turnserver",
    ["-n", "--no-cli", "--no-tls", "--no-dtls", "--fingerprint", "--listening-ip", "127.0.0.1", "--relay-ip", "127.0.0.1",
      "--listening-port", String(port), "--use-auth-secret", "--static-auth-secret", SECRET, "--realm", "gridplay.test",
      "--allow-loopback-peers", "--log-file", "stdout"],
    { stdio: "ignore" },
  );
  await listening(port);
  const ice = ["--stun-url", `stun:127.0.0.1:${port}`, "--turn-url", `turn:127.0.0.1:${port}?transport=udp`, "--turn-secret-file", secretFile];
  relayed = await startServer({ slots: 1, upArgs: ice });
  plain = await startServer({ slots: 1 });
  const wrongSecret = join(dir, "wrong.secret");
  await writeFile(wrongSecret, "not-the-turn-servers-secret\n");
  refused = await startServer({ slots: 1, upArgs: [...ice.slice(0, -1), wrongSecret] });
  browser = await launchBrowser();
});

after(async () => {
  await browser?.close();
  await relayed?.stop();
  await plain?.stop();
  await refused?.stop();
  coturn?.kill();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

test("through the TURN relay alone the page plays", async () => {
  assert.ok(relayed && browser);
  const { page } = browser;
  const pageErrors = watchPage(page);
  // With iceTransportPolicy "relay" the page offers relay candidates only: every frame came through coturn.
  await page.goto(`${relayed.url}?ice=relay`);
  await page.locator('[data-app-id="orbit"]').getByRole("button", { name: "Play" }).click();
  // The rate is tests/netns/nat.sh's to check; here, that frames keep coming through the relay.
  await waitFor(page, "180 frames", (n) => window.__gridplay.framesDecoded >= n, 180);
  await page.getByRole("button", { name: "End session" }).click();
  assert.deepEqual(pageErrors, []);
});

test("the relay alone without a TURN server is a clear error in the page, and the slot is given back", async () => {
  assert.ok(plain && browser);
  const { page } = browser;
  for (let attempt = 0; attempt < 2; attempt += 1) {
    await page.goto(`${plain.url}?ice=relay`);
    await page.locator('[data-app-id="orbit"]').getByRole("button", { name: "Play" }).click();
    const error = page.locator("#error");
    await error.waitFor({ state: "visible", timeout: WAIT_MS });
    // A second try meets the same error, not "no capacity": the first gave its one slot back.
    assert.match((await error.textContent()) ?? "", /no TURN server/);
  }
});

test("credentials the TURN server refuses are a clear error in the page", async () => {
  assert.ok(refused && browser);
  const { page } = browser;
  await page.goto(`${refused.url}?ice=relay`);
  await page.locator('[data-app-id="orbit"]').getByRole("button", { name: "Play" }).click();
  const error = page.locator("#error");
  await error.waitFor({ state: "visible", timeout: WAIT_MS });
  assert.match((await error.textContent()) ?? "", /TURN server gave no relay address \(credentials refused or expired/);
});

