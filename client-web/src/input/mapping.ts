// Pure mapping of DOM event values onto the wire ranges of the input codec.

export interface Rect {
  left: number;
  top: number;
  width: number;
  height: number;
}

/** The part of an `object-fit: contain` box that the picture covers (letterboxing removed). */
export function pictureRect(box: Rect, videoWidth: number, videoHeight: number): Rect {
  if (videoWidth <= 0 || videoHeight <= 0 || box.width <= 0 || box.height <= 0) return box;
  const scale = Math.min(box.width / videoWidth, box.height / videoHeight);
  const width = videoWidth * scale;
  const height = videoHeight * scale;
  return {
    left: box.left + (box.width - width) / 2,
    top: box.top + (box.height - height) / 2,
    width,
    height,
  };
}

/** A client point as 0..=65535 across the picture, clamped to its edges. */
export function normalisePoint(picture: Rect, clientX: number, clientY: number): { x: number; y: number } {
  return {
    x: normaliseAxis((clientX - picture.left) / picture.width),
    y: normaliseAxis((clientY - picture.top) / picture.height),
  };
}

function normaliseAxis(fraction: number): number {
  if (!Number.isFinite(fraction)) return 0;
  return clamp(Math.round(fraction * 65535), 0, 65535);
}

/** Rounds and clamps to the i16 range. */
export function toI16(value: number): number {
  return Number.isFinite(value) ? clamp(Math.round(value), -0x8000, 0x7fff) : 0;
}

/** Clamps a DOM `MouseEvent.button` to the u8 range. */
export function toButton(button: number): number {
  return clamp(Math.trunc(button), 0, 0xff);
}

const LINE_HEIGHT_PX = 16;

/** A wheel delta in pixels, whatever `deltaMode` it came in. */
export function wheelPixels(delta: number, deltaMode: number, pagePx: number): number {
  if (deltaMode === 1) return delta * LINE_HEIGHT_PX; // DOM_DELTA_LINE
  if (deltaMode === 2) return delta * pagePx; // DOM_DELTA_PAGE
  return delta;
}

function clamp(value: number, min: number, max: number): number {
  return Math.min(max, Math.max(min, value));
}
