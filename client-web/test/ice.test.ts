import assert from "node:assert/strict";
import { test } from "node:test";

import { iceConfiguration, icePolicyOf, requireRelay } from "../src/peer.ts";

const stun = { urls: ["stun:turn.example:3478"] };
const turn = { urls: ["turn:turn.example:3478?transport=udp"], username: "1700003600:s", credential: "c2VjcmV0" };

test("the page goes through the relay alone only when its URL says ice=relay", () => {
  assert.equal(icePolicyOf("?ice=relay"), "relay");
  assert.equal(icePolicyOf("?x=1&ice=relay"), "relay");
  assert.equal(icePolicyOf(""), "all");
  assert.equal(icePolicyOf("?ice=all"), "all");
});

test("the broker's servers become the peer's, with TURN credentials", () => {
  assert.equal(iceConfiguration([], "all"), null, "no servers: the default configuration");
  const configuration = iceConfiguration([stun, turn], "relay");
  assert.deepEqual(configuration, {
    iceServers: [{ urls: ["stun:turn.example:3478"] }, { urls: turn.urls, username: turn.username, credential: turn.credential }],
    iceTransportPolicy: "relay",
  });
  assert.equal(iceConfiguration([stun], "all")?.iceTransportPolicy, "all");
});

test("the relay alone without a TURN server, or without a relay candidate, is a clear error", () => {
  assert.throws(() => iceConfiguration([], "relay"), /no TURN server/);
  assert.throws(() => iceConfiguration([stun], "relay"), /no TURN server/);
  const relayed = "a=candidate:1 1 udp 41885439 203.0.113.9 50000 typ relay raddr 0.0.0.0 rport 0\r\n";
  assert.equal(requireRelay(relayed, "relay"), relayed);
  assert.throws(() => requireRelay("a=candidate:1 1 udp 2130706431 10.0.0.5 40001 typ host\r\n", "relay"), /no relay address/);
  assert.equal(requireRelay("", "all"), "");
});
