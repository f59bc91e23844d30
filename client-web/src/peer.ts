// The receive-only peer connection: one H.264 video transceiver, one audio transceiver (the host's Opus sound, in the
// video's MediaStream), the unordered "input" data channel and the reliable "probes" channel (signed probe reports, RTT
// pings).

export interface Peer {
  pc: RTCPeerConnection;
  input: RTCDataChannel;
  probes: RTCDataChannel;
}

export function createPeer(): Peer {
  const pc = new RTCPeerConnection();
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

/** Creates the offer and waits for ICE gathering to complete (at most `maxWaitMs`): WHEP here is non-trickle. */
export async function gatheredOffer(pc: RTCPeerConnection, maxWaitMs = 1500): Promise<string> {
  await pc.setLocalDescription(await pc.createOffer());
  if (pc.iceGatheringState !== "complete") {
    await new Promise<void>((resolve) => {
      const done = (): void => {
        window.clearTimeout(timer);
        pc.removeEventListener("icegatheringstatechange", onChange);
        resolve();
      };
      const onChange = (): void => {
        if (pc.iceGatheringState === "complete") done();
      };
      const timer = window.setTimeout(done, maxWaitMs);
      pc.addEventListener("icegatheringstatechange", onChange);
    });
  }
  const sdp = pc.localDescription?.sdp;
  if (!sdp) throw new Error("The browser produced no SDP offer");
  return sdp;
}
