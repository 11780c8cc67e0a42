//! `FileFilter` and `fnmatchcase` on any patterns and paths: no panic, no blow-up, and the rules
//! of `hf download` hold.
//!
//! Input (UTF-8): line 1 the include patterns, tab-separated, or `-` for none given; line 2 the
//! exclude patterns, the same way; every further line a path.

#![no_main]

use facehugger::fuzzing::{FileFilter, fnmatchcase};
use libfuzzer_sys::fuzz_target;

fn patterns(line: &str) -> Option<Vec<String>> {
    (line != "-").then(|| {
        line.split('\t')
            .filter(|p| !p.is_empty())
            .map(str::to_owned)
            .collect()
    })
}

fuzz_target!(|data: &[u8]| {
    let Ok(text) = std::str::from_utf8(data) else {
        return;
    };
    let mut lines = text.split('\n');
    let include = patterns(lines.next().unwrap_or("-"));
    let exclude = patterns(lines.next().unwrap_or("-"));
    let paths: Vec<&str> = lines.collect();

    let filter = FileFilter::new(include.as_deref(), exclude.as_deref());
    let include_only = FileFilter::new(include.as_deref(), None);
    let excluded = FileFilter::new(Some(exclude.as_deref().unwrap_or_default()), None);
    let everything = FileFilter::new(None, None);
    let nothing = FileFilter::new(Some(&[]), exclude.as_deref());
    for path in &paths {
        let selected = filter.matches(path);
        // Exclude wins over include.
        assert_eq!(
            selected,
            include_only.matches(path) && !excluded.matches(path),
            "{path:?}"
        );
        assert!(everything.matches(path));
        assert!(!nothing.matches(path));
        assert!(fnmatchcase(path, "*"));
        // A pattern without wildcards selects the path it spells.
        if !path.contains(['*', '?', '[']) {
            assert!(
                FileFilter::new(Some(&[path.to_string()]), None).matches(path),
                "{path:?}"
            );
            assert!(fnmatchcase(path, path), "{path:?}");
        }
        for pattern in include.iter().chain(exclude.iter()).flatten() {
            let _ = fnmatchcase(path, pattern);
        }
    }
});
