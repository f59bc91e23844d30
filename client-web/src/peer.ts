// The receive-only peer connection: one H.264 video transceiver, one audio transceiver (the host's Opus sound, in the
// video's MediaStream), the unordered "input" data channel and the reliable "probes" channel (signed probe reports, RTT
// pings).

import type { IceServer } from "./generated/IceServer";

export interface Peer {
  pc: RTCPeerConnection;
  input: RTCDataChannel;
  probes: RTCDataChannel;
}

/** How the peer may reach the host: "all" candidates, or through the TURN relay alone ("relay", the page's `?ice=relay`). */
export type IcePolicy = "all" | "relay";

/** The page's ICE policy, from its URL's `ice` parameter. */
export function icePolicyOf(search: string): IcePolicy {
  return new URLSearchParams(search).get("ice") === "relay" ? "relay" : "all";
}

/**
 * The peer configuration for the broker's ICE servers under `policy`; null when the default one serves (no servers, all
 * candidates). Going through the relay alone needs a TURN server: without one this throws, saying so.
 */
export function iceConfiguration(servers: readonly IceServer[], policy: IcePolicy): RTCConfiguration | null {
  const hasTurn = servers.some((s) => s.urls.some((u) => u.startsWith("turn:") || u.startsWith("turns:")));
  if (policy === "relay" && !hasTurn) {
    throw new Error("Relay only (?ice=relay), but the broker handed out no TURN server");
  }
  if (servers.length === 0) return null;
  const iceServers = servers.map((s): RTCIceServer => {
    const server: RTCIceServer = { urls: [...s.urls] };
    if (s.username !== undefined) server.username = s.username;
    if (s.credential !== undefined) server.credential = s.credential;
    return server;
  });
  return { iceServers, iceTransportPolicy: policy };
}

/** `sdp`, an offer gathered under `policy`; through the relay alone it must hold a relay candidate, or this throws why. */
export function requireRelay(sdp: string, policy: IcePolicy): string {
  if (policy === "relay" && !sdp.includes(" typ relay")) {
    throw new Error("Relay only, but the TURN server gave no relay address (credentials refused or expired, or the server unreachable)");
  }
  return sdp;
}

export function createPeer(configuration?: RTCConfiguration): Peer {
  const pc = new RTCPeerConnection(configuration);
  const transceiver = pc.addTransceiver("video", { direction: "recvonly" });
  transceiver.setCodecPreferences(h264Codecs());
  // The host answers with an audio m-line only when the offer has this one.
  pc.addTransceiver("audio", { direction: "recvonly" });
  // Must exist before createOffer so that the offer carries an SCTP m-line.
  const input = pc.createDataChannel("input", { ordered: false });
  const probes = pc.createDataChannel("probes");
  return { pc, input, probes };
}

/** Puts a received track on `video`: the first track's stream becomes its source, and a track that arrives in another
 * stream joins that one, so that sound and picture play (and lip-sync) as one stream. */
export function attachTrack(video: HTMLVideoElement, track: MediaStreamTrack, streams: readonly MediaStream[]): void {
  const current = video.srcObject;
  if (!(current instanceof MediaStream)) {
    video.srcObject = streams[0] ?? new MediaStream([track]);
  } else if (current.getTrackById(track.id) === null) {
    current.addTrack(track);
  }
}

/** The browser's H.264 receive codecs, packetization-mode=1 and constrained baseline first. */
function h264Codecs(): RTCRtpCodec[] {
  const codecs = (RTCRtpReceiver.getCapabilities("video")?.codecs ?? []).filter((c) => c.mimeType.toLowerCase() === "video/h264");
  if (codecs.length === 0) throw new Error("This browser cannot receive H.264 over WebRTC");
  const rank = (c: RTCRtpCodec): number => {
    const fmtp = c.sdpFmtpLine ?? "";
    return (fmtp.includes("packetization-mode=1") ? 0 : 2) + (fmtp.includes("profile-level-id=42e0") ? 0 : 1);
  };
  return [...codecs].sort((a, b) => rank(a) - rank(b));
}

/** How long after its latest host candidate a peer without STUN or TURN servers is taken to have them all, ms. */
export const HOST_CANDIDATES_SETTLE_MS = 15;

/**
 * Creates the offer and waits for its ICE candidates (WHEP here is non-trickle): until gathering completes, at most
 * `maxWaitMs`. A peer with no STUN or TURN server (`hostOnly`) can only gather its own addresses, which come in one
 * burst: it goes on HOST_CANDIDATES_SETTLE_MS after the latest of them rather than waiting out the browser's end of
 * gathering (TCP and the like, over 100 ms later). The host learns any other address of the player from its checks.
 */
export async function gatheredOffer(pc: RTCPeerConnection, maxWaitMs = 1500, hostOnly = false): Promise<string> {
  await pc.setLocalDescription(await pc.createOffer());
  if (pc.iceGatheringState !== "complete") {
    await new Promise<void>((resolve) => {
      let settle = 0;
      const done = (): void => {
        window.clearTimeout(timer);
        window.clearTimeout(settle);
        pc.removeEventListener("icegatheringstatechange", onChange);
        pc.removeEventListener("icecandidate", onCandidate);
        resolve();
      };
      const onChange = (): void => {
        if (pc.iceGatheringState === "complete") done();
      };
      const onCandidate = (e: RTCPeerConnectionIceEvent): void => {
        if (!hostOnly || e.candidate === null) return;
        window.clearTimeout(settle);
        settle = window.setTimeout(done, HOST_CANDIDATES_SETTLE_MS);
      };
      const timer = window.setTimeout(done, maxWaitMs);
      pc.addEventListener("icegatheringstatechange", onChange);
      pc.addEventListener("icecandidate", onCandidate);
    });
  }
  const sdp = pc.localDescription?.sdp;
  if (!sdp) throw new Error("The browser produced no SDP offer");
  return sdp;
}
