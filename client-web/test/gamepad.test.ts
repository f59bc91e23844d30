import assert from "node:assert/strict";
import { test } from "node:test";

import { AXIS_STEP, GamepadTracker, padChanged, padState, toAxis, toTrigger, type PadLike } from "../src/input/gamepad.ts";

/** A standard-mapping pad: 17 buttons, 4 axes, at rest unless told. */
function pad(index: number, pressed: number[] = [], axes: number[] = [0, 0, 0, 0], triggers: [number, number] = [0, 0]): PadLike {
  const buttons = Array.from({ length: 17 }, (_, i) => ({ pressed: pressed.includes(i), value: pressed.includes(i) ? 1 : 0 }));
  buttons[6] = { pressed: triggers[0] > 0.5, value: triggers[0] };
  buttons[7] = { pressed: triggers[1] > 0.5, value: triggers[1] };
  return { index, connected: true, buttons, axes };
}

test("axes and triggers map onto the wire ranges", () => {
  assert.equal(toAxis(1), 32767);
  assert.equal(toAxis(-1), -32767);
  assert.equal(toAxis(0.5), 16384);
  assert.equal(toAxis(-1.5), -32767);
  assert.equal(toAxis(Number.NaN), 0);
  assert.equal(toTrigger(1), 255);
  assert.equal(toTrigger(0.5), 128);
  assert.equal(toTrigger(-0.1), 0);
});

test("padState packs buttons as a bitmask, triggers as analog values, sticks as i16", () => {
  const state = padState(pad(2, [0, 12, 16], [1, -0.5, 0, 0.25], [0.25, 1]));
  assert.deepEqual(state, {
    pad: 2,
    buttons: (1 << 0) | (1 << 12) | (1 << 16) | (1 << 7),
    left_trigger: 64,
    right_trigger: 255,
    left_x: 32767,
    left_y: -16383, // Math.round(-16383.5)
    right_x: 0,
    right_y: 8192,
  });
  // A pad with 32 pressed buttons keeps bit 31 unsigned; missing axes read as centred.
  const many: PadLike = { index: 0, connected: true, buttons: Array.from({ length: 40 }, () => ({ pressed: true, value: 1 })), axes: [] };
  const s = padState(many);
  assert.equal(s.buttons, 0xffffffff);
  assert.equal(s.left_x, 0);
});

test("padChanged ignores axis noise but not buttons, triggers, rest or ends", () => {
  const rest = padState(pad(0));
  assert.ok(padChanged(undefined, rest));
  assert.ok(!padChanged(rest, rest));
  const noisy = { ...rest, left_x: AXIS_STEP - 1 };
  assert.ok(!padChanged(rest, noisy), "noise");
  assert.ok(padChanged(rest, { ...rest, left_x: AXIS_STEP }), "a real move");
  assert.ok(padChanged(noisy, rest), "back at rest is always sent");
  assert.ok(padChanged({ ...rest, right_y: 32700 }, { ...rest, right_y: 32767 }), "reaching an end is always sent");
  assert.ok(padChanged(rest, { ...rest, buttons: 1 }));
  assert.ok(padChanged(rest, { ...rest, left_trigger: 1 }));
});

test("the tracker sends snapshots on change, for several pads, and GamepadGone on disconnect", () => {
  const tracker = new GamepadTracker();
  const first = tracker.update([pad(0), null, pad(1, [0])]);
  assert.deepEqual(
    first.map((k) => ("Gamepad" in k ? k.Gamepad.pad : -1)),
    [0, 1],
  );
  assert.deepEqual(tracker.update([pad(0), null, pad(1, [0])]), [], "nothing changed");

  const moved = tracker.update([pad(0, [], [0.5, 0, 0, 0]), null, pad(1, [0])]);
  assert.equal(moved.length, 1);
  assert.ok(moved[0] !== undefined && "Gamepad" in moved[0] && moved[0].Gamepad.left_x === 16384);

  // Pad 1 unplugged (null slot), and an index the wire cannot carry is ignored.
  const gone = tracker.update([pad(0, [], [0.5, 0, 0, 0]), null, null, pad(16, [0])]);
  assert.deepEqual(gone, [{ GamepadGone: { pad: 1 } }]);
  // A disconnected Gamepad object counts as gone too; releaseAll forgets the rest.
  assert.deepEqual(tracker.update([{ ...pad(0), connected: false }]), [{ GamepadGone: { pad: 0 } }]);
  tracker.update([pad(3)]);
  assert.deepEqual(tracker.releaseAll(), [{ GamepadGone: { pad: 3 } }]);
  assert.deepEqual(tracker.releaseAll(), []);
  // A state the channel could not take goes again, and only it.
  const [held] = tracker.update([pad(5, [1]), pad(6)]);
  assert.ok(held !== undefined);
  tracker.unsent(held);
  assert.deepEqual(tracker.update([pad(5, [1]), pad(6)]), [held]);
  assert.deepEqual(tracker.update([pad(5, [1]), pad(6)]), []);
});
