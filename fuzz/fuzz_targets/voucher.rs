//! Fuzzes VoucherSubmission JSON, validate, the contract's Voucher and its signature.
//! The body is `gridplay_chain::fuzzing::voucher`;
//! `cargo test` runs the corpus through it too.

#![no_main]

libfuzzer_sys::fuzz_target!(|data: &[u8]| gridplay_chain::fuzzing::voucher(data));
