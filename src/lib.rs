//! facehugger: declare the Hugging Face Hub repos a project needs, lock them to commits, and sync
//! them into the shared HF cache.

pub mod build;
pub mod cache;
pub mod cargo;
#[cfg(feature = "cli")]
pub mod cli;
pub mod edit;
pub mod error;
pub mod hub;
pub mod inspect;
pub mod lock;
pub mod manifest;
pub mod patterns;
#[cfg(feature = "cli")]
pub mod project;
pub mod repo;
pub mod sync;

pub use error::{Error, Result};
