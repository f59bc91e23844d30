// Placeholder written by hand until ts-rs generates this file from the Rust `protocol` crate.
import type { Profile } from "./Profile";

export type App = { id: string, title: string, profile: Profile, description: string, };
