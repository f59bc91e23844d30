// The binary input codec of the "input" data channel (little-endian).
// The layout and its meaning are documented in protocol/src/input.rs; in short:
//
// Client → host: byte 0 = type, bytes 1..4 = seq (u32), then the payload:
//   0x01 KeyDown / 0x02 KeyUp   u8 length L (1..=32) + L ASCII-graphic bytes (KeyboardEvent.code)
//   0x03 PointerMove            x u16, y u16, dx i16, dy i16
//   0x04 PointerDown / 0x05 Up  x u16, y u16, button u8
//   0x06 Wheel                  dx i16, dy i16
//   0x07 Gamepad                pad u8 (0..=15), buttons u32, left_trigger u8, right_trigger u8,
//                               left_x i16, left_y i16, right_x i16, right_y i16
//   0x08 GamepadGone            pad u8 (0..=15)
//   0x09 TouchStart / 0x0a Move / 0x0b End / 0x0c Cancel
//                               u8 count N (1..=10), N × (id u8 (0..=9, distinct), x u16, y u16)
//   0x0d Clipboard              u32 length L (0..=65536) + L bytes of UTF-8 text
//   0x0e PointerLock            u8 locked (0 or 1)
// Host → client: 0x80 InputApplied: seq u32, frame_id u32;
//                0x81 InputApplied with the frame's RTP timestamp: seq u32, frame_id u32, rtp_timestamp u32.
//
// Shared test vectors: protocol/tests/vectors/input.json, input_invalid.json, applied.json and applied_invalid.json.

import type { InputApplied } from "../generated/InputApplied";
import type { InputEvent } from "../generated/InputEvent";
import type { InputKind } from "../generated/InputKind";
import type { TouchPoint } from "../generated/TouchPoint";

export const MAX_KEY_CODE_LEN = 32;
/** Gamepads are numbered 0..MAX_GAMEPADS. */
export const MAX_GAMEPADS = 16;
/** Most touches in one message; touch ids are 0..MAX_TOUCHES. */
export const MAX_TOUCHES = 10;
/** Longest clipboard text carried, in UTF-8 bytes. */
export const MAX_CLIPBOARD_BYTES = 65_536;

const KEY_DOWN = 0x01;
const KEY_UP = 0x02;
const POINTER_MOVE = 0x03;
const POINTER_DOWN = 0x04;
const POINTER_UP = 0x05;
const WHEEL = 0x06;
const GAMEPAD = 0x07;
const GAMEPAD_GONE = 0x08;
const TOUCH_START = 0x09;
const TOUCH_MOVE = 0x0a;
const TOUCH_END = 0x0b;
const TOUCH_CANCEL = 0x0c;
const CLIPBOARD = 0x0d;
const POINTER_LOCK = 0x0e;
const INPUT_APPLIED = 0x80;
const INPUT_APPLIED_AT = 0x81;

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
  } else if ("Wheel" in kind) {
    w.u8(WHEEL).u32(event.seq).i16(kind.Wheel.dx).i16(kind.Wheel.dy);
  } else if ("Gamepad" in kind) {
    const g = kind.Gamepad;
    w.u8(GAMEPAD).u32(event.seq).pad(g.pad).u32(g.buttons).u8(g.left_trigger).u8(g.right_trigger);
    w.i16(g.left_x).i16(g.left_y).i16(g.right_x).i16(g.right_y);
  } else if ("GamepadGone" in kind) {
    w.u8(GAMEPAD_GONE).u32(event.seq).pad(kind.GamepadGone.pad);
  } else if ("TouchStart" in kind) {
    w.u8(TOUCH_START).u32(event.seq).touches(kind.TouchStart.touches);
  } else if ("TouchMove" in kind) {
    w.u8(TOUCH_MOVE).u32(event.seq).touches(kind.TouchMove.touches);
  } else if ("TouchEnd" in kind) {
    w.u8(TOUCH_END).u32(event.seq).touches(kind.TouchEnd.touches);
  } else if ("TouchCancel" in kind) {
    w.u8(TOUCH_CANCEL).u32(event.seq).touches(kind.TouchCancel.touches);
  } else if ("Clipboard" in kind) {
    w.u8(CLIPBOARD).u32(event.seq).text(kind.Clipboard.text);
  } else {
    w.u8(POINTER_LOCK).u32(event.seq).u8(kind.PointerLock.locked ? 1 : 0);
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
    case GAMEPAD:
      kind = {
        Gamepad: {
          pad: r.pad(),
          buttons: r.u32(),
          left_trigger: r.u8(),
          right_trigger: r.u8(),
          left_x: r.i16(),
          left_y: r.i16(),
          right_x: r.i16(),
          right_y: r.i16(),
        },
      };
      break;
    case GAMEPAD_GONE:
      kind = { GamepadGone: { pad: r.pad() } };
      break;
    case TOUCH_START:
      kind = { TouchStart: { touches: r.touches() } };
      break;
    case TOUCH_MOVE:
      kind = { TouchMove: { touches: r.touches() } };
      break;
    case TOUCH_END:
      kind = { TouchEnd: { touches: r.touches() } };
      break;
    case TOUCH_CANCEL:
      kind = { TouchCancel: { touches: r.touches() } };
      break;
    case CLIPBOARD:
      kind = { Clipboard: { text: r.text() } };
      break;
    case POINTER_LOCK: {
      const flag = r.u8();
      if (flag > 1) throw new CodecError(`pointer lock flag ${flag} is neither 0 nor 1`);
      kind = { PointerLock: { locked: flag === 1 } };
      break;
    }
    default:
      throw new CodecError(`unknown input type 0x${type.toString(16)}`);
  }
  r.finish();
  return { seq, kind };
}

/** Encodes an ack: 0x81 when it carries an RTP timestamp, 0x80 when not. */
export function encodeApplied(applied: InputApplied): Uint8Array<ArrayBuffer> {
  const w = new Writer().u8(applied.rtp_timestamp === undefined ? INPUT_APPLIED : INPUT_APPLIED_AT);
  w.u32(applied.seq).u32(applied.frame_id);
  if (applied.rtp_timestamp !== undefined) w.u32(applied.rtp_timestamp);
  return w.finish();
}

/** Decodes a host message (InputApplied in either form); throws CodecError otherwise. */
export function decodeApplied(bytes: Uint8Array): InputApplied {
  const r = new Reader(bytes);
  const type = r.u8();
  if (type !== INPUT_APPLIED && type !== INPUT_APPLIED_AT) throw new CodecError(`unknown host message type 0x${type.toString(16)}`);
  const applied: InputApplied = { seq: r.u32(), frame_id: r.u32() };
  if (type === INPUT_APPLIED_AT) applied.rtp_timestamp = r.u32();
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

/** Throws unless `touches` holds 1..=MAX_TOUCHES entries with distinct ids below MAX_TOUCHES. */
function checkTouches(touches: readonly TouchPoint[]): void {
  if (touches.length < 1 || touches.length > MAX_TOUCHES) throw new CodecError(`${touches.length} touches is not 1..=${MAX_TOUCHES}`);
  let seen = 0;
  for (const { id } of touches) {
    if (!Number.isInteger(id) || id < 0 || id >= MAX_TOUCHES) throw new CodecError(`touch id ${id} is not below ${MAX_TOUCHES}`);
    if (seen & (1 << id)) throw new CodecError(`touch id ${id} appears twice`);
    seen |= 1 << id;
  }
}

function checkPad(pad: number): number {
  if (!Number.isInteger(pad) || pad < 0 || pad >= MAX_GAMEPADS) throw new CodecError(`gamepad index ${pad} is not below ${MAX_GAMEPADS}`);
  return pad;
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
  pad(pad: number): this {
    return this.u8(checkPad(pad));
  }
  touches(touches: readonly TouchPoint[]): this {
    checkTouches(touches);
    this.u8(touches.length);
    for (const t of touches) this.u8(t.id).u16(t.x).u16(t.y);
    return this;
  }
  text(text: string): this {
    const bytes = new TextEncoder().encode(text);
    if (bytes.length > MAX_CLIPBOARD_BYTES) throw new CodecError(`clipboard text of ${bytes.length} bytes is over ${MAX_CLIPBOARD_BYTES}`);
    this.u32(bytes.length);
    for (const b of bytes) this.bytes.push(b);
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
  pad(): number {
    return checkPad(this.u8());
  }
  touches(): TouchPoint[] {
    const n = this.u8();
    if (n < 1 || n > MAX_TOUCHES) throw new CodecError(`${n} touches is not 1..=${MAX_TOUCHES}`);
    const touches: TouchPoint[] = [];
    for (let i = 0; i < n; i++) touches.push({ id: this.u8(), x: this.u16(), y: this.u16() });
    checkTouches(touches);
    return touches;
  }
  text(): string {
    const len = this.u32();
    if (len > MAX_CLIPBOARD_BYTES) throw new CodecError(`clipboard text of ${len} bytes is over ${MAX_CLIPBOARD_BYTES}`);
    const at = this.take(len);
    try {
      return new TextDecoder("utf-8", { fatal: true, ignoreBOM: true }).decode(this.bytes.subarray(at, at + len));
    } catch {
      throw new CodecError("clipboard text is not UTF-8");
    }
  }
  finish(): void {
    const left = this.bytes.length - this.offset;
    if (left !== 0) throw new CodecError(`${left} trailing bytes`);
  }
}
