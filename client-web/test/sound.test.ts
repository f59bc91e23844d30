import assert from "node:assert/strict";
import { test } from "node:test";

import { DEFAULT_SOUND, SOUND_KEY, loadSoundSetting, parseSoundSetting, saveSoundSetting } from "../src/sound.ts";

test("a saved setting reads back", () => {
  assert.deepEqual(parseSoundSetting(JSON.stringify({ volume: 0.35, muted: true })), { volume: 0.35, muted: true });
  assert.deepEqual(parseSoundSetting('{"volume":0,"muted":false}'), { volume: 0, muted: false });
});

test("nothing saved, or not JSON, or not an object: the default", () => {
  for (const raw of [null, "", "garbage", "{", "null", "[]", "0.5", '"muted"']) {
    assert.deepEqual(parseSoundSetting(raw), DEFAULT_SOUND, String(raw));
  }
  assert.deepEqual(DEFAULT_SOUND, { volume: 1, muted: false });
});

test("each bad field takes the default's value; a volume out of range is clamped", () => {
  assert.deepEqual(parseSoundSetting('{"volume":"0.5","muted":true}'), { volume: 1, muted: true });
  assert.deepEqual(parseSoundSetting('{"volume":0.5,"muted":"yes"}'), { volume: 0.5, muted: false });
  assert.deepEqual(parseSoundSetting('{"volume":null,"muted":1}'), DEFAULT_SOUND);
  assert.equal(parseSoundSetting('{"volume":7}').volume, 1);
  assert.equal(parseSoundSetting('{"volume":-0.2}').volume, 0);
  assert.equal(parseSoundSetting('{"volume":1e999}').volume, 1, "JSON's Infinity is not finite");
});

/** An in-memory Storage; `refuse` makes it throw like a browser that blocks storage. */
function memoryStore(refuse = false): Pick<Storage, "getItem" | "setItem"> & { items: Map<string, string> } {
  const items = new Map<string, string>();
  const check = (): void => {
    if (refuse) throw new Error("SecurityError: storage is blocked");
  };
  return {
    items,
    getItem: (key) => (check(), items.get(key) ?? null),
    setItem: (key, value) => (check(), void items.set(key, value)),
  };
}

test("saves under its key and loads what it saved", () => {
  const store = memoryStore();
  assert.deepEqual(loadSoundSetting(store), DEFAULT_SOUND);
  saveSoundSetting(store, { volume: 0.6, muted: true });
  assert.deepEqual([...store.items.keys()], [SOUND_KEY]);
  assert.deepEqual(loadSoundSetting(store), { volume: 0.6, muted: true });
});

test("blocked or absent storage: the default, and saving does not throw", () => {
  const blocked = memoryStore(true);
  assert.deepEqual(loadSoundSetting(blocked), DEFAULT_SOUND);
  assert.doesNotThrow(() => saveSoundSetting(blocked, { volume: 0.2, muted: false }));
  assert.deepEqual(loadSoundSetting(null), DEFAULT_SOUND);
  assert.doesNotThrow(() => saveSoundSetting(null, DEFAULT_SOUND));
});
