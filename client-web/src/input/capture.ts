// Turns keyboard (on window), mouse/pen pointer, wheel and touch (over the video) and gamepad
// (polled) events into input events.

import type { InputKind } from "../generated/InputKind";
import { isPasteChord, type SharedClipboard } from "./clipboard.ts";
import { isEncodableKeyCode } from "./codec.ts";
import { captureGamepads } from "./gamepad.ts";
import { normalisePoint, pictureRect, toButton, toI16, wheelPixels } from "./mapping.ts";
import { captureTouch } from "./touch.ts";

/** Keys the page keeps for itself and never sends to the game (F2 toggles the stats overlay). */
export const LOCAL_KEYS: ReadonlySet<string> = new Set(["F2"]);

/** Keys whose browser default (scrolling, button activation) would fight the game. */
const NO_DEFAULT = new Set(["ArrowUp", "ArrowDown", "ArrowLeft", "ArrowRight", "Space", "PageUp", "PageDown", "Home", "End"]);

/**
 * Starts capturing; returns a function that stops it and releases held keys, touches and gamepads. `deliver` gets each
 * input with the time it happened (the DOM event's timeStamp, performance.now() time base) when there was an event.
 * With a `clipboard`, a paste chord first sends the page's clipboard text, and the inputs after it wait for that.
 * `deliver` says whether the input went out; a gamepad's state that did not is sent again.
 */
export function captureInput(
  video: HTMLVideoElement,
  deliver: (kind: InputKind, at?: number) => boolean,
  clipboard?: SharedClipboard,
): () => void {
  // Inputs go out in order: while work is queued (reading the clipboard for a paste), they queue behind it.
  let queue: Promise<void> = Promise.resolve();
  let queued = 0;
  const later = (work: () => void | Promise<void>): void => {
    queued += 1;
    queue = queue
      .then(work)
      .catch(() => undefined)
      .finally(() => {
        queued -= 1;
      });
  };
  const send = (kind: InputKind, at?: number): boolean => {
    if (queued === 0) return deliver(kind, at);
    later(() => void deliver(kind, at));
    return true;
  };
  const held = new Set<string>();
  // The cursor in client coordinates; under pointer lock it is moved by movementX/Y.
  let cursor = { x: 0, y: 0 };

  const picture = () => pictureRect(video.getBoundingClientRect(), video.videoWidth, video.videoHeight);
  const locked = () => document.pointerLockElement === video;
  const position = () => normalisePoint(picture(), cursor.x, cursor.y);

  const onKeyDown = (e: KeyboardEvent): void => {
    if (NO_DEFAULT.has(e.code)) e.preventDefault();
    if (e.repeat || held.has(e.code) || LOCAL_KEYS.has(e.code) || !isEncodableKeyCode(e.code)) return;
    held.add(e.code);
    if (clipboard !== undefined && isPasteChord(e)) later(() => clipboard.offer());
    send({ KeyDown: { code: e.code } }, e.timeStamp);
  };
  const onKeyUp = (e: KeyboardEvent): void => {
    if (NO_DEFAULT.has(e.code)) e.preventDefault();
    if (!held.delete(e.code)) return;
    send({ KeyUp: { code: e.code } }, e.timeStamp);
  };
  const releaseKeys = (): void => {
    for (const code of held) send({ KeyUp: { code } });
    held.clear();
  };

  // Fingers arrive as touch events (several at once, with ids); their pointer events are ignored.
  const isTouch = (e: PointerEvent): boolean => e.pointerType === "touch";

  const onPointerMove = (e: PointerEvent): void => {
    if (isTouch(e)) return;
    if (locked()) {
      const p = picture();
      cursor = {
        x: Math.min(p.left + p.width, Math.max(p.left, cursor.x + e.movementX)),
        y: Math.min(p.top + p.height, Math.max(p.top, cursor.y + e.movementY)),
      };
    } else {
      cursor = { x: e.clientX, y: e.clientY };
    }
    send({ PointerMove: { ...position(), dx: toI16(e.movementX), dy: toI16(e.movementY) } }, e.timeStamp);
  };
  const onPointerDown = (e: PointerEvent): void => {
    if (isTouch(e)) return;
    e.preventDefault();
    if (!locked()) cursor = { x: e.clientX, y: e.clientY };
    video.setPointerCapture(e.pointerId);
    send({ PointerDown: { ...position(), button: toButton(e.button) } }, e.timeStamp);
  };
  const onPointerUp = (e: PointerEvent): void => {
    if (isTouch(e)) return;
    if (!locked()) cursor = { x: e.clientX, y: e.clientY };
    send({ PointerUp: { ...position(), button: toButton(e.button) } }, e.timeStamp);
  };
  const onWheel = (e: WheelEvent): void => {
    e.preventDefault();
    const page = picture();
    send(
      { Wheel: { dx: toI16(wheelPixels(e.deltaX, e.deltaMode, page.width)), dy: toI16(wheelPixels(e.deltaY, e.deltaMode, page.height)) } },
      e.timeStamp,
    );
  };
  // An app's pointer moves relatively while locked (as a game that grabs the mouse expects).
  let wasLocked = false;
  const onLockChange = (): void => {
    if (locked() === wasLocked) return;
    wasLocked = locked();
    send({ PointerLock: { locked: wasLocked } });
  };
  const onContextMenu = (e: Event): void => e.preventDefault();
  const onDoubleClick = (): void => {
    // Optional pointer lock; refusal (e.g. headless, no user gesture) is fine.
    Promise.resolve(video.requestPointerLock()).catch(() => undefined);
  };

  window.addEventListener("keydown", onKeyDown);
  window.addEventListener("keyup", onKeyUp);
  window.addEventListener("blur", releaseKeys);
  video.addEventListener("pointermove", onPointerMove);
  video.addEventListener("pointerdown", onPointerDown);
  video.addEventListener("pointerup", onPointerUp);
  video.addEventListener("wheel", onWheel, { passive: false });
  video.addEventListener("contextmenu", onContextMenu);
  video.addEventListener("dblclick", onDoubleClick);
  document.addEventListener("pointerlockchange", onLockChange);
  const stopTouch = captureTouch(video, picture, send);
  const stopGamepads = captureGamepads(send);

  return () => {
    stopTouch();
    stopGamepads();
    window.removeEventListener("keydown", onKeyDown);
    window.removeEventListener("keyup", onKeyUp);
    window.removeEventListener("blur", releaseKeys);
    video.removeEventListener("pointermove", onPointerMove);
    video.removeEventListener("pointerdown", onPointerDown);
    video.removeEventListener("pointerup", onPointerUp);
    video.removeEventListener("wheel", onWheel);
    video.removeEventListener("contextmenu", onContextMenu);
    video.removeEventListener("dblclick", onDoubleClick);
    document.removeEventListener("pointerlockchange", onLockChange);
    releaseKeys();
    if (locked()) document.exitPointerLock();
  };
}
