//! The tree listing's wire format (`GET /api/{type}s/{id}/tree/{commit}`): one page is a JSON
//! array of files and folders. Nothing in it is trusted: a path or etag becomes a cache path
//! only once it is checked.

use serde::Deserialize;

use crate::repo::{RepoFile, is_lower_hex, is_xet_hash, validate_repo_path};
use crate::text::{MAX_SHOWN_CHARS, shown};

/// The files of one page of a tree listing, folders left out. Refuses the page if an entry's
/// path or etag could not safely become a cache path.
pub fn parse_tree_page(json: &str) -> Result<Vec<RepoFile>, String> {
    let entries: Vec<TreeEntry> = serde_json::from_str(json).map_err(|error| {
        // serde quotes the offending value, which may be huge.
        format!("invalid JSON: {}", shown(&error.to_string(), 300))
    })?;
    entries
        .into_iter()
        .filter_map(|entry| entry.into_file().transpose())
        .collect()
}

/// One entry of a tree page.
#[derive(Deserialize)]
struct TreeEntry {
    #[serde(rename = "type")]
    kind: String,
    path: String,
    #[serde(default)]
    size: u64,
    #[serde(default)]
    oid: String,
    lfs: Option<LfsInfo>,
    #[serde(rename = "xetHash")]
    xet_hash: Option<String>,
}

#[derive(Deserialize)]
struct LfsInfo {
    oid: String,
    size: u64,
}

impl TreeEntry {
    /// The file this entry describes; `None` for folders. Refuses paths that would leave the
    /// snapshot folder and etags that are not plain hex, since both become cache paths.
    fn into_file(self) -> Result<Option<RepoFile>, String> {
        if self.kind != "file" {
            return Ok(None);
        }
        validate_repo_path(&self.path).map_err(|why| format!("refusing a {why}"))?;
        let path = shown(&self.path, MAX_SHOWN_CHARS);
        if !is_lower_hex(&self.oid, 40) {
            return Err(format!(
                "`{path}` has an invalid oid `{}`: a git blob id is 40 lowercase hex digits",
                shown(&self.oid, MAX_SHOWN_CHARS)
            ));
        }
        let (size, lfs_sha256) = match self.lfs {
            Some(lfs) => {
                if !is_lower_hex(&lfs.oid, 64) {
                    return Err(format!(
                        "`{path}` has an invalid LFS oid `{}`: a sha256 is 64 lowercase hex digits",
                        shown(&lfs.oid, MAX_SHOWN_CHARS)
                    ));
                }
                (lfs.size, Some(lfs.oid))
            }
            None => (self.size, None),
        };
        if let Some(xet) = self.xet_hash.as_deref().filter(|xet| !is_xet_hash(xet)) {
            return Err(format!(
                "`{path}` has an invalid xetHash `{}`: a Xet hash is 64 hex digits",
                shown(xet, MAX_SHOWN_CHARS)
            ));
        }
        Ok(Some(RepoFile {
            path: self.path,
            size,
            blob_id: self.oid,
            lfs_sha256,
            xet_hash: self.xet_hash,
        }))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn pages_keep_files_and_refuse_unsafe_entries() {
        let page = r#"[
            {"type": "directory", "path": "sub", "oid": "x"},
            {"type": "file", "path": "sub/a.txt", "size": 3, "oid": "0123456789012345678901234567890123456789"},
            {"type": "file", "path": "m.bin", "size": 1, "oid": "0123456789012345678901234567890123456789",
             "lfs": {"oid": "0000000000000000000000000000000000000000000000000000000000000000", "size": 9, "pointerSize": 1},
             "xetHash": "ABCDEF0000000000000000000000000000000000000000000000000000000000"}
        ]"#;
        let files = parse_tree_page(page).unwrap();
        assert_eq!(files.len(), 2);
        assert_eq!(files[1].size, 9);
        assert_eq!(files[1].etag(), "0".repeat(64));
        // Kept verbatim, as the reference client keeps it (it accepts either case).
        assert_eq!(
            files[1].xet_hash.as_deref(),
            Some("ABCDEF0000000000000000000000000000000000000000000000000000000000")
        );
        assert_eq!(files[0].xet_hash, None);
        let bad_xet = r#"[{"type": "file", "path": "x", "size": 1, "oid": "0123456789012345678901234567890123456789", "xetHash": "../x"}]"#;
        assert!(
            parse_tree_page(bad_xet)
                .unwrap_err()
                .contains("invalid xetHash")
        );
        let escape = r#"[{"type": "file", "path": "../x", "size": 1, "oid": "0123456789012345678901234567890123456789"}]"#;
        assert!(
            parse_tree_page(escape)
                .unwrap_err()
                .starts_with("refusing a file path")
        );
        assert!(
            parse_tree_page("{")
                .unwrap_err()
                .starts_with("invalid JSON")
        );
    }
}
