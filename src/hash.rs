//! The hashes that name blobs in the HF cache: the sha256 of the content for LFS files, the git
//! blob sha1 (`blob <size>\0` + content) for the others. A file is installed only when its bytes
//! hash to its etag.

use std::fmt;
use std::io::{self, Read};

use sha1::Sha1;
use sha2::{Digest, Sha256};

use crate::repo::RepoFile;

/// Which hash a file's etag is.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum HashKind {
    /// The sha256 of the content: LFS files.
    Sha256,
    /// The git blob id: every other file.
    GitSha1,
}

impl HashKind {
    /// The hash a file's etag is.
    pub fn of(file: &RepoFile) -> HashKind {
        if file.lfs_sha256.is_some() {
            HashKind::Sha256
        } else {
            HashKind::GitSha1
        }
    }

    /// `sha256` or `git-sha1`, as messages name it.
    pub fn as_str(self) -> &'static str {
        match self {
            HashKind::Sha256 => "sha256",
            HashKind::GitSha1 => "git-sha1",
        }
    }
}

impl fmt::Display for HashKind {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        f.write_str(self.as_str())
    }
}

/// Bytes that do not hash to the etag the Hub announced (or are not as many as it said).
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mismatch {
    /// The hash compared.
    pub kind: HashKind,
    /// What the Hub announced.
    pub expected: String,
    /// What the bytes hash to.
    pub actual: String,
    /// How many bytes there were.
    pub size: u64,
}

/// Hashes a file's bytes as they come, then checks them against its etag and size.
pub(crate) enum Verifier {
    Sha256(Sha256),
    GitSha1(Sha1),
}

impl Verifier {
    pub(crate) fn new(file: &RepoFile) -> Verifier {
        match HashKind::of(file) {
            HashKind::Sha256 => Verifier::Sha256(Sha256::new()),
            HashKind::GitSha1 => {
                let mut sha1 = Sha1::new();
                sha1.update(format!("blob {}\0", file.size).as_bytes());
                Verifier::GitSha1(sha1)
            }
        }
    }

    pub(crate) fn update(&mut self, bytes: &[u8]) {
        match self {
            Verifier::Sha256(hasher) => hasher.update(bytes),
            Verifier::GitSha1(hasher) => hasher.update(bytes),
        }
    }

    /// `Ok` when the `size` bytes hashed are the file's.
    pub(crate) fn check(self, file: &RepoFile, size: u64) -> Result<(), Mismatch> {
        let (kind, actual) = match self {
            Verifier::Sha256(hasher) => (HashKind::Sha256, hex(&hasher.finalize())),
            Verifier::GitSha1(hasher) => (HashKind::GitSha1, hex(&hasher.finalize())),
        };
        if actual == file.etag() && size == file.size {
            return Ok(());
        }
        Err(Mismatch {
            kind,
            expected: file.etag().to_owned(),
            actual,
            size,
        })
    }
}

/// Hashes what `reader` holds against `file`, reading at most one byte past its size (a longer
/// content is wrong whatever follows). Returns the bytes read and the verdict.
pub(crate) fn check_reader(
    mut reader: impl Read,
    file: &RepoFile,
) -> io::Result<(u64, Result<(), Mismatch>)> {
    let mut verifier = Verifier::new(file);
    let mut buffer = vec![0u8; 1024 * 1024];
    let mut size = 0u64;
    let limit = file.size.saturating_add(1);
    while size < limit {
        let wanted = buffer.len().min((limit - size) as usize);
        let read = reader.read(&mut buffer[..wanted])?;
        if read == 0 {
            break;
        }
        verifier.update(&buffer[..read]);
        size += read as u64;
    }
    Ok((size, verifier.check(file, size)))
}

/// Lowercase hex.
pub(crate) fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|byte| format!("{byte:02x}")).collect()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn git_blob_ids_match_git_hash_object() {
        let file = RepoFile {
            path: "hello".into(),
            size: 6,
            blob_id: "ce013625030ba8dba906f756967f9e9ca394464a".into(),
            lfs_sha256: None,
            xet_hash: None,
        };
        let mut verifier = Verifier::new(&file);
        verifier.update(b"hello\n");
        assert!(verifier.check(&file, 6).is_ok());
    }

    #[test]
    fn a_wrong_hash_names_both_hashes() {
        let file = RepoFile {
            path: "m.bin".into(),
            size: 3,
            blob_id: "0".repeat(40),
            lfs_sha256: Some("0".repeat(64)),
            xet_hash: None,
        };
        let mut verifier = Verifier::new(&file);
        verifier.update(b"abc");
        let mismatch = verifier.check(&file, 3).unwrap_err();
        assert_eq!(mismatch.kind, HashKind::Sha256);
        assert_eq!(mismatch.expected, "0".repeat(64));
        assert_eq!(
            mismatch.actual,
            "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
        );
    }
}
