// Placeholder written by hand until ts-rs generates this file from the Rust `protocol` crate.
import type { Profile } from "./Profile";

export type AllocateRequest = { app: string, profile: Profile, width: number, height: number, fps: number, };
