#!/usr/bin/env python3
"""Play a Gridplay session over WHEP with aiortc, an independent (non-Chromium) WebRTC peer.

The script allocates a session from the broker, negotiates WebRTC with the host over WHEP,
decodes the host's H.264 video for a fixed time, ends the session with a WHEP DELETE and
prints one JSON line on stdout:

    {"session_id": ID, "frames": N, "seconds": S, "fps": N/S, "width": W, "height": H,
     "delete_status": 200, "packets_received": P, "packets_lost": L}

`frames` counts the video frames decoded in the S seconds that follow the first decoded frame;
the packet counts are the video inbound-rtp statistics of aiortc's getStats() at that point.
On any failure it prints a message on stderr and exits with status 1.

Usage: whep_aiortc.py --broker URL [--app orbit] [--width 640 --height 360 --fps 60] --seconds 10
"""

import argparse
import asyncio
import contextlib
import json
import logging
import sys
import time
import urllib.error
import urllib.parse
import urllib.request

import av.logging
from aiortc import RTCPeerConnection, RTCSessionDescription
from aiortc.mediastreams import MediaStreamError

# Time limits, in seconds.
HTTP_TIMEOUT = 15  # each HTTP request
CONNECT_TIMEOUT = 30  # from the WHEP answer to the first decoded video frame
FRAME_TIMEOUT = 5  # longest wait for any later frame before the stream counts as stalled


class PeerError(Exception):
    """A failure worth one line on stderr."""


def http(method, url, body=None, headers=None):
    """Sends one blocking HTTP request; returns (status, headers, body bytes), whatever the status."""
    request = urllib.request.Request(url, data=body, method=method, headers=headers or {})
    try:
        with urllib.request.urlopen(request, timeout=HTTP_TIMEOUT) as response:
            return response.status, response.headers, response.read()
    except urllib.error.HTTPError as err:  # 4xx and 5xx answers still carry a status and a body
        return err.code, err.headers, err.read()
    except (urllib.error.URLError, OSError) as err:
        raise PeerError(f"{method} {url}: {err}") from err


async def http_async(method, url, body=None, headers=None):
    """`http` in a worker thread, so that the event loop keeps serving the peer connection."""
    return await asyncio.to_thread(http, method, url, body, headers)


def expect(status, wanted, what, body):
    if status != wanted:
        text = body.decode("utf-8", "replace").strip()[:500]
        raise PeerError(f"{what}: HTTP {status} (expected {wanted}): {text}")


async def allocate(broker, app, width, height, fps):
    """POST /v1/sessions: returns the session's id, the host's WHEP URL (absolute) and the bearer token."""
    url = broker.rstrip("/") + "/v1/sessions"
    request = {"app": app, "profile": "game", "width": width, "height": height, "fps": fps}
    status, _, body = await http_async(
        "POST", url, json.dumps(request).encode(), {"Content-Type": "application/json", "Accept": "application/json"}
    )
    expect(status, 201, f"POST {url}", body)
    try:
        answer = json.loads(body)
        session_id, whep_url, token = answer["session_id"], answer["whep_url"], answer["token"]
    except (ValueError, KeyError, TypeError) as err:
        raise PeerError(f"POST {url}: unexpected answer {body[:500]!r}") from err
    return session_id, urllib.parse.urljoin(broker.rstrip("/") + "/", whep_url), token


async def negotiate(pc, whep_url, token):
    """Sends the complete offer (all ICE candidates in it) to the WHEP endpoint and applies the
    answer; returns the session resource's URL from the Location header."""
    await pc.setLocalDescription(await pc.createOffer())
    # aiortc gathers every candidate inside setLocalDescription; wait anyway in case that changes.
    while pc.iceGatheringState != "complete":
        await asyncio.sleep(0.05)
    status, headers, body = await http_async(
        "POST",
        whep_url,
        pc.localDescription.sdp.encode(),
        {"Content-Type": "application/sdp", "Accept": "application/sdp", "Authorization": f"Bearer {token}"},
    )
    expect(status, 201, f"WHEP POST {whep_url}", body)
    location = headers.get("Location")
    if not location:
        raise PeerError(f"WHEP POST {whep_url}: the 201 answer has no Location header")
    await pc.setRemoteDescription(RTCSessionDescription(sdp=body.decode(), type="answer"))
    return urllib.parse.urljoin(whep_url, location)


async def drain(track):
    """Reads a track to its end, so that its decoded frames do not pile up in memory."""
    with contextlib.suppress(MediaStreamError):
        while True:
            await track.recv()


async def count_frames(video, seconds):
    """Waits for the first decoded frame, then counts the frames decoded in the next `seconds`
    (the first one included). Returns (frames, width, height) of the last frame."""
    try:
        frame = await asyncio.wait_for(video.recv(), CONNECT_TIMEOUT)
    except asyncio.TimeoutError as err:
        raise PeerError(f"no video frame decoded within {CONNECT_TIMEOUT} s of the WHEP answer") from err
    except MediaStreamError as err:
        raise PeerError("the video track ended before its first frame") from err
    frames, width, height = 1, frame.width, frame.height
    deadline = time.monotonic() + seconds
    while (left := deadline - time.monotonic()) > 0:
        try:
            frame = await asyncio.wait_for(video.recv(), min(left, FRAME_TIMEOUT))
        except asyncio.TimeoutError as err:
            if time.monotonic() >= deadline:
                break
            raise PeerError(f"video stalled: no frame for {FRAME_TIMEOUT} s after {frames} frames") from err
        except MediaStreamError as err:
            raise PeerError(f"the video track ended after {frames} frames") from err
        if time.monotonic() > deadline:  # decoded after the window closed
            break
        frames, width, height = frames + 1, frame.width, frame.height
    return frames, width, height


async def video_packets(pc):
    """Video inbound-rtp packetsReceived and packetsLost from getStats()."""
    report = await pc.getStats()
    for stats in report.values():
        if stats.type == "inbound-rtp" and stats.kind == "video":
            return stats.packetsReceived, stats.packetsLost
    raise PeerError("getStats() has no inbound-rtp statistics for video")


async def play(args):
    session_id, whep_url, token = await allocate(args.broker, args.app, args.width, args.height, args.fps)

    pc = RTCPeerConnection()
    tracks = {}  # kind → the host's track
    track_arrived = asyncio.Event()
    failed = asyncio.Event()

    @pc.on("track")
    def on_track(track):
        tracks[track.kind] = track
        if track.kind == "video":
            track_arrived.set()

    @pc.on("connectionstatechange")
    def on_state():
        if pc.connectionState == "failed":
            failed.set()

    # Receive only, like the web client: one video and one audio transceiver.
    pc.addTransceiver("video", direction="recvonly")
    pc.addTransceiver("audio", direction="recvonly")

    drains = []
    resource_url = status = None
    try:
        resource_url = await negotiate(pc, whep_url, token)

        # setRemoteDescription fires "track" for each transceiver the host sends on.
        try:
            await asyncio.wait_for(track_arrived.wait(), CONNECT_TIMEOUT)
        except asyncio.TimeoutError as err:
            raise PeerError("the WHEP answer has no video track for this peer") from err
        if "audio" in tracks:
            drains.append(asyncio.create_task(drain(tracks["audio"])))

        counting = asyncio.create_task(count_frames(tracks["video"], args.seconds))
        failing = asyncio.create_task(failed.wait())
        await asyncio.wait({counting, failing}, return_when=asyncio.FIRST_COMPLETED)
        failing.cancel()
        if not counting.done():
            counting.cancel()
            raise PeerError("the WebRTC connection failed (ICE or DTLS)")
        frames, width, height = counting.result()
        packets_received, packets_lost = await video_packets(pc)

        status, _, _ = await http_async("DELETE", resource_url, headers={"Authorization": f"Bearer {token}"})
    finally:
        for task in drains:
            task.cancel()
        if resource_url is not None and status is None:
            # Failed mid-stream: still free the host's slot, best effort.
            with contextlib.suppress(PeerError):
                await http_async("DELETE", resource_url, headers={"Authorization": f"Bearer {token}"})
        await pc.close()

    return {
        "session_id": session_id,
        "frames": frames,
        "seconds": args.seconds,
        "fps": round(frames / args.seconds, 2),
        "width": width,
        "height": height,
        "delete_status": status,
        "packets_received": packets_received,
        "packets_lost": packets_lost,
    }


def main():
    parser = argparse.ArgumentParser(description="Play a Gridplay session over WHEP with aiortc.")
    parser.add_argument("--broker", required=True, help="the broker's base URL, e.g. http://127.0.0.1:8080")
    parser.add_argument("--app", default="orbit", help="the app to play (default: orbit)")
    parser.add_argument("--width", type=int, default=640)
    parser.add_argument("--height", type=int, default=360)
    parser.add_argument("--fps", type=int, default=60)
    parser.add_argument("--seconds", type=float, default=10, help="how long to count decoded frames (default: 10)")
    args = parser.parse_args()
    if args.seconds <= 0:
        parser.error("--seconds must be positive")

    # Keep the libraries quiet: only their errors, and only on stderr (PyAV's FFmpeg messages included).
    logging.basicConfig(stream=sys.stderr, level=logging.ERROR, format="%(name)s: %(message)s")
    av.logging.set_level(av.logging.ERROR)

    try:
        result = asyncio.run(play(args))
    except PeerError as err:
        print(f"whep_aiortc: {err}", file=sys.stderr)
        return 1
    except Exception as err:  # anything unexpected: still one clear line, and a failing status
        print(f"whep_aiortc: {type(err).__name__}: {err}", file=sys.stderr)
        return 1
    print(json.dumps(result), flush=True)
    return 0


if __name__ == "__main__":
    sys.exit(main())
