//! facehugger's integration tests: one binary, run against the in-process test hub.
