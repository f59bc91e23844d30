import assert from "node:assert/strict";
import { describe, test } from "node:test";

import type { InputKind } from "../src/generated/InputKind";
import { isPasteChord, SharedClipboard, type TextClipboard } from "../src/input/clipboard.ts";
import { MAX_CLIPBOARD_BYTES } from "../src/input/codec.ts";

const chord = (code: string, mods: Partial<{ ctrlKey: boolean; metaKey: boolean; shiftKey: boolean; altKey: boolean }> = {}) => ({
  code,
  ctrlKey: false,
  metaKey: false,
  shiftKey: false,
  altKey: false,
  ...mods,
});

/** A page clipboard holding `text`, or refusing to be read. */
function pageClipboard(text: string | Error): TextClipboard & { written: string[] } {
  const written: string[] = [];
  return {
    written,
    readText: () => (text instanceof Error ? Promise.reject(text) : Promise.resolve(text)),
    writeText: (t: string) => {
      written.push(t);
      return Promise.resolve();
    },
  };
}

describe("paste chords", () => {
  test("Ctrl+V, Meta+V, Ctrl+Shift+V and Shift+Insert paste", () => {
    assert.ok(isPasteChord(chord("KeyV", { ctrlKey: true })));
    assert.ok(isPasteChord(chord("KeyV", { metaKey: true })));
    assert.ok(isPasteChord(chord("KeyV", { ctrlKey: true, shiftKey: true })));
    assert.ok(isPasteChord(chord("Insert", { shiftKey: true })));
  });
  test("plain V, Alt chords and Ctrl+Insert (copy) do not", () => {
    assert.ok(!isPasteChord(chord("KeyV")));
    assert.ok(!isPasteChord(chord("KeyV", { ctrlKey: true, altKey: true })));
    assert.ok(!isPasteChord(chord("Insert", { ctrlKey: true })));
    assert.ok(!isPasteChord(chord("Insert")));
  });
});

describe("the shared clipboard", () => {
  test("sends the page's text once, and not what the app copied itself", async () => {
    const sent: InputKind[] = [];
    const clipboard = new SharedClipboard(pageClipboard("from the page"), (k) => sent.push(k));
    await clipboard.offer();
    await clipboard.offer();
    const expected: InputKind[] = [{ Clipboard: { text: "from the page" } }];
    assert.deepEqual(sent, expected);
    const copy = pageClipboard("copied");
    const shared = new SharedClipboard(copy, (k) => sent.push(k));
    shared.copiedByApp("copied");
    assert.deepEqual(copy.written, ["copied"]);
    await shared.offer();
    assert.equal(sent.length, 1, "the app's own text is not sent back");
  });
  test("an unreadable or oversized clipboard sends nothing", async () => {
    const sent: InputKind[] = [];
    await new SharedClipboard(pageClipboard(new Error("denied")), (k) => sent.push(k)).offer();
    await new SharedClipboard(pageClipboard("x".repeat(MAX_CLIPBOARD_BYTES + 1)), (k) => sent.push(k)).offer();
    await new SharedClipboard(undefined, (k) => sent.push(k)).offer();
    assert.deepEqual(sent, []);
  });
});
