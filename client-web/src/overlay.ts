// The stats overlay over the picture, toggled by F2: fps, resolution, bitrate, RTT, decode time, click-to-photon
// p50/p95, loss, jitter, the sound's bitrate, jitter buffer delay, lost packets and concealed samples, the A/V offset,
// and the settlement voucher. The formatting is pure (unit-tested); the panel refreshes twice a second while shown.

import { percentile } from "./probes/clickToPhoton.ts";
import { describeVoucher } from "./settlement.ts";
import type { GridplayStats } from "./stats.ts";

/** The key that shows and hides the overlay (never sent to the game: see LOCAL_KEYS in input/capture.ts). */
export const OVERLAY_KEY = "F2";
/** Click-to-photon percentiles are over this many latest samples. */
export const RECENT_SAMPLES = 100;
const REFRESH_MS = 500;

export interface OverlayRow {
  /** Stable name, the `data-stat` attribute of the value. */
  key: string;
  label: string;
  value: string;
}

const dash = "–";
const fixed = (v: number | null, digits: number, unit: string): string => (v === null ? dash : `${v.toFixed(digits)} ${unit}`);
const count = (v: number | null): string => (v === null ? dash : String(v));
const signedMs = (v: number | null): string => {
  if (v === null) return dash;
  const ms = Math.round(v);
  return `${ms > 0 ? "+" : ""}${ms} ms`;
};

/** The overlay's rows for `s`. */
export function overlayRows(s: GridplayStats): OverlayRow[] {
  const recent = s.clickToPhotonMs.slice(-RECENT_SAMPLES);
  const p50 = percentile(recent, 50);
  const p95 = percentile(recent, 95);
  return [
    { key: "fps", label: "fps", value: s.fps === null ? dash : s.fps.toFixed(1) },
    { key: "resolution", label: "resolution", value: s.width && s.height ? `${s.width}×${s.height}` : dash },
    { key: "bitrate", label: "bitrate", value: fixed(s.bitrateBps === null ? null : s.bitrateBps / 1e6, 2, "Mbit/s") },
    { key: "rtt", label: "RTT", value: fixed(s.rttMs, 1, "ms") },
    { key: "decode", label: "decode", value: fixed(s.decodeMs, 1, "ms") },
    { key: "c2p-p50", label: "click-to-photon p50", value: fixed(p50, 1, "ms") },
    { key: "c2p-p95", label: "click-to-photon p95", value: fixed(p95, 1, "ms") },
    { key: "c2p-n", label: "samples", value: String(recent.length) },
    { key: "loss", label: "loss", value: fixed(s.loss === null ? null : s.loss * 100, 2, "%") },
    { key: "jitter", label: "jitter", value: fixed(s.jitterMs, 1, "ms") },
    { key: "audio-bitrate", label: "audio bitrate", value: fixed(s.audioBitrateKbps, 0, "kbit/s") },
    { key: "audio-buffer", label: "audio jitter buffer", value: fixed(s.audioJitterBufferMs, 1, "ms") },
    { key: "audio-lost", label: "audio packets lost", value: count(s.audioPacketsLost) },
    { key: "audio-concealed", label: "concealed samples", value: count(s.audioConcealedSamples) },
    { key: "av-offset", label: "A/V offset", value: signedMs(s.avOffsetMs) },
    { key: "voucher", label: "settlement", value: describeVoucher(s.voucher) || dash },
  ];
}

/** Fills `panel` (hidden until the key is pressed) from `s`; returns a function that stops it. */
export function startOverlay(panel: HTMLElement, s: GridplayStats): () => void {
  const list = document.createElement("dl");
  const values = new Map<string, HTMLElement>();
  for (const row of overlayRows(s)) {
    const term = document.createElement("dt");
    term.textContent = row.label;
    const value = document.createElement("dd");
    value.dataset["stat"] = row.key;
    values.set(row.key, value);
    list.append(term, value);
  }
  panel.replaceChildren(list);
  const render = (): void => {
    if (panel.hidden) return;
    for (const row of overlayRows(s)) {
      const value = values.get(row.key);
      if (value !== undefined) value.textContent = row.value;
    }
  };
  const onKey = (e: KeyboardEvent): void => {
    if (e.code !== OVERLAY_KEY || e.repeat) return;
    e.preventDefault();
    panel.hidden = !panel.hidden;
    render();
  };
  window.addEventListener("keydown", onKey);
  const timer = window.setInterval(render, REFRESH_MS);
  render();
  return () => {
    window.clearInterval(timer);
    window.removeEventListener("keydown", onKey);
  };
}
