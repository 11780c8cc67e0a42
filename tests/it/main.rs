//! facehugger's integration tests: one binary, run against the in-process test hub.

// Test helpers are `pub` for the sibling modules of this one binary.
#![allow(unreachable_pub)]

mod build_script;
mod cargo;
mod commands;
mod concurrency;
mod docker;
mod durability;
mod errors;
mod export;
mod faults;
// Records of complete snapshots are kept on Unix only.
#[cfg(unix)]
mod fresh;
mod gc;
mod hostile_hub;
mod hostile_input;
mod interop;
mod lockfile;
mod no_links;
// Kills and interrupts a running sync with Unix signals.
#[cfg(unix)]
mod resume;
mod shared_store;
mod support;
mod sync;
mod todays_hub;
