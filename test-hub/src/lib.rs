//! A loopback emulation of the Hugging Face Hub for facehugger's tests and benchmarks.
//!
//! [`TestHub::start`] loads fixture repos from TOML specs (see `fixtures/hub/`) and serves them on
//! two 127.0.0.1 origins: the Hub (`/api/{models,datasets,spaces}/...` revision and tree APIs,
//! `resolve` URLs) and a CDN that LFS files redirect to, as huggingface_hub 2.4.0 expects.
//! Every request is logged for assertions.

mod edge;
mod faults;
mod fixtures;
mod http;
mod server;

pub use faults::{Fault, FaultKind};
pub use fixtures::{
    CommitInfo, FileInfo, Hub, LoadOptions, RepoInfo, TreeEntry, generate_bytes, git_blob_sha1,
    lfs_pointer, sha256_hex, xet_hash,
};
pub use server::{LoggedRequest, Options, Origin, RequestCounts, TestHub};
