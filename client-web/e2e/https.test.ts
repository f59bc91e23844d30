// The page from an HTTPS origin that is not localhost: `gridplay up` serves the broker and the web client over TLS with
// a certificate for gridplay.test from a test CA, which the browser's certificate store (an NSS database under its
// HOME) trusts and its resolver maps to 127.0.0.1. The page runs in a secure context (WebCrypto, the Gamepad API) and
// plays, its signed probe reports accepted. Needs `openssl` and `certutil` (libnss3-tools).

import assert from "node:assert/strict";
import { execFile } from "node:child_process";
import { mkdir, mkdtemp, rm, writeFile } from "node:fs/promises";
import { tmpdir } from "node:os";
import { join } from "node:path";
import { after, before, test } from "node:test";
import { promisify } from "node:util";

import { launchBrowser, type Browser } from "./browser.ts";
import { stats, waitFor, watchPage } from "./helpers.ts";
import { startServer, type Server, type ServerTls } from "./server.ts";

const run = promisify(execFile);
/** The name the page is opened at. */
const NAME = "gridplay.test";

let dir: string | undefined;
let server: Server | undefined;
let browser: Browser | undefined;

/** A test CA and a certificate it signed for NAME and 127.0.0.1, as PEM files in `dir`. */
async function certificates(dir: string): Promise<ServerTls> {
  const at = (file: string): string => join(dir, file);
  const ec = ["-newkey", "ec", "-pkeyopt", "ec_paramgen_curve:prime256v1", "-nodes"];
  await run("openssl", ["req", "-x509", ...ec, "-keyout", at("ca.key"), "-out", at("ca.pem"), "-days", "2", "-subj", "/CN=Gridplay test CA"]);
  await run("openssl", ["req", ...ec, "-keyout", at("broker.key"), "-out", at("broker.csr"), "-subj", `/CN=${NAME}`]);
  const extensions = `subjectAltName=DNS:${NAME},IP:127.0.0.1\nbasicConstraints=CA:FALSE\nextendedKeyUsage=serverAuth\n`;
  await writeFile(at("broker.ext"), extensions);
  const sign = ["-CA", at("ca.pem"), "-CAkey", at("ca.key"), "-CAcreateserial", "-days", "2", "-extfile", at("broker.ext")];
  await run("openssl", ["x509", "-req", "-in", at("broker.csr"), ...sign, "-out", at("broker.pem")]);
  return { cert: at("broker.pem"), key: at("broker.key"), ca: at("ca.pem"), name: NAME };
}

/** A HOME whose NSS database trusts the CA at `ca` for websites. */
async function homeTrusting(home: string, ca: string): Promise<void> {
  const nssdb = join(home, ".pki", "nssdb");
  await mkdir(nssdb, { recursive: true });
  await run("certutil", ["-d", `sql:${nssdb}`, "-N", "--empty-password"]);
  await run("certutil", ["-d", `sql:${nssdb}`, "-A", "-t", "C,,", "-n", "Gridplay test CA", "-i", ca]);
}

before(async () => {
  dir = await mkdtemp(join(tmpdir(), "gridplay-https-"));
  const tls = await certificates(dir);
  const home = join(dir, "home");
  await homeTrusting(home, tls.ca);
  server = await startServer({ slots: 1, tls });
  browser = await launchBrowser({ home, args: [`--host-resolver-rules=MAP ${NAME} 127.0.0.1`] });
});

after(async () => {
  await browser?.close();
  await server?.stop();
  if (dir !== undefined) await rm(dir, { recursive: true, force: true });
});

test("from https://gridplay.test the page is a secure context and plays", async () => {
  assert.ok(server && browser);
  const { page } = browser;
  const pageErrors = watchPage(page);
  assert.match(server.url, /^https:\/\/gridplay\.test:\d+\/$/);
  await page.goto(server.url);
  const context = await page.evaluate(() => ({
    secure: window.isSecureContext,
    webCrypto: typeof crypto.subtle?.digest === "function",
    gamepads: typeof navigator.getGamepads === "function",
  }));
  assert.deepEqual(context, { secure: true, webCrypto: true, gamepads: true });
  await page.locator('[data-app-id="orbit"]').getByRole("button", { name: "Play" }).click();
  await waitFor(page, "60 frames", (n) => window.__gridplay.framesDecoded >= n, 60);
  await waitFor(page, "a signed probe report", (n) => window.__gridplay.probeReportsSent >= n, 2);
  const played = await stats(page);
  assert.equal(played.probeReportsRejected, 0);
  assert.deepEqual(pageErrors, []);
});
