// The player's sound: a mute button and a volume slider over the stream's <video>, with the setting kept in
// localStorage. The page loads muted (browsers play only muted media without a user gesture); the Play click puts the
// saved setting on the element. Parsing the stored setting is pure (unit-tested).

/** The localStorage key of the setting. */
export const SOUND_KEY = "gridplay.sound";

export interface SoundSetting {
  /** The element's volume, 0..1. */
  volume: number;
  muted: boolean;
}

export const DEFAULT_SOUND: SoundSetting = { volume: 1, muted: false };

/** Where the setting is kept: localStorage, or null where the page may not use it. */
export type SoundStore = Pick<Storage, "getItem" | "setItem"> | null;

/** The setting stored as `raw` (JSON); a missing or bad field takes the default's value, a volume out of range is clamped. */
export function parseSoundSetting(raw: string | null): SoundSetting {
  let stored: unknown = null;
  try {
    stored = raw === null ? null : JSON.parse(raw);
  } catch {
    // not JSON: the defaults
  }
  const fields = typeof stored === "object" && stored !== null ? (stored as Record<string, unknown>) : {};
  const volume = fields["volume"];
  const muted = fields["muted"];
  return {
    volume: typeof volume === "number" && Number.isFinite(volume) ? Math.min(1, Math.max(0, volume)) : DEFAULT_SOUND.volume,
    muted: typeof muted === "boolean" ? muted : DEFAULT_SOUND.muted,
  };
}

/** The saved setting; the default when nothing (readable) is saved. */
export function loadSoundSetting(store: SoundStore): SoundSetting {
  try {
    return parseSoundSetting(store?.getItem(SOUND_KEY) ?? null);
  } catch {
    return { ...DEFAULT_SOUND }; // storage refused (privacy settings)
  }
}

/** Saves `setting`; where storage refuses, it lasts as long as the page. */
export function saveSoundSetting(store: SoundStore, setting: SoundSetting): void {
  try {
    store?.setItem(SOUND_KEY, JSON.stringify(setting));
  } catch {
    // full or refused
  }
}

/** The page's localStorage, or null where reading it throws (storage blocked). */
export function pageStore(): SoundStore {
  try {
    return window.localStorage;
  } catch {
    return null;
  }
}

/**
 * Wires the mute button (aria-pressed while muted) and the volume slider to `video`, saving each change in `store`.
 * Returns the function that puts the saved setting on the element: call it in the Play click, the user gesture that
 * lets the sound play.
 */
export function wireSound(video: HTMLVideoElement, mute: HTMLButtonElement, volume: HTMLInputElement, store: SoundStore): () => void {
  const render = (): void => {
    mute.setAttribute("aria-pressed", String(video.muted));
    volume.value = String(video.volume);
  };
  const change = (set: () => void): void => {
    set();
    saveSoundSetting(store, { volume: video.volume, muted: video.muted });
    render();
  };
  mute.addEventListener("click", () => change(() => (video.muted = !video.muted)));
  volume.addEventListener("input", () => change(() => (video.volume = Number(volume.value))));
  // Also shows a mute the page did itself (see playStream).
  video.addEventListener("volumechange", render);
  return () => {
    const saved = loadSoundSetting(store);
    video.volume = saved.volume;
    video.muted = saved.muted;
    render();
  };
}

/** Starts `video`; if the browser refuses to play it with sound (no user gesture it counts), plays it muted. */
export function playStream(video: HTMLVideoElement): void {
  video
    .play()
    .catch((err: unknown) => {
      if (video.muted || !(err instanceof DOMException) || err.name !== "NotAllowedError") return;
      video.muted = true;
      return video.play();
    })
    .catch(() => undefined);
}
