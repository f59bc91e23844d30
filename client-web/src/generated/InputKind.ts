// Placeholder written by hand until ts-rs generates this file from the Rust `protocol` crate.

export type InputKind = { "KeyDown": { code: string, } } | { "KeyUp": { code: string, } } | { "PointerMove": { x: number, y: number, dx: number, dy: number, } } | { "PointerDown": { x: number, y: number, button: number, } } | { "PointerUp": { x: number, y: number, button: number, } } | { "Wheel": { dx: number, dy: number, } };
