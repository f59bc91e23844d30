// Multi-touch over the video: every DOM touch event becomes one message with the touches
// it changed, each finger named by a small slot (0..MAX_TOUCHES) instead of its DOM identifier.

import type { InputKind } from "../generated/InputKind";
import type { TouchPoint } from "../generated/TouchPoint";
import { MAX_TOUCHES } from "./codec.ts";
import { normalisePoint, type Rect } from "./mapping.ts";

/** The parts of a DOM Touch read here (tests pass plain objects). */
export interface TouchLike {
  readonly identifier: number;
  readonly clientX: number;
  readonly clientY: number;
}

type Phase = "start" | "move" | "end" | "cancel";

/** Gives each finger the lowest free slot while it touches, and turns touch lists into messages. */
export class TouchSlots {
  /** DOM identifier → the finger's slot and last position. */
  private readonly fingers = new Map<number, TouchPoint>();

  /** The message for the `touches` of one DOM event, or null when none of them can be sent. */
  event(phase: Phase, touches: Iterable<TouchLike>, picture: Rect): InputKind | null {
    const points: TouchPoint[] = [];
    for (const t of touches) {
      const at = normalisePoint(picture, t.clientX, t.clientY);
      let finger = this.fingers.get(t.identifier);
      if (phase === "start" && finger === undefined) {
        const id = this.freeSlot();
        if (id === null) continue; // more fingers than the wire carries: this one is ignored
        finger = { id, ...at };
        this.fingers.set(t.identifier, finger);
      } else if (finger === undefined) {
        continue; // a finger that started elsewhere or was ignored
      } else {
        finger.x = at.x;
        finger.y = at.y;
      }
      if (phase === "end" || phase === "cancel") this.fingers.delete(t.identifier);
      const { id } = finger;
      if (!points.some((p) => p.id === id)) points.push({ ...finger });
    }
    return points.length === 0 ? null : message(phase, points);
  }

  /** TouchCancel for every finger still down (when input stops), or null. */
  cancelAll(): InputKind | null {
    const points = [...this.fingers.values()];
    this.fingers.clear();
    return points.length === 0 ? null : message("cancel", points);
  }

  get active(): number {
    return this.fingers.size;
  }

  private freeSlot(): number | null {
    const used = new Set([...this.fingers.values()].map((f) => f.id));
    for (let id = 0; id < MAX_TOUCHES; id++) if (!used.has(id)) return id;
    return null;
  }
}

function message(phase: Phase, touches: TouchPoint[]): InputKind {
  switch (phase) {
    case "start":
      return { TouchStart: { touches } };
    case "move":
      return { TouchMove: { touches } };
    case "end":
      return { TouchEnd: { touches } };
    case "cancel":
      return { TouchCancel: { touches } };
  }
}

/** Captures touches on `video` (default actions prevented: no scrolling, zooming or mouse emulation); returns a stop function. */
export function captureTouch(video: HTMLVideoElement, picture: () => Rect, send: (kind: InputKind, at?: number) => void): () => void {
  const slots = new TouchSlots();
  const handler = (phase: Phase) => (e: TouchEvent): void => {
    if (e.cancelable) e.preventDefault();
    const kind = slots.event(phase, e.changedTouches, picture());
    if (kind !== null) send(kind, e.timeStamp);
  };
  const handlers = [
    ["touchstart", handler("start")],
    ["touchmove", handler("move")],
    ["touchend", handler("end")],
    ["touchcancel", handler("cancel")],
  ] as const;
  for (const [type, h] of handlers) video.addEventListener(type, h, { passive: false });
  return () => {
    for (const [type, h] of handlers) video.removeEventListener(type, h);
    const kind = slots.cancelAll();
    if (kind !== null) send(kind);
  };
}
