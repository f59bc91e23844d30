// The Gridplay server under test: GRIDPLAY_URL if set, else `$GRIDPLAY_BIN up` on free ports (plus any extra `up`
// arguments a test needs, e.g. a local chain).

import { spawn, type ChildProcess } from "node:child_process";
import { existsSync, readFileSync } from "node:fs";
import { request } from "node:https";
import { createServer } from "node:net";
import { fileURLToPath } from "node:url";

// build/e2e/ → client-web/ → repository root.
const clientDir = fileURLToPath(new URL("../../", import.meta.url));
export const repoRoot = fileURLToPath(new URL("../../../", import.meta.url));
const START_TIMEOUT_MS = 120_000;
/** Lines of the server's output quoted when it fails to start. */
const OUTPUT_LINES_KEPT = 20;

export interface Server {
  /** Base URL ending in "/", e.g. http://127.0.0.1:8080/. */
  url: string;
  /** Process id of the spawned `gridplay up`; null when GRIDPLAY_URL names a server started elsewhere. */
  pid: number | null;
  stop(): Promise<void>;
}

export interface ServerOptions {
  /** `--slots`: concurrent sessions the host offers (the binary's default when absent; ignored with GRIDPLAY_URL). */
  slots?: number;
  /** More `gridplay up` arguments, e.g. `["--anvil", path, "--epoch-seconds", "10"]` (ignored with GRIDPLAY_URL). */
  upArgs?: string[];
  /** Serve HTTPS with this certificate, the page at `https://{name}:{port}/` (ignored with GRIDPLAY_URL). */
  tls?: ServerTls;
}

/** The broker's certificate (PEM files), the CA that signed it and the name it is for. */
export interface ServerTls {
  cert: string;
  key: string;
  ca: string;
  /** A name the certificate holds, which resolves to 127.0.0.1 for whoever opens the page. */
  name: string;
}

export async function startServer(options: ServerOptions = {}): Promise<Server> {
  const given = process.env["GRIDPLAY_URL"];
  if (given) {
    const url = new URL(given).href;
    await waitForApi(url, null);
    return { url, pid: null, stop: async () => undefined };
  }

  const bin = gridplayBinary();
  // The host has no port of its own: players' signalling reaches it through its link to the broker.
  const port = await freePort();
  const args = ["up", "--port", String(port)];
  if (options.slots !== undefined) args.push("--slots", String(options.slots));
  args.push(...(options.upArgs ?? []));
  const tls = options.tls;
  if (tls !== undefined) args.push("--tls-cert", tls.cert, "--tls-key", tls.key, "--ca-file", tls.ca);
  process.stderr.write(`[e2e] starting ${bin} ${args.join(" ")}\n`);
  const child = spawn(bin, args, {
    cwd: repoRoot,
    stdio: ["ignore", "pipe", "pipe"],
    env: { ...process.env, GRIDPLAY_WEB_DIR: `${clientDir}dist` },
  });
  const output = forward(child);
  const url = tls === undefined ? `http://127.0.0.1:${port}/` : `https://${tls.name}:${port}/`;
  try {
    await waitForApi(url, child, tls);
  } catch (err) {
    await stop(child);
    const why = err instanceof Error ? err.message : String(err);
    throw new Error(`${bin} ${args.join(" ")} did not start: ${why}\nits last output:\n${output.join("\n")}`, { cause: err });
  }
  return { url, pid: child.pid ?? null, stop: () => stop(child) };
}

/** The gridplay binary: GRIDPLAY_BIN, else target/{release,debug}/gridplay. */
export function gridplayBinary(): string {
  const given = process.env["GRIDPLAY_BIN"];
  if (given) return given;
  const built = [`${repoRoot}target/release/gridplay`, `${repoRoot}target/debug/gridplay`].find((p) => existsSync(p));
  if (built) return built;
  throw new Error("Set GRIDPLAY_URL (a running server) or GRIDPLAY_BIN (the gridplay binary), or build target/{release,debug}/gridplay");
}

/** A TCP port free on 127.0.0.1 now. */
export function freePort(): Promise<number> {
  return new Promise((resolve, reject) => {
    const server = createServer();
    server.once("error", reject);
    server.listen(0, "127.0.0.1", () => {
      const address = server.address();
      const port = typeof address === "object" && address !== null ? address.port : 0;
      server.close(() => (port > 0 ? resolve(port) : reject(new Error("no free port"))));
    });
  });
}

/** GET `path` of the HTTPS server on 127.0.0.1 at `port`, checking its certificate for `tls.name` against `tls.ca`; the status. */
function httpsStatus(port: number, path: string, tls: ServerTls): Promise<number> {
  return new Promise((resolve, reject) => {
    const options = { host: "127.0.0.1", port, path, servername: tls.name, ca: readFileSync(tls.ca), timeout: 2000 };
    const req = request(options, (res) => {
      res.resume();
      resolve(res.statusCode ?? 0);
    });
    req.on("timeout", () => req.destroy(new Error("timed out")));
    req.on("error", reject);
    req.end();
  });
}

/** Polls GET /v1/apps until it answers 200; fails early if the child exits. */
async function waitForApi(url: string, child: ChildProcess | null, tls?: ServerTls): Promise<void> {
  const deadline = Date.now() + START_TIMEOUT_MS;
  let last = "";
  while (Date.now() < deadline) {
    if (child !== null && child.exitCode !== null) throw new Error(`gridplay exited with ${child.exitCode} before serving ${url}`);
    try {
      const status =
        tls === undefined
          ? (await fetch(new URL("v1/apps", url), { signal: AbortSignal.timeout(2000) })).status
          : await httpsStatus(Number(new URL(url).port), "/v1/apps", tls);
      if (status === 200) return;
      last = `HTTP ${status}`;
    } catch (err) {
      last = String(err);
    }
    await new Promise((r) => setTimeout(r, 250));
  }
  throw new Error(`${url}v1/apps did not answer within ${START_TIMEOUT_MS} ms (last: ${last})`);
}

/** Copies the child's output to stderr; returns its latest lines (kept up to date). */
function forward(child: ChildProcess): string[] {
  const latest: string[] = [];
  for (const stream of [child.stdout, child.stderr]) {
    stream?.setEncoding("utf8");
    stream?.on("data", (chunk: string) => {
      for (const line of chunk.split("\n")) {
        if (line === "") continue;
        process.stderr.write(`[gridplay] ${line}\n`);
        latest.push(line);
        if (latest.length > OUTPUT_LINES_KEPT) latest.shift();
      }
    });
  }
  return latest;
}

async function stop(child: ChildProcess): Promise<void> {
  if (child.exitCode !== null || child.signalCode !== null) return;
  const exited = new Promise<void>((resolve) => child.once("exit", () => resolve()));
  child.kill("SIGTERM");
  const timer = setTimeout(() => child.kill("SIGKILL"), 10_000);
  await exited;
  clearTimeout(timer);
}
