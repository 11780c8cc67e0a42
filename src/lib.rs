//! facehugger: declare the Hugging Face Hub repos a project needs, lock them to commits, and sync
//! them into the shared HF cache.

pub mod patterns;
