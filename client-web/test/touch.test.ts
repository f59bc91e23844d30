import assert from "node:assert/strict";
import { test } from "node:test";

import { encodeInput } from "../src/input/codec.ts";
import { TouchSlots, type TouchLike } from "../src/input/touch.ts";

/** A 100x200 picture at (0, 0): client (50, 100) is the centre. */
const picture = { left: 0, top: 0, width: 100, height: 200 };
const t = (identifier: number, clientX: number, clientY: number): TouchLike => ({ identifier, clientX, clientY });

test("fingers get the lowest free slot and keep it while they touch", () => {
  const slots = new TouchSlots();
  assert.deepEqual(slots.event("start", [t(101, 50, 100)], picture), { TouchStart: { touches: [{ id: 0, x: 32768, y: 32768 }] } });
  assert.deepEqual(slots.event("start", [t(7, 0, 0), t(42, 100, 200)], picture), {
    TouchStart: {
      touches: [
        { id: 1, x: 0, y: 0 },
        { id: 2, x: 65535, y: 65535 },
      ],
    },
  });
  assert.deepEqual(slots.event("move", [t(42, 25, 50)], picture), { TouchMove: { touches: [{ id: 2, x: 16384, y: 16384 }] } });
  assert.deepEqual(slots.event("end", [t(101, 50, 100)], picture), { TouchEnd: { touches: [{ id: 0, x: 32768, y: 32768 }] } });
  // Slot 0 is free again; the next finger takes it.
  assert.deepEqual(slots.event("start", [t(500, 200, -10)], picture), { TouchStart: { touches: [{ id: 0, x: 65535, y: 0 }] } });
  assert.equal(slots.active, 3);
  // Stopping cancels every finger still down, at its last position.
  const cancel = slots.cancelAll();
  assert.ok(cancel !== null && "TouchCancel" in cancel);
  assert.deepEqual(
    cancel.TouchCancel.touches.map((p) => p.id).sort(),
    [0, 1, 2],
  );
  assert.equal(slots.cancelAll(), null);
});

test("unknown fingers are skipped and an eleventh finger is ignored", () => {
  const slots = new TouchSlots();
  assert.equal(slots.event("move", [t(1, 0, 0)], picture), null);
  assert.equal(slots.event("end", [t(1, 0, 0)], picture), null);
  const ten = Array.from({ length: 11 }, (_, i) => t(1000 + i, i, i));
  const started = slots.event("start", ten, picture);
  assert.ok(started !== null && "TouchStart" in started);
  assert.equal(started.TouchStart.touches.length, 10);
  assert.equal(slots.event("move", [t(1010, 5, 5)], picture), null, "the ignored finger");
  // Every message the slots make fits the wire.
  assert.equal(encodeInput({ seq: 1, kind: started }).length, 56);
  const cancelled = slots.event("cancel", ten, picture);
  assert.ok(cancelled !== null && "TouchCancel" in cancelled);
  assert.equal(cancelled.TouchCancel.touches.length, 10);
  assert.equal(slots.active, 0);
});
