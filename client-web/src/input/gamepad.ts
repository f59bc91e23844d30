// Gamepads: the Gamepad API has no change events, so pads are polled once per animation
// frame and each pad's whole state is sent as a snapshot when it changes.

import type { InputKind } from "../generated/InputKind";
import { MAX_GAMEPADS } from "./codec.ts";

/** One pad's state as the wire carries it (the payload of InputKind.Gamepad). */
export type PadState = Extract<InputKind, { Gamepad: unknown }>["Gamepad"];

/** The parts of a DOM Gamepad read here (tests pass plain objects). */
export interface PadLike {
  readonly index: number;
  readonly connected: boolean;
  readonly buttons: readonly { readonly pressed: boolean; readonly value: number }[];
  readonly axes: readonly number[];
}

/** Standard-mapping indices of the analog triggers. */
const LEFT_TRIGGER = 6;
const RIGHT_TRIGGER = 7;
/** An axis that moved less than this (of 32767) since the last snapshot sent is not worth a message on its own. */
export const AXIS_STEP = 256;
const AXIS_MAX = 32767;

/** A Gamepad API axis (-1..1) on the wire's -32767..=32767. */
export function toAxis(value: number): number {
  return Number.isFinite(value) ? Math.min(AXIS_MAX, Math.max(-AXIS_MAX, Math.round(value * AXIS_MAX))) : 0;
}

/** A Gamepad API button value (0..1) on the wire's 0..=255. */
export function toTrigger(value: number): number {
  return Number.isFinite(value) ? Math.min(255, Math.max(0, Math.round(value * 255))) : 0;
}

/**
 * The snapshot of a pad: bit i of `buttons` for buttons[i] (the first 32; for a pad in the
 * "standard" mapping these are the standard buttons), buttons 6 and 7 as the analog triggers,
 * axes 0..3 as the left and right sticks.
 */
export function padState(pad: PadLike): PadState {
  let buttons = 0;
  for (let i = 0; i < Math.min(32, pad.buttons.length); i++) {
    if (pad.buttons[i]?.pressed) buttons |= 1 << i;
  }
  const axis = (i: number): number => toAxis(pad.axes[i] ?? 0);
  return {
    pad: pad.index,
    buttons: buttons >>> 0, // bit 31 would make it negative
    left_trigger: toTrigger(pad.buttons[LEFT_TRIGGER]?.value ?? 0),
    right_trigger: toTrigger(pad.buttons[RIGHT_TRIGGER]?.value ?? 0),
    left_x: axis(0),
    left_y: axis(1),
    right_x: axis(2),
    right_y: axis(3),
  };
}

/**
 * Whether `next` is worth sending after `last`: a button or trigger changed, an axis moved by
 * AXIS_STEP or more, or an axis reached its centre or an end (so a released stick always
 * arrives at rest, however slowly it went back).
 */
export function padChanged(last: PadState | undefined, next: PadState): boolean {
  if (last === undefined) return true;
  if (last.buttons !== next.buttons || last.left_trigger !== next.left_trigger || last.right_trigger !== next.right_trigger) return true;
  const axes = ["left_x", "left_y", "right_x", "right_y"] as const;
  return axes.some((a) => {
    const [was, now] = [last[a], next[a]];
    return Math.abs(now - was) >= AXIS_STEP || (now !== was && (now === 0 || Math.abs(now) === AXIS_MAX));
  });
}

/** Turns successive navigator.getGamepads() results into the messages to send. */
export class GamepadTracker {
  private readonly sent = new Map<number, PadState>();

  /** The Gamepad and GamepadGone messages that bring the host up to date with `pads`. */
  update(pads: readonly (PadLike | null)[]): InputKind[] {
    const out: InputKind[] = [];
    const seen = new Set<number>();
    for (const pad of pads) {
      if (pad === null || !pad.connected || pad.index < 0 || pad.index >= MAX_GAMEPADS) continue;
      seen.add(pad.index);
      const next = padState(pad);
      if (!padChanged(this.sent.get(pad.index), next)) continue;
      this.sent.set(pad.index, next);
      out.push({ Gamepad: next });
    }
    for (const index of [...this.sent.keys()]) {
      if (seen.has(index)) continue;
      this.sent.delete(index);
      out.push({ GamepadGone: { pad: index } });
    }
    return out;
  }

  /** Forgets that `kind` was sent, when it could not be: a pad's state then goes again with the next update. */
  unsent(kind: InputKind): void {
    if ("Gamepad" in kind) this.sent.delete(kind.Gamepad.pad);
  }

  /** GamepadGone for every pad the host knows of (when input stops). */
  releaseAll(): InputKind[] {
    return this.update([]);
  }
}

/** Polls the gamepads once per animation frame and sends their changes (again, while `send` says it could not); returns
 * a function that stops and releases them. */
export function captureGamepads(send: (kind: InputKind) => boolean): () => void {
  if (typeof navigator.getGamepads !== "function") return () => undefined;
  const tracker = new GamepadTracker();
  const poll = (): void => {
    for (const kind of tracker.update(navigator.getGamepads())) {
      if (!send(kind)) tracker.unsent(kind);
    }
    frame = requestAnimationFrame(poll);
  };
  let frame = requestAnimationFrame(poll);
  return () => {
    cancelAnimationFrame(frame);
    for (const kind of tracker.releaseAll()) send(kind);
  };
}
