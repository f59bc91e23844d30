// The clipboard the player shares with the app: the page's text goes to the app just before
// the keys that paste it, and what the app copies lands on the page's clipboard.

import type { InputKind } from "../generated/InputKind";
import { MAX_CLIPBOARD_BYTES } from "./codec.ts";

/** The part of the Clipboard API used (`navigator.clipboard`). */
export interface TextClipboard {
  readText(): Promise<string>;
  writeText(text: string): Promise<void>;
}

/** The key event fields that tell a paste chord. */
export type Chord = Pick<KeyboardEvent, "code" | "ctrlKey" | "metaKey" | "shiftKey" | "altKey">;

/** True for the chords that paste: Ctrl+V or Meta+V (with or without Shift), Shift+Insert. */
export function isPasteChord(e: Chord): boolean {
  if (e.altKey) return false;
  if (e.code === "KeyV") return e.ctrlKey || e.metaKey;
  return e.code === "Insert" && e.shiftKey && !e.ctrlKey && !e.metaKey;
}

/** Keeps the app's clipboard and the page's in step. */
export class SharedClipboard {
  /** The text both sides last agreed on: not sent again. */
  private last: string | null = null;

  constructor(
    private readonly clipboard: TextClipboard | undefined,
    private readonly send: (kind: InputKind) => void,
  ) {}

  /**
   * Sends the page's clipboard text to the app unless the app has it already. Resolves once
   * sent, or at once when the browser will not let the page read it (the app then pastes its own).
   */
  async offer(): Promise<void> {
    let text: string;
    try {
      if (this.clipboard === undefined) return;
      text = await this.clipboard.readText();
    } catch {
      return;
    }
    if (text === this.last || new TextEncoder().encode(text).length > MAX_CLIPBOARD_BYTES) return;
    this.last = text;
    this.send({ Clipboard: { text } });
  }

  /** The app copied `text`: the page's clipboard takes it, where the browser allows. */
  copiedByApp(text: string): void {
    this.last = text;
    this.clipboard?.writeText(text).catch(() => undefined);
  }
}
