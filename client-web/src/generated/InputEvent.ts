// Placeholder written by hand until ts-rs generates this file from the Rust `protocol` crate.
import type { InputKind } from "./InputKind";

export type InputEvent = { seq: number, kind: InputKind, };
