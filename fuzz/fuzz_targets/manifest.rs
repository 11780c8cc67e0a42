//! `Manifest::parse` on any UTF-8 text: a valid manifest, or one short, printable, located error.

#![no_main]

use camino::Utf8Path;
use facehugger::fuzzing::validate_ref;
use facehugger::{Manifest, RepoId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    match Manifest::parse(Utf8Path::new("facehugger.yaml"), text) {
        Ok(manifest) => {
            for model in &manifest.models {
                assert!(RepoId::new(model.repo.id.as_str()).is_ok());
                assert_eq!(validate_ref(&model.reference), Ok(()));
            }
        }
        Err(error) => {
            assert_eq!(error.location.path, "facehugger.yaml", "{error}");
            let message = error.to_string();
            assert!(message.starts_with("facehugger.yaml"), "{message}");
            assert!(!message.chars().any(char::is_control), "{message:?}");
            assert!(message.chars().count() <= 1000, "{message}");
        }
    }
});
