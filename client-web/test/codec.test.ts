import assert from "node:assert/strict";
import { readFileSync } from "node:fs";
import { describe, test } from "node:test";

import type { InputApplied } from "../src/generated/InputApplied";
import type { InputEvent } from "../src/generated/InputEvent";
import { CodecError, decodeApplied, decodeInput, encodeApplied, encodeInput, isEncodableKeyCode } from "../src/input/codec.ts";

// build/test/ → client-web/ → repository root.
const vectorsDir = new URL("../../../protocol/tests/vectors/", import.meta.url);

interface ValidVector {
  name: string;
  event: InputEvent;
  hex: string;
}
interface InvalidVector {
  name: string;
  hex: string;
}

function load<T>(file: string): T[] {
  const list = JSON.parse(readFileSync(new URL(file, vectorsDir), "utf8")) as T[];
  assert.ok(list.length > 0, `${file} is empty`);
  return list;
}

const toHex = (bytes: Uint8Array): string => Buffer.from(bytes).toString("hex");
const fromHex = (hex: string): Uint8Array => new Uint8Array(Buffer.from(hex, "hex"));

describe("shared vectors (protocol/tests/vectors/input.json)", () => {
  const vectors = load<ValidVector>("input.json");

  test("cover every kind", () => {
    const kinds = new Set(vectors.map((v) => Object.keys(v.event.kind)[0]));
    assert.deepEqual(
      [...kinds].sort(),
      [
        "Clipboard",
        "Gamepad",
        "GamepadGone",
        "KeyDown",
        "KeyUp",
        "PointerDown",
        "PointerLock",
        "PointerMove",
        "PointerUp",
        "TouchCancel",
        "TouchEnd",
        "TouchMove",
        "TouchStart",
        "Wheel",
      ],
    );
  });

  for (const v of vectors) {
    test(`encode: ${v.name}`, () => assert.equal(toHex(encodeInput(v.event)), v.hex));
    test(`decode: ${v.name}`, () => assert.deepEqual(decodeInput(fromHex(v.hex)), v.event));
  }
});

describe("shared invalid vectors (protocol/tests/vectors/input_invalid.json)", () => {
  for (const v of load<InvalidVector>("input_invalid.json")) {
    test(`reject: ${v.name}`, () => assert.throws(() => decodeInput(fromHex(v.hex)), CodecError));
  }
});

const restingPad = { pad: 0, buttons: 0, left_trigger: 0, right_trigger: 0, left_x: 0, left_y: 0, right_x: 0, right_y: 0 };

describe("encoder refuses what the wire cannot carry", () => {
  const cases: [string, InputEvent][] = [
    ["seq -1", { seq: -1, kind: { Wheel: { dx: 0, dy: 0 } } }],
    ["seq 2^32", { seq: 2 ** 32, kind: { Wheel: { dx: 0, dy: 0 } } }],
    ["fractional seq", { seq: 1.5, kind: { Wheel: { dx: 0, dy: 0 } } }],
    ["x 65536", { seq: 1, kind: { PointerMove: { x: 65536, y: 0, dx: 0, dy: 0 } } }],
    ["y -1", { seq: 1, kind: { PointerDown: { x: 0, y: -1, button: 0 } } }],
    ["dx -32769", { seq: 1, kind: { PointerMove: { x: 0, y: 0, dx: -32769, dy: 0 } } }],
    ["dy 32768", { seq: 1, kind: { Wheel: { dx: 0, dy: 32768 } } }],
    ["button 256", { seq: 1, kind: { PointerUp: { x: 0, y: 0, button: 256 } } }],
    ["empty code", { seq: 1, kind: { KeyDown: { code: "" } } }],
    ["33-byte code", { seq: 1, kind: { KeyUp: { code: "K".repeat(33) } } }],
    ["non-ASCII code", { seq: 1, kind: { KeyDown: { code: "Clé" } } }],
    ["code with a space", { seq: 1, kind: { KeyDown: { code: "Key A" } } }],
    ["gamepad 16", { seq: 1, kind: { GamepadGone: { pad: 16 } } }],
    ["gamepad -1", { seq: 1, kind: { Gamepad: { ...restingPad, pad: -1 } } }],
    ["buttons 2^32", { seq: 1, kind: { Gamepad: { ...restingPad, buttons: 2 ** 32 } } }],
    ["negative buttons (a signed bit 31)", { seq: 1, kind: { Gamepad: { ...restingPad, buttons: 1 << 31 } } }],
    ["trigger 256", { seq: 1, kind: { Gamepad: { ...restingPad, right_trigger: 256 } } }],
    ["axis 32768", { seq: 1, kind: { Gamepad: { ...restingPad, left_y: 32768 } } }],
    ["no touches", { seq: 1, kind: { TouchStart: { touches: [] } } }],
    ["11 touches", { seq: 1, kind: { TouchMove: { touches: Array.from({ length: 11 }, (_, i) => ({ id: i % 10, x: 0, y: 0 })) } } }],
    ["touch id 10", { seq: 1, kind: { TouchEnd: { touches: [{ id: 10, x: 0, y: 0 }] } } }],
    ["duplicate touch id", { seq: 1, kind: { TouchCancel: { touches: [{ id: 2, x: 0, y: 0 }, { id: 2, x: 1, y: 1 }] } } }],
    ["touch x 65536", { seq: 1, kind: { TouchStart: { touches: [{ id: 0, x: 65536, y: 0 }] } } }],
  ];
  for (const [name, event] of cases) {
    test(name, () => assert.throws(() => encodeInput(event), CodecError));
  }

  test("isEncodableKeyCode", () => {
    assert.ok(isEncodableKeyCode("ArrowRight"));
    assert.ok(isEncodableKeyCode("K".repeat(32)));
    assert.ok(!isEncodableKeyCode(""));
    assert.ok(!isEncodableKeyCode("Unidentified\u00e9"));
  });
});

describe("InputApplied", () => {
  test("round-trips with the documented layout", () => {
    const bytes = encodeApplied({ seq: 0xffffffff, frame_id: 258 });
    assert.equal(toHex(bytes), "80ffffffff02010000");
    assert.deepEqual(decodeApplied(bytes), { seq: 0xffffffff, frame_id: 258 });
  });

  test("rejects other types, truncation and trailing bytes", () => {
    assert.throws(() => decodeApplied(fromHex("")), CodecError);
    assert.throws(() => decodeApplied(fromHex("010100000001000000")), CodecError);
    assert.throws(() => decodeApplied(fromHex("8001000000010000")), CodecError);
    assert.throws(() => decodeApplied(fromHex("80010000000100000000")), CodecError);
  });

  test("decodes from a subarray view", () => {
    const padded = fromHex("ff80070000006300000000");
    assert.deepEqual(decodeApplied(padded.subarray(1, 10)), { seq: 7, frame_id: 99 });
  });
});

describe("shared vectors (protocol/tests/vectors/applied.json)", () => {
  interface AppliedVector {
    name: string;
    applied: InputApplied;
    hex: string;
  }
  const vectors = load<AppliedVector>("applied.json");

  test("cover both forms", () => {
    assert.ok(vectors.some((v) => v.applied.rtp_timestamp === undefined));
    assert.ok(vectors.some((v) => v.applied.rtp_timestamp !== undefined));
  });

  for (const v of vectors) {
    test(`encodes and decodes: ${v.name}`, () => {
      assert.equal(toHex(encodeApplied(v.applied)), v.hex);
      assert.deepEqual(decodeApplied(fromHex(v.hex)), v.applied);
    });
  }

  for (const v of load<InvalidVector>("applied_invalid.json")) {
    test(`rejects: ${v.name}`, () => {
      assert.throws(() => decodeApplied(fromHex(v.hex)), CodecError);
    });
  }
});
