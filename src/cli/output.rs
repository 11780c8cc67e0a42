//! What the commands print on stdout (the dry-run plan, `status`, `verify`, JSON for scripts) and
//! the closing status line of a sync: the rendering of the operations' reports.

use std::io::Write;
use std::time::{Duration, SystemTime, UNIX_EPOCH};

use clap::ValueEnum;
use serde_json::{Value, json};

use super::terminal::Terminal;
use crate::lock::Lock;
use crate::manifest::DEFAULT_REF;
use crate::ops::{
    ExportReport, ExportedModel, GcReport, LinkMode, LockReport, ModelStatus, Problem, ProblemKind,
    VerifiedModel, VerifyReport,
};
use crate::repo::RepoType;
use crate::sync::SyncReport;
use crate::sync::plan::{Action, ModelPlan};
use crate::text::plural;

/// How data is printed on stdout.
#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub(super) enum Format {
    /// For people
    Human,
    /// Stable JSON for scripts (documented in the README)
    Json,
}

/// The `Finished` line: files, time, bytes and rate, and what was already there; with `-v`,
/// each model's snapshot folder.
pub(super) fn finished(reporter: &Terminal, report: &SyncReport) {
    let total =
        report.downloaded_files + report.linked_files + report.shared_files + report.fresh_files;
    let shared = match report.shared_files {
        0 => String::new(),
        n => format!("; {n} from hf's shared Xet store"),
    };
    reporter.status(
        "Finished",
        &format!(
            "{} in {:.2}s ({} downloaded, {}{}; {} already cached{shared})",
            plural(total, "file"),
            report.elapsed.as_secs_f64(),
            report.downloaded_files,
            human_bytes(report.downloaded_bytes),
            rate(report.downloaded_bytes, report.elapsed),
            report.fresh_files + report.linked_files
        ),
    );
    for (name, path) in &report.snapshots {
        reporter.detail("Snapshot", &format!("{name}: {path}"));
    }
}

/// `lock`: JSON for scripts; for people, a word when nothing changed (the `Locked` line says
/// when it did).
pub(super) fn lock(reporter: &Terminal, report: &LockReport, check: bool, format: Format) {
    match format {
        Format::Json => print_json(&json!({
            "lock_path": report.path,
            "changed": report.changed,
            "written": report.written,
            "entries": lock_json(&report.lock),
        })),
        Format::Human if !check && !report.changed => {
            reporter.status("Fresh", &format!("{} is up to date", report.path));
        }
        Format::Human => {}
    }
}

/// The dry-run plan: per model the `hf download` command and each file.
pub(super) fn plan(plans: &[ModelPlan], frozen: bool, format: Format) {
    match format {
        Format::Human => print_plan(plans, frozen),
        Format::Json => print_json(&plan_json(plans, frozen)),
    }
}

/// `status`: a block per model, or JSON.
pub(super) fn status(statuses: &[ModelStatus], format: Format) {
    match format {
        Format::Human => print_status(statuses),
        Format::Json => print_json(&statuses),
    }
}

/// `verify`: what was checked, then each problem; or JSON.
pub(super) fn verify(report: &VerifyReport, format: Format) {
    match format {
        Format::Human => print_verify(report),
        Format::Json => print_json(&json!({
            "ok": report.problems.is_empty(),
            "models": report.models.iter().map(verified_json).collect::<Vec<_>>(),
            "problems": report.problems.iter().map(problem_json).collect::<Vec<_>>(),
        })),
    }
}

fn print_json(value: &impl serde::Serialize) {
    let text = serde_json::to_string_pretty(value).unwrap_or_else(|_| "null".to_owned());
    let _ = writeln!(anstream::stdout(), "{text}");
}

fn lock_json(lock: &Lock) -> Value {
    serde_json::from_str(&lock.render()).unwrap_or(Value::Null)
}

fn verified_json(model: &VerifiedModel) -> Value {
    json!({
        "model": model.model,
        "repo_id": model.repo.id,
        "repo_type": model.repo.repo_type.as_str(),
        "ref": model.reference,
        "revision": model.revision,
        "files": model.files,
        "files_hashed": model.files_hashed,
        "bytes_hashed": model.bytes_hashed,
    })
}

fn problem_json(problem: &Problem) -> Value {
    let (name, expected, actual, blob) = match &problem.kind {
        ProblemKind::Missing { expected, blob } => ("missing", Some(expected), None, Some(blob)),
        ProblemKind::Corrupt {
            expected,
            actual,
            blob,
            ..
        } => ("corrupt", Some(expected), Some(actual), Some(blob)),
        ProblemKind::WrongLink {
            expected,
            actual,
            blob,
            ..
        } => ("wrong-link", Some(expected), Some(actual), Some(blob)),
        ProblemKind::Unknown { reason } => ("unknown", None, Some(reason), None),
    };
    let mut json = json!({
        "model": problem.model,
        "path": problem.path,
        "problem": name,
        "expected": expected,
        "actual": actual,
        "blob": blob,
    });
    if let ProblemKind::Corrupt {
        shared: Some(copy), ..
    } = &problem.kind
    {
        json["shared_blob"] = json!(copy.payload);
        json["used_by"] = json!(copy.used_by);
    }
    json
}

/// The dry-run plan as JSON: per model, its command and files.
fn plan_json(plans: &[ModelPlan], frozen: bool) -> Value {
    let models: Vec<Value> = plans
        .iter()
        .map(|plan| {
            let model = &plan.resolved.model;
            let files: Vec<Value> = plan
                .files
                .iter()
                .map(|planned| {
                    json!({
                        "path": planned.file.path,
                        "size": planned.file.size,
                        "action": if planned.action == Action::Download { "download" } else { "cached" },
                    })
                })
                .collect();
            json!({
                "repo_id": model.repo.id,
                "repo_type": model.repo.repo_type.as_str(),
                "ref": model.reference,
                "revision": plan.resolved.commit,
                "hf_command": hf_download_command(plan, frozen),
                "download_files": plan.files_needing(Action::Download).count(),
                "download_bytes": plan.download_bytes(),
                "cached_files": plan.files.len() - plan.files_needing(Action::Download).count(),
                "files": files,
            })
        })
        .collect();
    Value::Array(models)
}

fn print_status(statuses: &[ModelStatus]) {
    let mut out = anstream::stdout().lock();
    for status in statuses {
        let locked = match (&status.locked_revision, status.lock_current) {
            (Some(revision), Some(true)) => format!("{revision} (current as of the last sync)"),
            (Some(revision), Some(false)) => {
                format!("{revision} (the ref has moved since: run `facehugger lock`)")
            }
            (Some(revision), None) => revision.to_string(),
            (None, _) => "not locked".to_owned(),
        };
        let cache = match (status.files, status.missing) {
            (Some(files), Some(0)) => format!(
                "complete ({}, {})",
                plural(files, "file"),
                human_bytes(status.size_on_disk)
            ),
            (Some(files), Some(missing)) => format!(
                "{missing} of {} missing ({} on disk)",
                plural(files, "file"),
                human_bytes(status.size_on_disk)
            ),
            _ => "not synced".to_owned(),
        };
        let _ = writeln!(out, "{}", status.name);
        let _ = writeln!(out, "  locked:   {locked}");
        let _ = writeln!(out, "  cache:    {cache}");
        if let Some(path) = &status.snapshot_path {
            let _ = writeln!(out, "  snapshot: {path}");
        }
    }
}

fn print_verify(report: &VerifyReport) {
    let mut out = anstream::stdout().lock();
    for model in &report.models {
        let _ = writeln!(
            out,
            "{}: {} of {} hashed ({}) at {}",
            model.model,
            model.files_hashed,
            plural(model.files, "file"),
            human_bytes(model.bytes_hashed),
            model.revision
        );
    }
    for problem in &report.problems {
        let detail = match &problem.kind {
            ProblemKind::Corrupt {
                expected,
                actual,
                shared: None,
                ..
            } => format!("corrupt: expected {expected}, got {actual}"),
            ProblemKind::Corrupt {
                expected,
                actual,
                shared: Some(copy),
                ..
            } => format!(
                "corrupt: expected {expected}, got {actual}: the corrupt file is `{}` in hf's shared Xet store, linked from {}",
                copy.payload,
                if copy.used_by.is_empty() {
                    "no repo".to_owned()
                } else {
                    copy.used_by.join(", ")
                }
            ),
            ProblemKind::WrongLink {
                expected, actual, ..
            } => format!("wrong link: points to {actual}, expected {expected}"),
            ProblemKind::Unknown { reason } => reason.clone(),
            ProblemKind::Missing { .. } => "missing".to_owned(),
        };
        let path = if problem.path.is_empty() {
            String::new()
        } else {
            format!(": {}", problem.path)
        };
        let _ = writeln!(out, "{}{path}: {detail}", problem.model);
    }
    let _ = match (report.models.len(), report.problems.len()) {
        (0, 0) => writeln!(out, "no model to verify"),
        (_, 0) => writeln!(out, "every file verified"),
        (_, problems) => writeln!(out, "{}", plural(problems, "problem")),
    };
}

/// ` at 12.3 MB/s`, when something was downloaded.
fn rate(bytes: u64, elapsed: Duration) -> String {
    let seconds = elapsed.as_secs_f64();
    if bytes == 0 || seconds <= 0.0 {
        return String::new();
    }
    format!(" at {}/s", human_bytes((bytes as f64 / seconds) as u64))
}

fn print_plan(plans: &[ModelPlan], frozen: bool) {
    let mut out = anstream::stdout().lock();
    let mut total_download = (0usize, 0u64);
    let mut total_cached = 0usize;
    for plan in plans {
        let _ = writeln!(out, "{}", hf_download_command(plan, frozen));
        for planned in &plan.files {
            let (label, size) = match planned.action {
                Action::Download => ("download", human_bytes(planned.file.size)),
                Action::Link | Action::Fresh => ("cached", "-".to_owned()),
            };
            let _ = writeln!(out, "  {label:<9}{size:>10}  {}", planned.file.path);
        }
        let download = plan.files_needing(Action::Download).count();
        total_download.0 += download;
        total_download.1 += plan.download_bytes();
        total_cached += plan.files.len() - download;
    }
    let _ = writeln!(
        out,
        "Total: {} to download ({}), {} already cached",
        plural(total_download.0, "file"),
        human_bytes(total_download.1),
        plural(total_cached, "file")
    );
}

/// The `hf download` command line that selects the same files.
fn hf_download_command(plan: &ModelPlan, frozen: bool) -> String {
    let model = &plan.resolved.model;
    let mut words = vec![
        "hf".to_owned(),
        "download".to_owned(),
        shell_quote(model.repo.id.as_str()),
    ];
    if model.repo.repo_type != RepoType::Model {
        words.extend([
            "--repo-type".to_owned(),
            model.repo.repo_type.as_str().to_owned(),
        ]);
    }
    if frozen {
        words.extend(["--revision".to_owned(), plan.resolved.commit.to_string()]);
    } else if model.reference != DEFAULT_REF {
        words.extend(["--revision".to_owned(), shell_quote(&model.reference)]);
    }
    for (flag, patterns) in [("--include", &model.include), ("--exclude", &model.exclude)] {
        for pattern in patterns.iter().flatten() {
            words.extend([flag.to_owned(), shell_quote(pattern)]);
        }
    }
    words.join(" ")
}

/// Quotes a word for a POSIX shell, leaving plain words bare.
fn shell_quote(word: &str) -> String {
    let plain = !word.is_empty()
        && word
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || "@%+=:,./_-".contains(c));
    if plain {
        word.to_owned()
    } else {
        format!("'{}'", word.replace('\'', r#"'"'"'"#))
    }
}

/// Bytes in the units `hf` prints: decimal, one decimal place (`1.5 KB`, `2.3 GB`).
pub(super) fn human_bytes(bytes: u64) -> String {
    const UNITS: [&str; 6] = ["KB", "MB", "GB", "TB", "PB", "EB"];
    if bytes < 1000 {
        return format!("{bytes} B");
    }
    let mut value = bytes as f64 / 1000.0;
    let mut unit = 0;
    while value >= 1000.0 && unit + 1 < UNITS.len() {
        value /= 1000.0;
        unit += 1;
    }
    format!("{value:.1} {}", UNITS[unit])
}

/// `gc`: each revision removed, the total freed; or JSON.
pub(super) fn gc(reporter: &Terminal, report: &GcReport, older_than: Duration, format: Format) {
    if format == Format::Json {
        print_json(&json!({
            "dry_run": report.dry_run,
            "cache": report.cache,
            "older_than_seconds": older_than.as_secs(),
            "projects": report.projects,
            "forgotten": report.forgotten,
            "removed": report.removed.iter().map(|revision| json!({
                "repo_id": revision.repo.id,
                "repo_type": revision.repo.repo_type.as_str(),
                "revision": revision.commit,
                "refs": revision.refs,
                "last_used": unix_seconds(revision.last_used),
                "size": revision.size,
                "snapshot_path": revision.snapshot_path,
            })).collect::<Vec<_>>(),
            "kept_pinned": report.kept_pinned,
            "kept_recent": report.kept_recent,
            "freed_bytes": report.freed,
            "partial_downloads_removed": report.partials,
            "blobs_put_back": report.restored,
            "errors": report.failures.iter().map(ToString::to_string).collect::<Vec<_>>(),
        }));
    } else {
        let mut out = anstream::stdout().lock();
        let verb = if report.dry_run {
            "would remove"
        } else {
            "removed"
        };
        for revision in &report.removed {
            let refs = if revision.refs.is_empty() {
                "(detached)".to_owned()
            } else {
                revision.refs.join(", ")
            };
            let _ = writeln!(
                out,
                "{verb} {} {} {refs}, last used {}, {}",
                revision.repo,
                revision.commit,
                ago(revision.last_used),
                human_bytes(revision.size)
            );
        }
        let partials = match report.partials {
            0 => String::new(),
            n => format!(" and {}", plural(n, "partial download")),
        };
        let removed = if report.dry_run {
            "would be removed"
        } else {
            "removed"
        };
        let _ = writeln!(
            out,
            "Total: {} {removed}{partials}, {} {}; kept {} pinned by {} and {} used within {}",
            plural(report.removed.len(), "revision"),
            human_bytes(report.freed),
            if report.dry_run {
                "would be freed"
            } else {
                "freed"
            },
            plural(report.kept_pinned, "revision"),
            plural(report.projects.len(), "project"),
            report.kept_recent,
            short_duration(older_than),
        );
        let forgot = if report.dry_run {
            "Would forget"
        } else {
            "Forgot"
        };
        for lock in &report.forgotten {
            reporter.status(forgot, &format!("{lock} (the lock file is gone)"));
        }
        if report.restored > 0 {
            reporter.status(
                "Kept",
                &format!(
                    "{} that a client linked while gc removed them",
                    plural(report.restored, "blob")
                ),
            );
        }
    }
    for failure in &report.failures {
        reporter.error(&crate::error::Error::Other(failure.to_string()));
    }
}

/// `export`: a status line per model and the bytes written; or JSON.
pub(super) fn export(reporter: &Terminal, report: &ExportReport, link: LinkMode, format: Format) {
    let model_json = |model: &ExportedModel| {
        json!({
            "model": model.model,
            "revision": model.revision,
            "folder": model.folder,
            "reflinked": model.reflinked,
            "hard_linked": model.hard_linked,
            "copied": model.copied,
            "unchanged": model.unchanged,
            "removed": model.removed,
            "bytes_written": model.bytes_written,
            "bytes_shared": model.bytes_shared,
        })
    };
    if format == Format::Json {
        print_json(&json!({
            "dir": report.dir,
            "link": link.as_str(),
            "bytes_written": report.bytes_written(),
            "models": report.models.iter().map(model_json).collect::<Vec<_>>(),
            "retired": report.retired.iter().map(model_json).collect::<Vec<_>>(),
        }));
        return;
    }
    for model in &report.models {
        let mut made = Vec::new();
        for (count, how) in [
            (model.reflinked, "reflinked"),
            (model.hard_linked, "hard-linked"),
            (model.copied, "copied"),
            (model.unchanged, "unchanged"),
            (model.removed, "removed"),
        ] {
            if count > 0 {
                made.push(format!("{count} {how}"));
            }
        }
        if made.is_empty() {
            made.push("no files".to_owned());
        }
        reporter.status(
            "Exported",
            &format!("{} to {} ({})", model.model, model.folder, made.join(", ")),
        );
    }
    for model in &report.retired {
        reporter.status(
            "Retired",
            &format!(
                "{} ({} removed: the manifest no longer declares it)",
                model.folder,
                plural(model.removed, "file")
            ),
        );
    }
    let shared: u64 = report.models.iter().map(|model| model.bytes_shared).sum();
    reporter.status(
        "Finished",
        &format!(
            "{} written{}",
            human_bytes(report.bytes_written()),
            if shared > 0 {
                format!(", {} shared with the cache", human_bytes(shared))
            } else {
                String::new()
            }
        ),
    );
}

fn unix_seconds(time: SystemTime) -> u64 {
    time.duration_since(UNIX_EPOCH)
        .unwrap_or_default()
        .as_secs()
}

/// How long ago, in words: `a few seconds ago`, `5 minutes ago`, `3 days ago`.
fn ago(time: SystemTime) -> String {
    let seconds = SystemTime::now()
        .duration_since(time)
        .unwrap_or_default()
        .as_secs();
    if seconds < 20 {
        return "a few seconds ago".to_owned();
    }
    let (count, unit) = match seconds {
        s if s < 3600 => (s / 60, "minute"),
        s if s < 2 * 86400 => (s / 3600, "hour"),
        s if s < 60 * 86400 => (s / 86400, "day"),
        s if s < 365 * 86400 => (s / (30 * 86400), "month"),
        s => (s / (365 * 86400), "year"),
    };
    format!("{} ago", plural(count.max(1) as usize, unit))
}

/// `30d`, `12h`, `90s`: a duration as `--older-than` takes it.
fn short_duration(duration: Duration) -> String {
    let seconds = duration.as_secs();
    for (unit, size) in [("w", 7 * 86400), ("d", 86400), ("h", 3600), ("m", 60)] {
        if seconds >= size && seconds.is_multiple_of(size) {
            return format!("{}{unit}", seconds / size);
        }
    }
    format!("{seconds}s")
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn sizes_read_like_hf() {
        assert_eq!(human_bytes(0), "0 B");
        assert_eq!(human_bytes(999), "999 B");
        assert_eq!(human_bytes(1500), "1.5 KB");
        assert_eq!(human_bytes(2_500_000), "2.5 MB");
        assert_eq!(human_bytes(57_704_594_653), "57.7 GB");
    }

    #[test]
    fn words_are_quoted_for_the_shell() {
        assert_eq!(shell_quote("acme/tiny"), "acme/tiny");
        assert_eq!(shell_quote("*.json"), "'*.json'");
        assert_eq!(shell_quote("it's"), r#"'it'"'"'s'"#);
        assert_eq!(shell_quote(""), "''");
    }
}
