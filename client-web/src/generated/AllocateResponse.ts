// Placeholder written by hand until ts-rs generates this file from the Rust `protocol` crate.

export type AllocateResponse = { session_id: string, host_id: string, whep_url: string, token: string, expires_at_ms: number, };
