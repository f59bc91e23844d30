#!/usr/bin/env bash
# Hosting from behind a home router: the host and the player each sit behind a NAT of their
# own (nftables masquerade, nothing let in that was not asked for), on either side of a
# "public" namespace that holds the broker and coturn. The host opens no port: its
# signalling comes over its link to the broker, and its media finds the player by ICE.
# Headless Chromium (client-web/e2e/netplay.js) plays for SECONDS through whichever candidate
# pair ICE selects: after a 3 s ramp it must decode 95% of the frames the host sent, at 45
# frames a second or more (the median second; a 2-core machine running host and browser
# together sustains 50-58); the host's answer must offer a
# server-reflexive candidate (its NAT's address, learnt from coturn by STUN) beside its relay
# one. (GRIDPLAY_ICE=relay, the page through the TURN relay alone, does not connect yet to a
# host behind a NAT: its ICE stays checking.)
#
#   player 10.0.2.2 — 10.0.2.1 [pnat] 203.0.113.2 — 203.0.113.1 [public] 198.51.100.1
#     — 198.51.100.2 [hnat] 10.0.1.1 — 10.0.1.2 host
#
# Usage: nat.sh GRIDPLAY_BIN [SECONDS] (default 10)   (needs root: ip netns, nft; coturn and Chromium;
# after `cd client-web && npm run build && npm run build:node`).
set -euo pipefail
bin=$(realpath "$1")
seconds=${2:-10}
here=$(cd "$(dirname "$0")" && pwd)
tag=gn$$
host_ns=${tag}h hnat_ns=${tag}hn pub_ns=${tag}pub pnat_ns=${tag}pn player_ns=${tag}p
all=("$host_ns" "$hnat_ns" "$pub_ns" "$pnat_ns" "$player_ns")
work=$(mktemp -d)

cleanup() {
  # Everything started inside the namespaces goes with them.
  for ns in "${all[@]}"; do ip netns pids "$ns" 2>/dev/null | xargs -r kill -9 2>/dev/null || true; done
  wait 2>/dev/null || true
  for ns in "${all[@]}"; do ip netns del "$ns" 2>/dev/null || true; done
  rm -rf "$work"
}
trap cleanup EXIT

in_ns() { local ns=$1; shift; ip netns exec "$ns" "$@"; }

for ns in "${all[@]}"; do
  ip netns add "$ns"
  in_ns "$ns" ip link set lo up
done
# link NS_A IF_A ADDR_A NS_B IF_B ADDR_B: a veth pair between two namespaces.
link() {
  ip link add "$2" netns "$1" type veth peer name "$5" netns "$4"
  in_ns "$1" ip addr add "$3" dev "$2"
  in_ns "$4" ip addr add "$6" dev "$5"
  in_ns "$1" ip link set "$2" up
  in_ns "$4" ip link set "$5" up
}
link "$host_ns" "${tag}a" 10.0.1.2/24 "$hnat_ns" "${tag}b" 10.0.1.1/24
link "$hnat_ns" "${tag}c" 198.51.100.2/24 "$pub_ns" "${tag}d" 198.51.100.1/24
link "$pub_ns" "${tag}e" 203.0.113.1/24 "$pnat_ns" "${tag}f" 203.0.113.2/24
link "$pnat_ns" "${tag}g" 10.0.2.1/24 "$player_ns" "${tag}h" 10.0.2.2/24
in_ns "$host_ns" ip route add default via 10.0.1.1
in_ns "$player_ns" ip route add default via 10.0.2.1
in_ns "$hnat_ns" ip route add default via 198.51.100.1
in_ns "$pnat_ns" ip route add default via 203.0.113.1
in_ns "$pub_ns" sysctl -qw net.ipv4.ip_forward=1

# A home router: masquerade out of its public side; forward in only what answers.
home_router() {
  local ns=$1 inside=$2 outside=$3
  in_ns "$ns" sysctl -qw net.ipv4.ip_forward=1
  in_ns "$ns" nft -f - <<NFT
table ip home {
  chain postrouting { type nat hook postrouting priority srcnat; oifname "$outside" masquerade; }
  chain forward {
    type filter hook forward priority filter; policy drop;
    ct state established,related accept
    iifname "$inside" oifname "$outside" accept
  }
}
NFT
}
home_router "$hnat_ns" "${tag}b" "${tag}c"
home_router "$pnat_ns" "${tag}g" "${tag}f"

secret=$(head -c 24 /dev/urandom | base64)
printf '%s\n' "$secret" >"$work/turn.secret"
in_ns "$pub_ns" turnserver -n --no-cli --no-tls --no-dtls --fingerprint --listening-ip 198.51.100.1 \
  --relay-ip 198.51.100.1 --listening-port 3478 --use-auth-secret --static-auth-secret "$secret" \
  --realm gridplay.test --log-file stdout >"$work/coturn.log" 2>&1 &
in_ns "$pub_ns" "$bin" broker --listen 198.51.100.1:8080 --web-dir "$here/../../client-web/dist" \
  --stun-url stun:198.51.100.1:3478 --turn-url 'turn:198.51.100.1:3478?transport=udp' \
  --turn-secret-file "$work/turn.secret" >"$work/broker.log" 2>&1 &
for _ in $(seq 100); do
  if in_ns "$host_ns" curl -sf -o /dev/null http://198.51.100.1:8080/v1/apps; then break; fi
  sleep 0.1
done
in_ns "$host_ns" "$bin" host --broker-url http://198.51.100.1:8080 --media-ip 10.0.1.2 \
  --game-slots 1 --key-file "$work/host.key" >"$work/host.log" 2>&1 &
# The player sees the host once it has registered (and so has linked).
for _ in $(seq 100); do
  if in_ns "$player_ns" curl -sf "http://198.51.100.1:8080/v1/candidates?lat=0&lon=0&profile=game" | grep -q ping_url; then break; fi
  sleep 0.1
done

play() {
  local ice=$1
  in_ns "$player_ns" env GRIDPLAY_URL=http://198.51.100.1:8080 GRIDPLAY_ICE="$ice" PLAY_SECONDS="$seconds" \
    node "$here/../../client-web/build/e2e/netplay.js" >"$work/$ice.json" 2>"$work/$ice.log" \
    || { tail -n 20 "$work"/*.log; exit 1; }
  python3 - "$work/$ice.json" "$ice" <<'PY' || { tail -n 20 "$work/$ice.log" "$work/host.log"; exit 1; }
import json, sys
s = json.loads(open(sys.argv[1]).read().strip().splitlines()[-1])
ice = sys.argv[2]
route = s["ice_route"]
# Once the rate controller has ramped up (the first 3 s): the median second, and what arrived of what the host sent.
steady_seconds = s["seconds"][3:]
per_second = sorted(x["decoded_frames"] for x in steady_seconds)
steady = per_second[len(per_second) // 2] if per_second else 0
sent = sum(x.get("sent_frames", 0) for x in steady_seconds)
decoded = sum(x["decoded_frames"] for x in steady_seconds)
print(f"through NATs ({ice}): steady fps {steady} (decoded per second {[x['decoded_frames'] for x in s['seconds']]}, "
      f"sent per second {[x.get('sent_frames') for x in s['seconds']]}), decoded {decoded} of {sent} sent, "
      f"mean fps {s['mean_fps']:.1f}, longest freeze {s['longest_freeze_ms']} ms, "
      f"route {route['local']} -> {route['remote']}, click-to-photon p50 {s.get('click_to_photon_ms_p50') or 0:.0f} ms")
problems = []
# The path loses nothing the host sent; the rate itself is what this machine's host and browser sustain together.
if decoded < 0.95 * sent: problems.append(f"decoded {decoded} of {sent} frames sent")
if steady < 45: problems.append(f"steady fps {steady} < 45")
if ice == "relay" and route["local"] != "relay": problems.append(f"not relayed: {route}")
if problems:
    sys.exit(f"NAT ({ice}): " + "; ".join(problems))
PY
}
play all
# The host learnt its NAT's address by STUN and offered it.
grep -Eq "answered.* srflx=[1-9]" "$work/host.log" || { echo "NAT: the host offered no server-reflexive candidate" >&2; tail -n 20 "$work/host.log"; exit 1; }
echo "NAT: ok"
