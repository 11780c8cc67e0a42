//! `trees/<commit>.json`: a commit's whole file list, in the reference client's exact format
//! (hf-protocol.md 3.6), so both clients read each other's and write the same bytes.

use std::borrow::Borrow;
use std::fmt;
use std::io::{self, Write};
use std::sync::Arc;

use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, Visitor};

use crate::repo::{RepoFile, is_lower_hex, is_xet_hash, validate_repo_path};

/// The tree cache as Python's `json.dump(indent=1)` writes it: one-space indent, ASCII escapes,
/// files sorted by path, no trailing newline. Written piece by piece (a dataset's tree can be
/// tens of megabytes).
pub(super) fn write_tree(files: &[impl Borrow<RepoFile>], out: &mut impl Write) -> io::Result<()> {
    let mut sorted: Vec<&RepoFile> = files.iter().map(Borrow::borrow).collect();
    if !sorted.is_sorted_by(|a, b| a.path <= b.path) {
        sorted.sort_by(|a, b| a.path.cmp(&b.path));
    }
    out.write_all(b"{\n \"format_version\": 1,\n \"files\": {")?;
    for (index, file) in sorted.iter().enumerate() {
        write!(
            out,
            "{}  {}: {{\n   \"size\": {},\n   \"blob_id\": {}",
            if index == 0 { "\n" } else { ",\n" },
            json_ascii(&file.path),
            file.size,
            json_ascii(&file.blob_id)
        )?;
        if let Some(sha256) = &file.lfs_sha256 {
            write!(
                out,
                ",\n   \"lfs_sha256\": {},\n   \"lfs_size\": {}",
                json_ascii(sha256),
                file.size
            )?;
        }
        if let Some(xet_hash) = &file.xet_hash {
            write!(out, ",\n   \"xet_hash\": {}", json_ascii(xet_hash))?;
        }
        out.write_all(b"\n  }")?;
    }
    out.write_all(if sorted.is_empty() {
        b"}\n}"
    } else {
        b"\n }\n}"
    })
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

/// The files of a `trees/<commit>.json`, checked as a listing from the Hub is; `None` if it is
/// not one (another format version, an unsafe path, a bad hash). Read straight into the list, in
/// the file's order (sorted by path): a dataset's tree may list a hundred thousand files.
pub(super) fn parse_tree(text: &str) -> Option<Vec<Arc<RepoFile>>> {
    /// `trees/<commit>.json`; `deny_unknown_fields` is left out: a later client may add some.
    #[derive(Deserialize)]
    struct TreeFile {
        format_version: u64,
        files: Files,
    }
    let tree: TreeFile = serde_json::from_str(text).ok()?;
    (tree.format_version == 1).then_some(tree.files.0)
}

/// The `files` object, as a list; a file that does not check out fails the whole tree.
struct Files(Vec<Arc<RepoFile>>);

#[derive(Deserialize)]
struct TreeEntry {
    size: u64,
    blob_id: String,
    lfs_sha256: Option<String>,
    xet_hash: Option<String>,
}

impl<'de> Deserialize<'de> for Files {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Files, D::Error> {
        struct FilesVisitor;
        impl<'de> Visitor<'de> for FilesVisitor {
            type Value = Files;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a map of file paths to their size and hashes")
            }
            fn visit_map<A: MapAccess<'de>>(self, mut map: A) -> Result<Files, A::Error> {
                let mut files = Vec::with_capacity(map.size_hint().unwrap_or(0));
                while let Some((path, entry)) = map.next_entry::<String, TreeEntry>()? {
                    let valid = validate_repo_path(&path).is_ok()
                        && is_lower_hex(&entry.blob_id, 40)
                        && entry
                            .lfs_sha256
                            .as_deref()
                            .is_none_or(|sha| is_lower_hex(sha, 64))
                        // As the reference client: a tree with an invalid Xet hash is not
                        // trusted.
                        && entry.xet_hash.as_deref().is_none_or(is_xet_hash);
                    if !valid {
                        return Err(de::Error::custom("an entry that does not check out"));
                    }
                    files.push(Arc::new(RepoFile {
                        path,
                        size: entry.size,
                        blob_id: entry.blob_id,
                        lfs_sha256: entry.lfs_sha256,
                        xet_hash: entry.xet_hash,
                    }));
                }
                Ok(Files(files))
            }
        }
        deserializer.deserialize_map(FilesVisitor)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn render(files: &[RepoFile]) -> String {
        let mut out = Vec::new();
        write_tree(files, &mut out).unwrap();
        String::from_utf8(out).unwrap()
    }

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
        let text = render(&files);
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
        let back: Vec<RepoFile> = back.iter().map(|file| RepoFile::clone(file)).collect();
        assert_eq!(back, files);
        assert_eq!(
            render(&[] as &[RepoFile]),
            "{\n \"format_version\": 1,\n \"files\": {}\n}"
        );
    }
}
