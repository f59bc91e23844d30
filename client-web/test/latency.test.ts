import assert from "node:assert/strict";
import { test } from "node:test";

import { LatencyTracker } from "../src/input/latency.ts";

test("measures from send to ack once per seq", () => {
  const t = new LatencyTracker();
  t.sent(1, 100);
  t.sent(2, 110);
  assert.equal(t.acked(2, 130), 20);
  assert.equal(t.acked(2, 140), null, "a duplicate ack is ignored");
  assert.equal(t.acked(1, 150), 50);
  assert.equal(t.acked(3, 150), null, "an unknown seq is ignored");
  assert.equal(t.pending, 0);
});

test("forgets sends whose ack never came", () => {
  const t = new LatencyTracker();
  t.sent(1, 0);
  t.sent(2, 5_000);
  t.sent(3, 10_001);
  assert.equal(t.pending, 2);
  assert.equal(t.acked(1, 10_002), null);
  assert.equal(t.acked(2, 10_002), 5_002);
});
