import assert from "node:assert/strict";
import { test } from "node:test";

import { normalisePoint, pictureRect, toButton, toI16, wheelPixels } from "../src/input/mapping.ts";

test("pictureRect removes letterboxing of object-fit: contain", () => {
  // 1280x800 box, 16:9 picture → full width, 720 high, 40 px bars top and bottom.
  assert.deepEqual(pictureRect({ left: 0, top: 30, width: 1280, height: 800 }, 1280, 720), {
    left: 0,
    top: 70,
    width: 1280,
    height: 720,
  });
  // Tall box with a wide picture is pillarboxed the other way: 1000x400 box, 16:9 → 711.1 wide.
  const p = pictureRect({ left: 10, top: 0, width: 1000, height: 400 }, 1600, 900);
  assert.equal(p.height, 400);
  assert.ok(Math.abs(p.width - 711.111) < 0.01);
  assert.ok(Math.abs(p.left - (10 + (1000 - 711.111) / 2)) < 0.01);
});

test("pictureRect keeps the box before the video has a size", () => {
  const box = { left: 1, top: 2, width: 3, height: 4 };
  assert.deepEqual(pictureRect(box, 0, 0), box);
});

test("normalisePoint spans 0..=65535 and clamps outside the picture", () => {
  const pic = { left: 100, top: 50, width: 200, height: 100 };
  assert.deepEqual(normalisePoint(pic, 100, 50), { x: 0, y: 0 });
  assert.deepEqual(normalisePoint(pic, 300, 150), { x: 65535, y: 65535 });
  assert.deepEqual(normalisePoint(pic, 200, 100), { x: 32768, y: 32768 });
  assert.deepEqual(normalisePoint(pic, 140, 75), { x: 13107, y: 16384 });
  assert.deepEqual(normalisePoint(pic, -5, 1e6), { x: 0, y: 65535 });
  assert.deepEqual(normalisePoint({ left: 0, top: 0, width: 0, height: 0 }, 5, 5), { x: 0, y: 0 });
});

test("toI16 rounds and clamps", () => {
  assert.equal(toI16(1.6), 2);
  assert.equal(toI16(-1.4), -1);
  assert.equal(toI16(40000), 32767);
  assert.equal(toI16(-40000), -32768);
  assert.equal(toI16(Number.NaN), 0);
});

test("toButton clamps to u8", () => {
  assert.equal(toButton(0), 0);
  assert.equal(toButton(2), 2);
  assert.equal(toButton(-1), 0);
  assert.equal(toButton(300), 255);
});

test("wheelPixels converts lines and pages", () => {
  assert.equal(wheelPixels(100, 0, 720), 100);
  assert.equal(wheelPixels(3, 1, 720), 48);
  assert.equal(wheelPixels(-1, 2, 720), -720);
});
