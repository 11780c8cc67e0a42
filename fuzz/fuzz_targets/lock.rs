//! `Lock::parse` on any UTF-8 text: a lock that survives a write and a read unchanged, or one
//! short, printable error naming the file.

#![no_main]

use camino::Utf8Path;
use facehugger::{CommitId, Lock, RepoId};
use libfuzzer_sys::fuzz_target;

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let path = Utf8Path::new("facehugger.lock");
    match Lock::parse(path, text) {
        Ok(lock) => {
            for entry in &lock.entries {
                assert!(RepoId::new(entry.repo.id.as_str()).is_ok());
                assert!(CommitId::parse(entry.revision.as_str()).is_some());
            }
            let written = Lock::from_entries(lock.entries);
            let read = Lock::parse(path, &written.render()).expect("a written lock reads back");
            assert_eq!(read, written);
        }
        Err(error) => {
            assert_eq!(error.location.path, "facehugger.lock", "{error}");
            let message = error.to_string();
            assert!(message.starts_with("facehugger.lock"), "{message}");
            assert!(!message.chars().any(char::is_control), "{message:?}");
            assert!(message.chars().count() <= 1000, "{message}");
        }
    }
});
