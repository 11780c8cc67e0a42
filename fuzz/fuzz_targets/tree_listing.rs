//! `parse_tree_page` on any UTF-8 text, as a hostile Hub could answer: every file it accepts has
//! a path that stays inside the snapshot folder and an etag that is plain hex.

#![no_main]

use facehugger::fuzzing::{is_lower_hex, parse_tree_page, validate_repo_path};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    if let Ok(files) = parse_tree_page(text) {
        for file in &files {
            assert_eq!(validate_repo_path(&file.path), Ok(()));
            assert!(is_lower_hex(&file.blob_id, 40), "{}", file.blob_id);
            if let Some(sha256) = &file.lfs_sha256 {
                assert!(is_lower_hex(sha256, 64), "{sha256}");
            }
            assert!(is_lower_hex(file.etag(), file.etag().len()));
        }
    }
});
