//! `trees/<commit>.json`: a commit's whole file list, in the reference client's exact format
//! (hf-protocol.md 3.6), so both clients read each other's and write the same bytes.

use std::collections::BTreeMap;

use serde::Deserialize;

use crate::repo::{RepoFile, is_lower_hex, is_xet_hash, validate_repo_path};

/// The tree cache as Python's `json.dump(indent=1)` writes it: one-space indent, ASCII escapes,
/// files sorted by path, no trailing newline.
pub(super) fn render_tree(files: &[RepoFile]) -> String {
    let mut sorted: Vec<&RepoFile> = files.iter().collect();
    sorted.sort_by(|a, b| a.path.cmp(&b.path));
    let mut out = String::from("{\n \"format_version\": 1,\n \"files\": {");
    for (index, file) in sorted.iter().enumerate() {
        out.push_str(if index == 0 { "\n" } else { ",\n" });
        out.push_str(&format!(
            "  {}: {{\n   \"size\": {},\n   \"blob_id\": {}",
            json_ascii(&file.path),
            file.size,
            json_ascii(&file.blob_id)
        ));
        if let Some(sha256) = &file.lfs_sha256 {
            out.push_str(&format!(
                ",\n   \"lfs_sha256\": {},\n   \"lfs_size\": {}",
                json_ascii(sha256),
                file.size
            ));
        }
        if let Some(xet_hash) = &file.xet_hash {
            out.push_str(&format!(",\n   \"xet_hash\": {}", json_ascii(xet_hash)));
        }
        out.push_str("\n  }");
    }
    out.push_str(if sorted.is_empty() { "}\n}" } else { "\n }\n}" });
    out
}

/// A JSON string literal with every non-ASCII character escaped, as Python's `ensure_ascii`.
fn json_ascii(text: &str) -> String {
    let mut out = String::with_capacity(text.len() + 2);
    out.push('"');
    for c in text.chars() {
        match c {
            '"' => out.push_str("\\\""),
            '\\' => out.push_str("\\\\"),
            '\n' => out.push_str("\\n"),
            '\r' => out.push_str("\\r"),
            '\t' => out.push_str("\\t"),
            '\u{8}' => out.push_str("\\b"),
            '\u{c}' => out.push_str("\\f"),
            ' '..='~' => out.push(c),
            _ => {
                let mut units = [0u16; 2];
                for unit in c.encode_utf16(&mut units) {
                    out.push_str(&format!("\\u{unit:04x}"));
                }
            }
        }
    }
    out.push('"');
    out
}

pub(super) fn parse_tree(text: &str) -> Option<Vec<RepoFile>> {
    /// `trees/<commit>.json`; `deny_unknown_fields` is left out: a later client may add some.
    #[derive(Deserialize)]
    struct TreeFile {
        format_version: u64,
        files: BTreeMap<String, TreeEntry>,
    }
    #[derive(Deserialize)]
    struct TreeEntry {
        size: u64,
        blob_id: String,
        lfs_sha256: Option<String>,
        xet_hash: Option<String>,
    }
    let tree: TreeFile = serde_json::from_str(text).ok()?;
    if tree.format_version != 1 {
        return None;
    }
    let mut files = Vec::with_capacity(tree.files.len());
    for (path, entry) in tree.files {
        let valid = validate_repo_path(&path).is_ok()
            && is_lower_hex(&entry.blob_id, 40)
            && entry
                .lfs_sha256
                .as_deref()
                .is_none_or(|sha| is_lower_hex(sha, 64))
            // As the reference client: a tree with an invalid Xet hash is not trusted.
            && entry.xet_hash.as_deref().is_none_or(is_xet_hash);
        if !valid {
            return None;
        }
        files.push(RepoFile {
            path,
            size: entry.size,
            blob_id: entry.blob_id,
            lfs_sha256: entry.lfs_sha256,
            xet_hash: entry.xet_hash,
        });
    }
    Some(files)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn the_tree_cache_matches_python_json_dump() {
        let files = vec![
            RepoFile {
                path: "z.bin".into(),
                size: 5,
                blob_id: "b".repeat(40),
                lfs_sha256: Some("c".repeat(64)),
                xet_hash: Some("d".repeat(64)),
            },
            RepoFile {
                path: "ü.txt".into(),
                size: 1,
                blob_id: "a".repeat(40),
                lfs_sha256: None,
                xet_hash: None,
            },
        ];
        let text = render_tree(&files);
        let expected = format!(
            "{{\n \"format_version\": 1,\n \"files\": {{\n  \"z.bin\": {{\n   \"size\": 5,\n   \"blob_id\": \"{b}\",\n   \"lfs_sha256\": \"{c}\",\n   \"lfs_size\": 5,\n   \"xet_hash\": \"{d}\"\n  }},\n  \"\\u00fc.txt\": {{\n   \"size\": 1,\n   \"blob_id\": \"{a}\"\n  }}\n }}\n}}",
            a = "a".repeat(40),
            b = "b".repeat(40),
            c = "c".repeat(64),
            d = "d".repeat(64)
        );
        assert_eq!(text, expected);
        let mut back = parse_tree(&text).expect("parses");
        back.sort_by(|x, y| x.path.cmp(&y.path));
        assert_eq!(back, files);
        assert_eq!(
            render_tree(&[]),
            "{\n \"format_version\": 1,\n \"files\": {}\n}"
        );
    }
}
