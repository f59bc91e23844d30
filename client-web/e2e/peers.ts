// The page's peer connections for browser tests that look past window.__gridplay: an init script keeps every
// RTCPeerConnection the page makes, and `inboundRtp` reads the raw `inbound-rtp` entries of the latest one's getStats().
// Both run inside the page (self-contained: Playwright serialises them).

declare global {
  interface Window {
    /** Every RTCPeerConnection the page made, the current session's last. */
    __gridplayPeers: RTCPeerConnection[];
  }
}

/** Init script (page.addInitScript, before page.goto): keeps each RTCPeerConnection in `window.__gridplayPeers`. */
export function keepPeers(): void {
  const peers: RTCPeerConnection[] = [];
  window.__gridplayPeers = peers;
  const Native = window.RTCPeerConnection;
  window.RTCPeerConnection = class extends Native {
    constructor(config?: RTCConfiguration) {
      super(config);
      peers.push(this);
    }
  };
}

/** In the page: the `inbound-rtp` entries of the latest peer connection's getStats(), as they are (none without one). */
export async function inboundRtp(): Promise<Record<string, unknown>[]> {
  const pc = window.__gridplayPeers.at(-1);
  if (pc === undefined) return [];
  const entries: Record<string, unknown>[] = [];
  (await pc.getStats()).forEach((entry: Record<string, unknown>) => {
    if (entry["type"] === "inbound-rtp") entries.push(entry);
  });
  return entries;
}
