import assert from "node:assert/strict";
import { test } from "node:test";

import {
  allocationHints,
  candidatesUrl,
  coarse,
  collectSamples,
  measureCandidates,
  parseCandidates,
  TIMED_PINGS,
  toSample,
  type Candidate,
} from "../src/rtt.ts";

const candidate = (host_id: string, n = 1): Candidate => ({
  host_id,
  region: "eu",
  ping_url: `http://host-${n}.test/ping`,
  distance_km: n,
});

test("a sample is the minimum of the timed pings", () => {
  assert.deepEqual(toSample("h", [12.5, 3.25, 7]), { host_id: "h", rtt_ms: 3.25 });
  assert.deepEqual(toSample("h", [0.123456]), { host_id: "h", rtt_ms: 0.12 }, "rounded to 0.01 ms");
  assert.equal(toSample("h", []), null, "no finished ping, no sample");
  assert.equal(toSample("h", [NaN, -1, Infinity]), null, "nonsense times are ignored");
  assert.deepEqual(toSample("h", [20_000, 15_000]), { host_id: "h", rtt_ms: 10_000 }, "within the broker's 0..=10000");
});

test("hosts without a finished timed ping are left out", () => {
  const candidates = [candidate("a", 1), candidate("b", 2), candidate("c", 3)];
  assert.deepEqual(collectSamples(candidates, [[5, 4, 6], [], [9]]), [
    { host_id: "a", rtt_ms: 4 },
    { host_id: "c", rtt_ms: 9 },
  ]);
  assert.deepEqual(collectSamples(candidates, [[1]]), [{ host_id: "a", rtt_ms: 1 }], "missing time lists count as empty");
});

test("the request carries location and samples only when known", () => {
  assert.deepEqual(allocationHints(null, []), {});
  const hints = allocationHints(null, [{ host_id: "a", rtt_ms: 4 }]);
  assert.deepEqual(hints, { rtt_samples: [{ host_id: "a", rtt_ms: 4 }] });
  assert.ok(!("location" in hints), "an unknown location is omitted, not 0,0");
  assert.deepEqual(allocationHints({ lat: 48.86, lon: 2.35 }, []), { location: { lat: 48.86, lon: 2.35 } });
  const many = Array.from({ length: 40 }, (_, i) => ({ host_id: `h${i}`, rtt_ms: i }));
  assert.equal(allocationHints(null, many).rtt_samples?.length, 32, "at most the broker's 32 samples");
});

test("the location is coarsened to about a kilometre", () => {
  assert.deepEqual(coarse({ lat: 48.856613, lon: -2.352222 }), { lat: 48.86, lon: -2.35 });
});

test("candidatesUrl uses 0,0 for an unknown location and names the app when given", () => {
  assert.equal(candidatesUrl("game", null), "/v1/candidates?lat=0&lon=0&profile=game");
  assert.equal(candidatesUrl("phone", { lat: -33.87, lon: 151.21 }, "http://b.test"), "http://b.test/v1/candidates?lat=-33.87&lon=151.21&profile=phone");
  assert.equal(candidatesUrl("game", null, "/", "orbit"), "/v1/candidates?lat=0&lon=0&profile=game&app=orbit");
});

test("parseCandidates keeps well-formed entries, nearest first, at most 4", () => {
  const body = [
    { host_id: "a", region: "eu", ping_url: "http://a.test/ping", distance_km: 1 },
    { host_id: "", region: "eu", ping_url: "http://x.test/ping", distance_km: 2 },
    { host_id: "b", region: "eu", ping_url: "javascript:alert(1)", distance_km: 3 },
    { host_id: "c", ping_url: "https://c.test/ping" },
    null,
    { host_id: "a", region: "eu", ping_url: "http://a2.test/ping", distance_km: 4 },
    { host_id: "d", region: "us", ping_url: "http://d.test/ping", distance_km: 5 },
    { host_id: "e", region: "us", ping_url: "http://e.test/ping", distance_km: 6 },
    { host_id: "f", region: "us", ping_url: "http://f.test/ping", distance_km: 7 },
  ];
  assert.deepEqual(
    parseCandidates(body).map((c) => c.host_id),
    ["a", "c", "d", "e"],
  );
  assert.deepEqual(parseCandidates({ error: "x" }), []);
});

/** A fake fetch: the candidates answer, then per-host ping delays (ms of fake clock), honouring abort. */
function fakeNetwork(candidates: Candidate[], delays: Record<string, number | "hang" | "fail">) {
  let clock = 0;
  const requests: string[] = [];
  const fetchFn = async (input: RequestInfo | URL, init?: RequestInit): Promise<Response> => {
    const url = String(input);
    requests.push(url);
    if (url.includes("/v1/candidates")) return Response.json(candidates);
    const host = candidates.find((c) => c.ping_url === url);
    const delay = host === undefined ? "fail" : delays[host.host_id];
    if (delay === "fail" || delay === undefined) return new Response("nope", { status: 500 });
    assert.equal(init?.cache, "no-store");
    assert.equal(init?.mode, "cors");
    return new Promise((resolve, reject) => {
      const signal = init?.signal;
      const abort = (): void => reject(new DOMException("aborted", "AbortError"));
      if (signal?.aborted) return abort();
      signal?.addEventListener("abort", abort, { once: true });
      if (delay === "hang") return;
      setTimeout(() => {
        signal?.removeEventListener("abort", abort);
        clock += delay;
        resolve(new Response(null, { status: 204 }));
      }, 1);
    });
  };
  return { fetch: fetchFn as typeof fetch, now: () => clock, requests };
}

test("measureCandidates measures every candidate and drops the ones that time out or fail", async () => {
  const candidates = [candidate("near", 1), candidate("hung", 2), candidate("broken", 3), candidate("far", 4)];
  const net = fakeNetwork(candidates, { near: 2, hung: "hang", broken: "fail", far: 30 });
  const started = Date.now();
  const samples = await measureCandidates("game", null, { fetch: net.fetch, now: net.now, timeoutMs: 300 });
  assert.ok(Date.now() - started < 2_000, "the timeout bounds the probe");
  assert.deepEqual(
    samples.map((s) => s.host_id),
    ["near", "far"],
  );
  for (const s of samples) assert.ok(s.rtt_ms >= 0 && s.rtt_ms <= 10_000);
  assert.equal(net.requests[0], "/v1/candidates?lat=0&lon=0&profile=game");
  const pings = (host: string): number => net.requests.filter((r) => r === candidates.find((c) => c.host_id === host)?.ping_url).length;
  assert.equal(pings("near"), 1 + TIMED_PINGS, "one warm-up, then the timed pings");
  assert.equal(pings("far"), 1 + TIMED_PINGS);
});

test("measureCandidates measures at most 4 candidates", async () => {
  const candidates = [1, 2, 3, 4, 5, 6].map((n) => candidate(`h${n}`, n));
  const net = fakeNetwork(candidates, Object.fromEntries(candidates.map((c) => [c.host_id, 1])));
  const samples = await measureCandidates("phone", null, { fetch: net.fetch, now: net.now, timeoutMs: 1_000 });
  assert.deepEqual(
    samples.map((s) => s.host_id),
    ["h1", "h2", "h3", "h4"],
  );
});

test("measureCandidates returns no samples when the broker cannot list candidates", async () => {
  const warn = console.warn;
  console.warn = () => undefined;
  try {
    const failing = (async () => new Response("not found", { status: 404 })) as typeof fetch;
    assert.deepEqual(await measureCandidates("game", null, { fetch: failing }), []);
    const throwing = (async () => {
      throw new TypeError("network");
    }) as typeof fetch;
    assert.deepEqual(await measureCandidates("game", null, { fetch: throwing }), []);
  } finally {
    console.warn = warn;
  }
  const hanging = ((_: RequestInfo | URL, init?: RequestInit) =>
    new Promise((_resolve, reject) => init?.signal?.addEventListener("abort", () => reject(new Error("aborted"))))) as typeof fetch;
  assert.deepEqual(await measureCandidates("game", null, { fetch: hanging, timeoutMs: 20 }), [], "a silent broker times out");
});

test("measureCandidates times the pings after the warm-up and keeps the fastest", async () => {
  const host = candidate("only");
  const pingMs = [80, 7, 3, 5]; // warm-up (connection setup) is not a sample
  let clock = 0;
  let pings = 0;
  const fetchFn = (async (input: RequestInfo | URL) => {
    if (String(input).includes("/v1/candidates")) return Response.json([host]);
    clock += pingMs[pings++] ?? 1_000;
    return new Response(null, { status: 204 });
  }) as typeof fetch;
  assert.deepEqual(await measureCandidates("game", null, { fetch: fetchFn, now: () => clock }), [{ host_id: "only", rtt_ms: 3 }]);
  assert.equal(pings, 1 + TIMED_PINGS);
});
