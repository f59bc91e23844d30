// Placeholder written by hand until ts-rs generates this file from the Rust `protocol` crate.

export type ApiError = { error: string, message: string, };
