#!/usr/bin/env bash
# A stream over a constrained network: the host and the player sit in two
# network namespaces joined through a third that holds the impairment relay.
# Host → player traffic is capped at 5 Mbit/s by tc tbf; the relay adds 25 ms
# each way (50 ms RTT), ±5 ms jitter and 1% random loss each way, seeded.
# The host names the relay as its media address (--media-public-ip), so the
# player's WebRTC or QUIC traffic goes through it like any client's would.
# Over 30 s the player must decode at least 25 fps, the host's sent bitrate
# must stay under the cap from 5 s on, and no freeze may last over 1 s.
#
# Usage: constrained_network.sh GRIDPLAY_BIN [SECONDS] [quic|quic-datagrams|webrtc|chromium]
#   (needs root: ip netns, tc). The player is `gridplay play` over QUIC (video
#   on frame streams, or datagrams) or WebRTC, or headless Chromium
#   (client-web/e2e/netplay.ts, built by `npm run build:node`). With
#   SUMMARY_OUT set, the player's JSON summary is copied there.
set -euo pipefail
bin=$(realpath "$1")
seconds=${2:-30}
player=${3:-webrtc}
here=$(cd "$(dirname "$0")" && pwd)
tag=gp$$
host_ns=${tag}h relay_ns=${tag}r player_ns=${tag}p
work=$(mktemp -d)

cleanup() {
  # Everything started inside the namespaces goes with them.
  for ns in "$host_ns" "$relay_ns" "$player_ns"; do
    ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true
  done
  wait 2>/dev/null || true
  for ns in "$host_ns" "$relay_ns" "$player_ns"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

for ns in "$host_ns" "$relay_ns" "$player_ns"; do
  ip netns add "$ns"
  in_ns "$ns" ip link set lo up
done
# host (10.77.1.2) — relay (10.77.1.1 | 10.77.2.1) — player (10.77.2.2)
ip link add "${tag}a" netns "$host_ns" type veth peer name "${tag}b" netns "$relay_ns"
ip link add "${tag}c" netns "$player_ns" type veth peer name "${tag}d" netns "$relay_ns"
in_ns "$host_ns" ip addr add 10.77.1.2/24 dev "${tag}a"
in_ns "$relay_ns" ip addr add 10.77.1.1/24 dev "${tag}b"
in_ns "$player_ns" ip addr add 10.77.2.2/24 dev "${tag}c"
in_ns "$relay_ns" ip addr add 10.77.2.1/24 dev "${tag}d"
for pair in "$host_ns ${tag}a" "$relay_ns ${tag}b" "$player_ns ${tag}c" "$relay_ns ${tag}d"; do
  set -- $pair; in_ns "$1" ip link set "$2" up
done
# Signalling (HTTP) is routed through the relay namespace; media goes through the relay process.
in_ns "$relay_ns" sysctl -qw net.ipv4.ip_forward=1
in_ns "$host_ns" ip route add 10.77.2.0/24 via 10.77.1.1
in_ns "$player_ns" ip route add 10.77.1.0/24 via 10.77.2.1
# The bottleneck: relay → player, 5 Mbit/s.
in_ns "$relay_ns" tc qdisc add dev "${tag}d" root tbf rate 5mbit burst 20kb latency 60ms

# Chromium loads the web client from the broker.
web=()
[ "$player" != chromium ] || web=(--web-dir "$here/../../client-web/dist")
in_ns "$host_ns" "$bin" broker --listen 10.77.1.2:8080 "${web[@]}" >"$work/broker.log" 2>&1 &
in_ns "$host_ns" "$bin" host --broker-url http://10.77.1.2:8080 --listen 10.77.1.2:8081 \
  --media-ip 10.77.1.2 --media-public-ip 10.77.2.1 --media-ports 40000-40003 --quic-port 40004 \
  --key-file "$work/host.key" >"$work/host.log" 2>&1 &
in_ns "$relay_ns" "$bin" relay --client-side 10.77.2.1 --upstream 10.77.1.2 --ports 40000-40004 \
  --delay-ms 25 --jitter-ms 5 --loss 0.01 --seed 7 >"$work/relay.log" 2>&1 &

# Wait until the host has registered (the broker lists it as a candidate).
for _ in $(seq 100); do
  if in_ns "$player_ns" curl -sf "http://10.77.1.2:8080/v1/candidates?lat=0&lon=0&profile=game" | grep -q ping_url; then break; fi
  sleep 0.1
done

case "$player" in
  quic | quic-datagrams | webrtc)
    case "$player" in
      quic) transport=(--transport quic --video streams) ;;
      quic-datagrams) transport=(--transport quic --video datagrams) ;;
      webrtc) transport=(--transport webrtc) ;;
    esac
    in_ns "$player_ns" "$bin" play --headless --broker http://10.77.1.2:8080 --bind 10.77.2.2 \
      "${transport[@]}" --input-every-ms 200 --seconds "$seconds" >"$work/summary.json" 2>"$work/play.log" ;;
  chromium)
    in_ns "$player_ns" env GRIDPLAY_URL=http://10.77.1.2:8080 PLAY_SECONDS="$seconds" \
      node "$here/../../client-web/build/e2e/netplay.js" >"$work/summary.json" 2>"$work/play.log" ;;
  *) echo "unknown player $player" >&2; exit 2 ;;
esac || { tail -n 20 "$work"/*.log; exit 1; }
[ -s "$work/summary.json" ] || { tail -n 20 "$work"/*.log; exit 1; }
tail -n 1 "$work/summary.json" >"$work/last.json" && mv "$work/last.json" "$work/summary.json"
[ -z "${SUMMARY_OUT:-}" ] || cp "$work/summary.json" "$SUMMARY_OUT"

python3 - "$work/summary.json" "$player" <<'PY'
import json, sys
s = json.load(open(sys.argv[1]))
player = sys.argv[2]
cap_kbit = 5000
secs = s["seconds"]
settled = secs[5:]
over = [i + 5 for i, x in enumerate(settled) if x.get("sent_kbit", 0) > cap_kbit]
col = lambda key: [x.get(key) for x in secs]
print(f"{player}: mean fps {s['mean_fps']:.1f}, longest freeze {s['longest_freeze_ms']:.0f} ms, "
      f"click-to-photon p50 {s.get('click_to_photon_ms_p50') or 0:.0f} ms p99 {s.get('click_to_photon_ms_p99') or 0:.0f} ms, "
      f"sent kbit/s {col('sent_kbit')}, target kbit/s {col('target_kbit')}, "
      f"decoded/s {col('decoded_frames')}, broken/s {col('broken_frames')}, keyframes/s {col('keyframes')}")
problems = []
if s["mean_fps"] < 25: problems.append(f"mean fps {s['mean_fps']:.1f} < 25")
if s["longest_freeze_ms"] > 1000: problems.append(f"freeze of {s['longest_freeze_ms']:.0f} ms > 1 s")
if over: problems.append(f"sent over the 5 Mbit/s cap after 5 s in seconds {over}")
if problems:
    sys.exit("constrained network: " + "; ".join(problems))
print("constrained network: ok")
PY
