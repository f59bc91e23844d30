// The binary input codec of the "input" data channel (little-endian).
//
// Client → host: byte 0 = type, bytes 1..4 = seq (u32), then the payload:
//   0x01 KeyDown / 0x02 KeyUp   u8 length L (1..=32) + L ASCII-graphic bytes (KeyboardEvent.code)
//   0x03 PointerMove            x u16, y u16, dx i16, dy i16
//   0x04 PointerDown / 0x05 Up  x u16, y u16, button u8
//   0x06 Wheel                  dx i16, dy i16
// Host → client: 0x80 InputApplied: seq u32, frame_id u32.
//
// Shared test vectors: protocol/tests/vectors/input.json and input_invalid.json.

import type { InputApplied } from "../generated/InputApplied";
import type { InputEvent } from "../generated/InputEvent";
import type { InputKind } from "../generated/InputKind";

export const MAX_KEY_CODE_LEN = 32;

const KEY_DOWN = 0x01;
const KEY_UP = 0x02;
const POINTER_MOVE = 0x03;
const POINTER_DOWN = 0x04;
const POINTER_UP = 0x05;
const WHEEL = 0x06;
const INPUT_APPLIED = 0x80;

export class CodecError extends Error {
  override name = "CodecError";
}

/** Encodes one event; throws CodecError for values the wire format cannot carry. */
export function encodeInput(event: InputEvent): Uint8Array<ArrayBuffer> {
  const w = new Writer();
  const { kind } = event;
  if ("KeyDown" in kind) {
    w.u8(KEY_DOWN).u32(event.seq).keyCode(kind.KeyDown.code);
  } else if ("KeyUp" in kind) {
    w.u8(KEY_UP).u32(event.seq).keyCode(kind.KeyUp.code);
  } else if ("PointerMove" in kind) {
    const m = kind.PointerMove;
    w.u8(POINTER_MOVE).u32(event.seq).u16(m.x).u16(m.y).i16(m.dx).i16(m.dy);
  } else if ("PointerDown" in kind) {
    const b = kind.PointerDown;
    w.u8(POINTER_DOWN).u32(event.seq).u16(b.x).u16(b.y).u8(b.button);
  } else if ("PointerUp" in kind) {
    const b = kind.PointerUp;
    w.u8(POINTER_UP).u32(event.seq).u16(b.x).u16(b.y).u8(b.button);
  } else {
    w.u8(WHEEL).u32(event.seq).i16(kind.Wheel.dx).i16(kind.Wheel.dy);
  }
  return w.finish();
}

/** Decodes one client message; throws CodecError on anything malformed. */
export function decodeInput(bytes: Uint8Array): InputEvent {
  const r = new Reader(bytes);
  const type = r.u8();
  const seq = r.u32();
  let kind: InputKind;
  switch (type) {
    case KEY_DOWN:
      kind = { KeyDown: { code: r.keyCode() } };
      break;
    case KEY_UP:
      kind = { KeyUp: { code: r.keyCode() } };
      break;
    case POINTER_MOVE:
      kind = { PointerMove: { x: r.u16(), y: r.u16(), dx: r.i16(), dy: r.i16() } };
      break;
    case POINTER_DOWN:
      kind = { PointerDown: { x: r.u16(), y: r.u16(), button: r.u8() } };
      break;
    case POINTER_UP:
      kind = { PointerUp: { x: r.u16(), y: r.u16(), button: r.u8() } };
      break;
    case WHEEL:
      kind = { Wheel: { dx: r.i16(), dy: r.i16() } };
      break;
    default:
      throw new CodecError(`unknown input type 0x${type.toString(16)}`);
  }
  r.finish();
  return { seq, kind };
}

export function encodeApplied(applied: InputApplied): Uint8Array<ArrayBuffer> {
  return new Writer().u8(INPUT_APPLIED).u32(applied.seq).u32(applied.frame_id).finish();
}

/** Decodes a host message (only InputApplied exists); throws CodecError otherwise. */
export function decodeApplied(bytes: Uint8Array): InputApplied {
  const r = new Reader(bytes);
  const type = r.u8();
  if (type !== INPUT_APPLIED) throw new CodecError(`unknown host message type 0x${type.toString(16)}`);
  const applied: InputApplied = { seq: r.u32(), frame_id: r.u32() };
  r.finish();
  return applied;
}

/** True for a `KeyboardEvent.code` the wire format can carry. */
export function isEncodableKeyCode(code: string): boolean {
  if (code.length < 1 || code.length > MAX_KEY_CODE_LEN) return false;
  for (let i = 0; i < code.length; i++) {
    if (!isAsciiGraphic(code.charCodeAt(i))) return false;
  }
  return true;
}

function isAsciiGraphic(byte: number): boolean {
  return byte >= 0x21 && byte <= 0x7e;
}

function checkInt(value: number, min: number, max: number, what: string): number {
  if (!Number.isInteger(value) || value < min || value > max) {
    throw new CodecError(`${what} ${value} is not an integer in ${min}..=${max}`);
  }
  return value;
}

class Writer {
  private readonly bytes: number[] = [];

  u8(v: number): this {
    this.bytes.push(checkInt(v, 0, 0xff, "u8"));
    return this;
  }
  u16(v: number): this {
    checkInt(v, 0, 0xffff, "u16");
    this.bytes.push(v & 0xff, v >>> 8);
    return this;
  }
  i16(v: number): this {
    checkInt(v, -0x8000, 0x7fff, "i16");
    return this.u16(v & 0xffff);
  }
  u32(v: number): this {
    checkInt(v, 0, 0xffffffff, "u32");
    this.bytes.push(v & 0xff, (v >>> 8) & 0xff, (v >>> 16) & 0xff, v >>> 24);
    return this;
  }
  keyCode(code: string): this {
    if (!isEncodableKeyCode(code)) throw new CodecError(`key code ${JSON.stringify(code)} is not 1..=32 ASCII characters`);
    this.u8(code.length);
    for (let i = 0; i < code.length; i++) this.bytes.push(code.charCodeAt(i));
    return this;
  }
  finish(): Uint8Array<ArrayBuffer> {
    return Uint8Array.from(this.bytes);
  }
}

class Reader {
  private offset = 0;
  private readonly view: DataView;

  constructor(private readonly bytes: Uint8Array) {
    this.view = new DataView(bytes.buffer, bytes.byteOffset, bytes.byteLength);
  }

  private take(n: number): number {
    if (this.bytes.length - this.offset < n) throw new CodecError("truncated message");
    const at = this.offset;
    this.offset += n;
    return at;
  }
  u8(): number {
    return this.view.getUint8(this.take(1));
  }
  u16(): number {
    return this.view.getUint16(this.take(2), true);
  }
  i16(): number {
    return this.view.getInt16(this.take(2), true);
  }
  u32(): number {
    return this.view.getUint32(this.take(4), true);
  }
  keyCode(): string {
    const len = this.u8();
    if (len < 1 || len > MAX_KEY_CODE_LEN) throw new CodecError(`key code length ${len} is not 1..=32`);
    const at = this.take(len);
    const raw = this.bytes.subarray(at, at + len);
    if (!raw.every(isAsciiGraphic)) throw new CodecError("key code is not ASCII");
    return String.fromCharCode(...raw);
  }
  finish(): void {
    const left = this.bytes.length - this.offset;
    if (left !== 0) throw new CodecError(`${left} trailing bytes`);
  }
}
