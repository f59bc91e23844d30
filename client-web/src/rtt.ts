// Before allocating: round-trip times to the broker's candidate hosts, sent with POST /v1/sessions so that
// placement uses measurements instead of the distance model. Best effort: any failure means "no samples".

import type { AllocateRequest } from "./generated/AllocateRequest";
import type { GeoPoint } from "./generated/GeoPoint";
import type { Profile } from "./generated/Profile";
import type { RttSample } from "./generated/RttSample";

/** The whole probe (location, candidate list, pings) gives up after this; unfinished hosts are left out. */
export const PROBE_TIMEOUT_MS = 800;
/** Part of the budget a granted-permission position fix may take. */
const GEO_TIMEOUT_MS = 200;
/** A cached position fix this recent is good enough (distance only needs the region). */
const GEO_MAX_AGE_MS = 10 * 60_000;
/** Hosts measured, nearest first. */
export const MEASURED_CANDIDATES = 4;
/** Timed pings per host after the warm-up one; the minimum is the sample. */
export const TIMED_PINGS = 3;
/** The broker's limits on a sample (AllocateRequest validation). */
const MAX_SAMPLES = 32;
const MAX_RTT_MS = 10_000;
const MAX_HOST_ID_LEN = 128;

/** An entry of `GET /v1/candidates`. */
export interface Candidate {
  host_id: string;
  region: string;
  ping_url: string;
  distance_km: number;
}

/** What the probe adds to an allocation request. */
export type AllocationHints = Pick<AllocateRequest, "location" | "rtt_samples">;

export interface ProbeOptions {
  /** Budget from the call, ms (default PROBE_TIMEOUT_MS). */
  timeoutMs?: number;
  /** Broker base for the candidates URL (default: the page's origin). */
  base?: string;
  /** Injected for tests. */
  fetch?: typeof fetch;
  now?: () => number;
}

/** `GET /v1/candidates` for `profile` (and `app` when given) near `location` (0, 0 when unknown), relative to `base`. */
export function candidatesUrl(profile: Profile, location: GeoPoint | null, base = "/", app?: string): string {
  const query = new URLSearchParams({
    lat: String(location?.lat ?? 0),
    lon: String(location?.lon ?? 0),
    profile,
  });
  if (app !== undefined) query.set("app", app);
  return `${base.replace(/\/?$/, "/")}v1/candidates?${query.toString()}`;
}

/** The well-formed entries of a candidates answer, nearest first as the broker sent them, at most `limit`. */
export function parseCandidates(body: unknown, limit = MEASURED_CANDIDATES): Candidate[] {
  if (!Array.isArray(body)) return [];
  const candidates: Candidate[] = [];
  for (const entry of body as unknown[]) {
    if (candidates.length >= limit) break;
    if (typeof entry !== "object" || entry === null) continue;
    const { host_id, region, ping_url, distance_km } = entry as Record<string, unknown>;
    if (typeof host_id !== "string" || host_id === "" || host_id.length > MAX_HOST_ID_LEN) continue;
    if (typeof ping_url !== "string" || !isHttpUrl(ping_url)) continue;
    if (candidates.some((c) => c.host_id === host_id)) continue;
    candidates.push({
      host_id,
      region: typeof region === "string" ? region : "",
      ping_url,
      distance_km: typeof distance_km === "number" ? distance_km : NaN,
    });
  }
  return candidates;
}

function isHttpUrl(text: string): boolean {
  try {
    const url = new URL(text);
    return url.protocol === "http:" || url.protocol === "https:";
  } catch {
    return false;
  }
}

/** The sample for one host: the minimum of its timed pings, or null when none finished. */
export function toSample(hostId: string, timesMs: readonly number[]): RttSample | null {
  const valid = timesMs.filter((t) => Number.isFinite(t) && t >= 0);
  if (valid.length === 0) return null;
  const min = Math.min(...valid);
  return { host_id: hostId, rtt_ms: Math.min(MAX_RTT_MS, Math.round(min * 100) / 100) };
}

/** The samples of the hosts that finished at least one timed ping, in candidate order, at most the broker's limit. */
export function collectSamples(candidates: readonly Candidate[], timesMs: readonly (readonly number[])[]): RttSample[] {
  const samples: RttSample[] = [];
  candidates.forEach((c, i) => {
    const sample = toSample(c.host_id, timesMs[i] ?? []);
    if (sample !== null && samples.length < MAX_SAMPLES) samples.push(sample);
  });
  return samples;
}

/** `location` and `rtt_samples` for the request; each left out when there is nothing to send. */
export function allocationHints(location: GeoPoint | null, samples: readonly RttSample[]): AllocationHints {
  const hints: AllocationHints = {};
  if (location !== null) hints.location = location;
  if (samples.length > 0) hints.rtt_samples = samples.slice(0, MAX_SAMPLES);
  return hints;
}

/** Coordinates rounded to 0.01° (about 1 km): enough for the distance model, no more precise than needed. */
export function coarse(point: GeoPoint): GeoPoint {
  const round = (x: number): number => Math.round(x * 100) / 100;
  return { lat: round(point.lat), lon: round(point.lon) };
}

/**
 * Fetches the candidates near `location` and measures up to MEASURED_CANDIDATES of them in parallel: one
 * warm-up fetch (connection setup), then TIMED_PINGS timed ones, keeping the minimum. Hosts without a finished
 * timed ping when the budget runs out are left out. Never throws: on any failure the result is just shorter.
 */
export async function measureCandidates(profile: Profile, location: GeoPoint | null, options: ProbeOptions = {}): Promise<RttSample[]> {
  const fetchFn = options.fetch ?? ((input: RequestInfo | URL, init?: RequestInit) => fetch(input, init));
  const now = options.now ?? (() => performance.now());
  const abort = new AbortController();
  const timer = setTimeout(() => abort.abort(), Math.max(0, options.timeoutMs ?? PROBE_TIMEOUT_MS));
  const { signal } = abort;
  try {
    const res = await fetchFn(candidatesUrl(profile, location, options.base), { headers: { Accept: "application/json" }, signal });
    if (!res.ok) throw new Error(`GET /v1/candidates answered ${res.status}`);
    const candidates = parseCandidates(await res.json());
    const times: number[][] = candidates.map(() => []);
    const pingAll = Promise.allSettled(candidates.map((c, i) => pingHost(c.ping_url, times[i] ?? [], signal, fetchFn, now)));
    await Promise.race([pingAll, aborted(signal)]);
    return collectSamples(candidates, times);
  } catch (err) {
    if (!signal.aborted) console.warn("gridplay: RTT probe failed, allocating without samples:", err);
    return [];
  } finally {
    clearTimeout(timer);
    abort.abort(); // cancels pings still in flight once the result is decided
  }
}

/** Warm-up, then TIMED_PINGS timed fetches of `url`, each duration pushed onto `times` as it finishes. */
async function pingHost(url: string, times: number[], signal: AbortSignal, fetchFn: typeof fetch, now: () => number): Promise<void> {
  const ping = async (): Promise<void> => {
    const res = await fetchFn(url, { cache: "no-store", mode: "cors", signal });
    if (!res.ok) throw new Error(`${url} answered ${res.status}`);
    await res.arrayBuffer(); // 204: empty; frees the connection for the next ping
  };
  await ping();
  for (let i = 0; i < TIMED_PINGS; i++) {
    const start = now();
    await ping();
    if (!signal.aborted) times.push(now() - start);
  }
}

function aborted(signal: AbortSignal): Promise<void> {
  return new Promise((resolve) => {
    if (signal.aborted) resolve();
    else signal.addEventListener("abort", () => resolve(), { once: true });
  });
}

/** The player's position when location permission is already granted (never prompts), else null. */
export async function knownLocation(timeoutMs = GEO_TIMEOUT_MS): Promise<GeoPoint | null> {
  if (typeof navigator === "undefined" || !("geolocation" in navigator) || !("permissions" in navigator)) return null;
  try {
    const permission = await navigator.permissions.query({ name: "geolocation" });
    if (permission.state !== "granted") return null;
  } catch {
    return null;
  }
  return new Promise((resolve) => {
    const timer = setTimeout(() => resolve(null), timeoutMs);
    navigator.geolocation.getCurrentPosition(
      (position) => {
        clearTimeout(timer);
        resolve(coarse({ lat: position.coords.latitude, lon: position.coords.longitude }));
      },
      () => {
        clearTimeout(timer);
        resolve(null);
      },
      { enableHighAccuracy: false, maximumAge: GEO_MAX_AGE_MS, timeout: timeoutMs },
    );
  });
}

/** Location (if granted) and RTT samples for an allocation of `profile`, within PROBE_TIMEOUT_MS overall. */
export async function probe(profile: Profile): Promise<AllocationHints> {
  const started = performance.now();
  const location = await knownLocation();
  const samples = await measureCandidates(profile, location, { timeoutMs: PROBE_TIMEOUT_MS - (performance.now() - started) });
  return allocationHints(location, samples);
}
