//! `Manifest::parse` on any UTF-8 text: a valid manifest, or one short, printable, located error.

#![no_main]

use camino::Utf8Path;
use facehugger::manifest::Manifest;
use facehugger::repo::{validate_ref, validate_repo_id};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Manifest::parse(Utf8Path::new("facehugger.yaml"), text) {
        Ok(manifest) => {
            for model in &manifest.models {
                assert_eq!(validate_repo_id(&model.repo.id), Ok(()));
                assert_eq!(validate_ref(&model.reference), Ok(()));
            }
        }
        Err(error) => {
            assert_eq!(error.exit_code(), 2, "{error}");
            let message = error.to_string();
            assert!(message.starts_with("facehugger.yaml"), "{message}");
            assert!(!message.chars().any(char::is_control), "{message:?}");
            assert!(message.chars().count() <= 1000, "{message}");
        }
    }
});
