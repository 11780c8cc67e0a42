//! Include/exclude patterns with the exact semantics of `hf download` (Python `fnmatchcase`).
