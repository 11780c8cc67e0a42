//! `facehugger add` and `facehugger remove`: the manifest (`facehugger.yaml`, or the
//! `[[package.metadata.facehugger.models]]` / workspace tables of a Cargo.toml) is edited in
//! place; every comment, blank line, quoting style, indentation and line ending (LF or CRLF) of
//! the rest of the file is kept byte for byte.
//! - `add` appends an entry after the last one, creating `models:` or the Cargo.toml table (after
//!   the package's own tables) if there is none. A repo already declared at the same ref is
//!   updated, as `uv add` updates a constraint: the `include`/`exclude` given replace the entry's
//!   (a field not given is dropped); with neither given, nothing changes. The same repo at another
//!   ref is a new entry.
//! - `remove` deletes every entry of the repo (all refs), or only those at the ref given; comment
//!   lines directly above an entry go with it; removing the last entry leaves `models: []`. A repo
//!   or ref that is not declared is an error naming the file.
//! - Values are quoted where needed (patterns always: `"*.json"`). The edited text is parsed again
//!   and must declare exactly the intended models; a layout too unusual to edit safely (a flow
//!   list over several lines, an updated entry holding comments or anchors) is refused, naming the
//!   file.

use std::fmt;
use std::ops::Range;

use camino::Utf8Path;
use toml_edit as te;

use crate::cargo::{Table, parse_models};
use crate::error::{Error, MAX_SHOWN_CHARS, shown};
use crate::manifest::{DEFAULT_REF, Manifest, Model};
use crate::repo::{Repo, RepoType, validate_ref, validate_repo_id};

/// What `facehugger add` adds: one repo at one ref, with its file selection.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NewModel {
    /// The repo and its type (`repo_type` is written only when it is not `model`).
    pub repo: Repo,
    /// The ref to write; `None` writes none, which means `main`.
    pub reference: Option<String>,
    /// Include patterns; empty writes no `include` (every file).
    pub include: Vec<String>,
    /// Exclude patterns; empty writes no `exclude`.
    pub exclude: Vec<String>,
}

impl NewModel {
    /// A model of `repo` at its default ref, every file selected.
    pub fn new(repo: Repo) -> NewModel {
        NewModel {
            repo,
            reference: None,
            include: Vec::new(),
            exclude: Vec::new(),
        }
    }

    fn effective_ref(&self) -> &str {
        self.reference.as_deref().unwrap_or(DEFAULT_REF)
    }

    fn patterns(list: &[String]) -> Option<Vec<String>> {
        (!list.is_empty()).then(|| list.to_vec())
    }

    fn check(&self) -> Result<(), Error> {
        check_repo(&self.repo)?;
        if let Some(reference) = &self.reference {
            check_ref(reference)?;
        }
        Ok(())
    }
}

/// The result of an edit: the new text of the file, and what changed.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Edit {
    /// The whole new text (equal to the old one for [`Change::Unchanged`]).
    pub text: String,
    /// What was done.
    pub change: Change,
}

/// What an edit did. `at` is where the entry now starts, as in [`Model::origin`]
/// (`file:line:column`, plus the key path for Cargo.toml).
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Change {
    /// A new entry was appended.
    Added {
        /// Where the new entry starts.
        at: String,
    },
    /// The repo was already declared at this ref: its `include`/`exclude` were replaced.
    Updated {
        /// Where the updated entry starts.
        at: String,
    },
    /// The repo was already declared at this ref with this selection (or none was given).
    Unchanged {
        /// Where the entry starts.
        at: String,
    },
    /// Entries were removed; these are the models they declared (with their old origins).
    Removed {
        /// The removed models, in file order.
        models: Vec<Model>,
    },
}

/// Returns the text of a `facehugger.yaml` with `model` added: appended to `models:` (the key is
/// created if the file has none), or, if the repo is already declared at that ref, that entry's
/// selection updated (see the module documentation). `path` names the file in messages.
pub fn add_to_yaml(path: &Utf8Path, text: &str, model: &NewModel) -> Result<Edit, Error> {
    model.check()?;
    let mut doc = Lines::read(path, text)?;
    let (layout, models) = yaml_layout(path, text, &doc)?;
    let plan = plan_add(path, &models, model)?;
    let (expected, fields, index) = match plan {
        Plan::Unchanged(index) => return Ok(unchanged(text, &models[index])),
        Plan::Append => {
            let fields = Fields::from_new(model);
            let mut expected = models.clone();
            expected.push(fields.model());
            (expected, fields, None)
        }
        Plan::Update(index) => {
            let fields = Fields::updated(&models[index], model);
            let mut expected = models.clone();
            expected[index] = fields.model();
            (expected, fields, Some(index))
        }
    };
    match index {
        None => yaml_append(&mut doc, &layout, &fields),
        Some(index) => yaml_update(path, &mut doc, &layout, index, &fields)?,
    }
    let text = doc.text();
    let new_models = reparse_yaml(path, &text, &expected)?;
    let change = match index {
        None => Change::Added {
            at: new_models[expected.len() - 1].origin.clone(),
        },
        Some(index) => Change::Updated {
            at: new_models[index].origin.clone(),
        },
    };
    Ok(Edit { text, change })
}

/// Returns the text of a `facehugger.yaml` without the entries of `repo`: all of them, or only
/// those at `reference` (`main` matches an entry without `ref`). Removing every entry leaves
/// `models: []`. A repo or ref the file does not declare is an error naming the file.
pub fn remove_from_yaml(
    path: &Utf8Path,
    text: &str,
    repo: &Repo,
    reference: Option<&str>,
) -> Result<Edit, Error> {
    check_repo(repo)?;
    if let Some(reference) = reference {
        check_ref(reference)?;
    }
    let mut doc = Lines::read(path, text)?;
    let (layout, models) = yaml_layout(path, text, &doc)?;
    let removed = plan_remove(path, &models, repo, reference)?;
    yaml_remove(&mut doc, &layout, &removed);
    let expected: Vec<Model> = models
        .iter()
        .enumerate()
        .filter(|(index, _)| !removed.contains(index))
        .map(|(_, model)| model.clone())
        .collect();
    let text = doc.text();
    reparse_yaml(path, &text, &expected)?;
    let models = removed.iter().map(|&index| models[index].clone()).collect();
    Ok(Edit {
        text,
        change: Change::Removed { models },
    })
}

/// Returns the text of a Cargo.toml with `model` added to `table`
/// (`[[package.metadata.facehugger.models]]` or the workspace's): a new array element after the
/// last one (a new array after the table's other sub-tables when there is none), an inline table
/// if the models are an inline array, or, if the repo is already declared at that ref, that
/// entry's selection updated. The `[package]` or `[workspace]` table must exist.
pub fn add_to_cargo_toml(
    path: &Utf8Path,
    text: &str,
    table: Table,
    model: &NewModel,
) -> Result<Edit, Error> {
    model.check()?;
    let models = parse_models(path, text, table)?;
    let mut doc = parse_toml(path, text)?;
    let plan = plan_add(path, &models, model)?;
    let (expected, index) = match plan {
        Plan::Unchanged(index) => return Ok(unchanged(text, &models[index])),
        Plan::Append => {
            let fields = Fields::from_new(model);
            toml_append(path, &mut doc, table, &fields)?;
            let mut expected = models.clone();
            expected.push(fields.model());
            (expected, None)
        }
        Plan::Update(index) => {
            let fields = Fields::updated(&models[index], model);
            toml_update(path, &mut doc, table, index, &fields)?;
            let mut expected = models.clone();
            expected[index] = fields.model();
            (expected, Some(index))
        }
    };
    let text = toml_text(&doc, text);
    let new_models = reparse_toml(path, &text, table, &expected)?;
    let change = match index {
        None => Change::Added {
            at: new_models[expected.len() - 1].origin.clone(),
        },
        Some(index) => Change::Updated {
            at: new_models[index].origin.clone(),
        },
    };
    Ok(Edit { text, change })
}

/// Returns the text of a Cargo.toml without the entries of `repo` in `table`: all of them, or
/// only those at `reference`. A repo or ref the table does not declare is an error naming the
/// file.
pub fn remove_from_cargo_toml(
    path: &Utf8Path,
    text: &str,
    table: Table,
    repo: &Repo,
    reference: Option<&str>,
) -> Result<Edit, Error> {
    check_repo(repo)?;
    if let Some(reference) = reference {
        check_ref(reference)?;
    }
    let models = parse_models(path, text, table)?;
    let mut doc = parse_toml(path, text)?;
    let removed = plan_remove(path, &models, repo, reference)?;
    toml_remove(path, &mut doc, table, &removed)?;
    let expected: Vec<Model> = models
        .iter()
        .enumerate()
        .filter(|(index, _)| !removed.contains(index))
        .map(|(_, model)| model.clone())
        .collect();
    let text = toml_text(&doc, text);
    reparse_toml(path, &text, table, &expected)?;
    let models = removed.iter().map(|&index| models[index].clone()).collect();
    Ok(Edit {
        text,
        change: Change::Removed { models },
    })
}

// ---------------------------------------------------------------------------------------------
// What to do, whatever the format.

fn check_repo(repo: &Repo) -> Result<(), Error> {
    validate_repo_id(&repo.id).map_err(|why| Error::Manifest {
        message: format!("invalid repo: {why}"),
    })
}

fn check_ref(reference: &str) -> Result<(), Error> {
    validate_ref(reference).map_err(|why| Error::Manifest {
        message: format!("invalid ref: {why}"),
    })
}

/// `acme/tiny`, `dataset acme/data`, `acme/tiny@v1`: a repo (and ref) as messages name it.
struct Named<'a>(&'a Repo, Option<&'a str>);

impl fmt::Display for Named<'_> {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        if self.0.repo_type != RepoType::Model {
            write!(f, "{} ", self.0.repo_type)?;
        }
        write!(f, "`{}", self.0.id)?;
        if let Some(reference) = self.1 {
            write!(f, "@{}", shown(reference, MAX_SHOWN_CHARS))?;
        }
        f.write_str("`")
    }
}

enum Plan {
    Append,
    Update(usize),
    Unchanged(usize),
}

fn plan_add(path: &Utf8Path, models: &[Model], new: &NewModel) -> Result<Plan, Error> {
    let same: Vec<usize> = (0..models.len())
        .filter(|&index| {
            models[index].repo == new.repo && models[index].reference == new.effective_ref()
        })
        .collect();
    let include = NewModel::patterns(&new.include);
    let exclude = NewModel::patterns(&new.exclude);
    let nothing_given = include.is_none() && exclude.is_none();
    match same[..] {
        [] => Ok(Plan::Append),
        [first, ..] if nothing_given => Ok(Plan::Unchanged(first)),
        [index] => {
            let model = &models[index];
            if model.include == include && model.exclude == exclude {
                Ok(Plan::Unchanged(index))
            } else {
                Ok(Plan::Update(index))
            }
        }
        _ => Err(Error::Manifest {
            message: format!(
                "{} is declared {} times in {path} (at {}): edit the one to change by hand",
                Named(&new.repo, Some(new.effective_ref())),
                same.len(),
                same.iter()
                    .map(|&index| models[index].origin.as_str())
                    .collect::<Vec<_>>()
                    .join(", ")
            ),
        }),
    }
}

fn plan_remove(
    path: &Utf8Path,
    models: &[Model],
    repo: &Repo,
    reference: Option<&str>,
) -> Result<Vec<usize>, Error> {
    let of_repo: Vec<usize> = (0..models.len())
        .filter(|&index| models[index].repo == *repo)
        .collect();
    let chosen: Vec<usize> = of_repo
        .iter()
        .copied()
        .filter(|&index| reference.is_none_or(|wanted| models[index].reference == wanted))
        .collect();
    if !chosen.is_empty() {
        return Ok(chosen);
    }
    let mut message = format!("{} is not declared in {path}", Named(repo, reference));
    if !of_repo.is_empty() {
        let mut refs: Vec<&str> = of_repo
            .iter()
            .map(|&index| models[index].reference.as_str())
            .collect();
        refs.sort_unstable();
        refs.dedup();
        message += &format!(" (only at {})", refs.join(", "));
    } else if let Some(other) = models
        .iter()
        .find(|model| model.repo.id == repo.id && model.repo.repo_type != repo.repo_type)
    {
        message += &format!(" (but {} is)", Named(&other.repo, None));
    }
    Err(Error::Manifest { message })
}

fn unchanged(text: &str, model: &Model) -> Edit {
    Edit {
        text: text.to_owned(),
        change: Change::Unchanged {
            at: model.origin.clone(),
        },
    }
}

/// The fields of an entry to write.
struct Fields {
    repo: Repo,
    reference: Option<String>,
    include: Option<Vec<String>>,
    exclude: Option<Vec<String>>,
    name: Option<String>,
}

impl Fields {
    fn from_new(model: &NewModel) -> Fields {
        Fields {
            repo: model.repo.clone(),
            reference: model.reference.clone(),
            include: NewModel::patterns(&model.include),
            exclude: NewModel::patterns(&model.exclude),
            name: None,
        }
    }

    /// `old` with the selection of `new`.
    fn updated(old: &Model, new: &NewModel) -> Fields {
        Fields {
            repo: old.repo.clone(),
            reference: (old.reference != DEFAULT_REF).then(|| old.reference.clone()),
            include: NewModel::patterns(&new.include),
            exclude: NewModel::patterns(&new.exclude),
            name: old.name.clone(),
        }
    }

    /// The model these fields declare (its origin is not known yet).
    fn model(&self) -> Model {
        Model {
            repo: self.repo.clone(),
            reference: self
                .reference
                .clone()
                .unwrap_or_else(|| DEFAULT_REF.to_owned()),
            include: self.include.clone(),
            exclude: self.exclude.clone(),
            name: self.name.clone(),
            origin: String::new(),
        }
    }

    /// The scalar fields in the order they are written (the pattern lists come after).
    fn scalars(&self) -> Vec<(&'static str, &str)> {
        let mut scalars = vec![("repo", self.repo.id.as_str())];
        if self.repo.repo_type != RepoType::Model {
            scalars.push(("repo_type", self.repo.repo_type.as_str()));
        }
        if let Some(reference) = &self.reference {
            scalars.push(("ref", reference));
        }
        scalars
    }

    fn lists(&self) -> Vec<(&'static str, &[String])> {
        let mut lists = Vec::new();
        if let Some(include) = &self.include {
            lists.push(("include", include.as_slice()));
        }
        if let Some(exclude) = &self.exclude {
            lists.push(("exclude", exclude.as_slice()));
        }
        lists
    }
}

/// Whether two models declare the same thing (their origins aside).
fn same_model(a: &Model, b: &Model) -> bool {
    a.repo == b.repo
        && a.reference == b.reference
        && a.include == b.include
        && a.exclude == b.exclude
        && a.name == b.name
}

fn unsafe_edit(path: &Utf8Path, line: Option<usize>, why: &str) -> Error {
    let place = match line {
        Some(line) => format!("{path}:{}", line + 1),
        None => path.to_string(),
    };
    Error::Manifest {
        message: format!(
            "{place}: cannot edit this manifest safely: {why}; make the change by hand"
        ),
    }
}

/// Checks that the edited text declares exactly `expected`; returns its models.
fn check_result(
    path: &Utf8Path,
    parsed: Result<Vec<Model>, Error>,
    expected: &[Model],
) -> Result<Vec<Model>, Error> {
    let models = parsed.map_err(|err| {
        unsafe_edit(
            path,
            None,
            &format!("its layout is too unusual (the edited text would not parse: {err})"),
        )
    })?;
    if models.len() != expected.len() || !models.iter().zip(expected).all(|(a, b)| same_model(a, b))
    {
        return Err(unsafe_edit(
            path,
            None,
            "its layout is too unusual (the edited text would not declare the intended models)",
        ));
    }
    Ok(models)
}

// ---------------------------------------------------------------------------------------------
// YAML: a light line-based scan finds `models:` and its entries; the edit is made on the lines.

/// The file as lines, each with its own line ending, so untouched lines are written back as
/// they were.
struct Lines {
    bom: bool,
    lines: Vec<Line>,
    /// The line ending of new lines: the file's first one, else `\n`.
    eol: &'static str,
}

struct Line {
    body: String,
    end: &'static str,
}

impl Lines {
    fn read(path: &Utf8Path, text: &str) -> Result<Lines, Error> {
        let (bom, text) = match text.strip_prefix('\u{feff}') {
            Some(rest) => (true, rest),
            None => (false, text),
        };
        let mut lines = Vec::new();
        for (number, piece) in text.split_inclusive('\n').enumerate() {
            let (body, end) = if let Some(body) = piece.strip_suffix("\r\n") {
                (body, "\r\n")
            } else if let Some(body) = piece.strip_suffix('\n') {
                (body, "\n")
            } else {
                (piece, "")
            };
            if body.contains('\r') {
                return Err(unsafe_edit(
                    path,
                    Some(number),
                    "a carriage return that does not end a line",
                ));
            }
            lines.push(Line {
                body: body.to_owned(),
                end,
            });
        }
        let eol = lines
            .iter()
            .map(|line| line.end)
            .find(|end| !end.is_empty())
            .unwrap_or("\n");
        Ok(Lines { bom, lines, eol })
    }

    fn text(&self) -> String {
        let mut text = String::new();
        if self.bom {
            text.push('\u{feff}');
        }
        for line in &self.lines {
            text.push_str(&line.body);
            text.push_str(line.end);
        }
        text
    }

    fn body(&self, index: usize) -> &str {
        &self.lines[index].body
    }

    fn len(&self) -> usize {
        self.lines.len()
    }

    fn blank(&self, index: usize) -> bool {
        self.body(index).trim_matches([' ', '\t']).is_empty()
    }

    fn comment(&self, index: usize) -> bool {
        self.body(index)
            .trim_start_matches([' ', '\t'])
            .starts_with('#')
    }

    fn content(&self, index: usize) -> bool {
        !self.blank(index) && !self.comment(index)
    }

    fn indent(&self, index: usize) -> usize {
        indent(self.body(index))
    }

    /// Inserts new lines before line `at` (at the end when `at` is the length).
    fn insert(&mut self, at: usize, bodies: Vec<String>) {
        if at == self.lines.len()
            && let Some(last) = self.lines.last_mut()
            && last.end.is_empty()
        {
            last.end = self.eol;
        }
        let eol = self.eol;
        self.lines.splice(
            at..at,
            bodies.into_iter().map(|body| Line { body, end: eol }),
        );
    }

    /// Replaces lines `range` with new ones; the last new line keeps the old last line's ending.
    fn replace(&mut self, range: Range<usize>, bodies: Vec<String>) {
        let last_end = self.lines[range.end - 1].end;
        let count = bodies.len();
        let eol = self.eol;
        self.lines.splice(
            range,
            bodies.into_iter().enumerate().map(|(index, body)| Line {
                body,
                end: if index + 1 == count { last_end } else { eol },
            }),
        );
    }
}

fn indent(body: &str) -> usize {
    body.len() - body.trim_start_matches(' ').len()
}

/// `---` or `...` alone on its line (a comment may follow).
fn is_marker(body: &str, marker: &str) -> bool {
    body.strip_prefix(marker).is_some_and(|rest| {
        let trimmed = rest.trim_start_matches([' ', '\t']);
        rest.is_empty()
            || (trimmed.len() < rest.len() && (trimmed.is_empty() || trimmed.starts_with('#')))
    })
}

/// A block sequence item at `indent`: `-` alone or followed by a space.
fn is_dash(body: &str, indent: usize) -> bool {
    let rest = &body[indent..];
    rest == "-" || rest.starts_with("- ") || rest.starts_with("-\t")
}

/// Where `models:` and its entries are.
enum Layout {
    /// No `models:` key (an empty file, or only comments): it goes at the end.
    NoKey,
    /// `models:` without a value.
    Empty(KeyLine),
    /// `models:` then `- ...` items.
    Block {
        key: KeyLine,
        /// The column of the items' `-`.
        indent: usize,
        /// From the `-` to the first key of the first item (2 for `- repo: ...`).
        offset: usize,
        entries: Vec<Entry>,
    },
    /// `models: [...]` on one line.
    Flow { key: KeyLine, flow: FlowList },
}

struct KeyLine {
    line: usize,
    indent: usize,
    /// Byte offset of the `:` in the line.
    colon: usize,
}

/// One item of a block list, in lines.
struct Entry {
    /// The line of its `-`.
    start: usize,
    /// Its last line with content.
    last: usize,
    /// One past its last line, counting the comments indented under it that follow.
    end: usize,
}

/// A flow list on one line: byte offsets of `[`, `]` and each item.
struct FlowList {
    open: usize,
    close: usize,
    items: Vec<Range<usize>>,
}

/// Scans the file and parses it; the models are those of the file (none when it has no
/// `models:` or only the key).
fn yaml_layout(path: &Utf8Path, text: &str, doc: &Lines) -> Result<(Layout, Vec<Model>), Error> {
    let layout = scan(path, doc);
    let models = match (Manifest::parse(path, text), &layout) {
        (Ok(manifest), _) => manifest.models,
        (Err(_), Ok(Layout::NoKey | Layout::Empty(_))) => Vec::new(),
        (Err(err), _) => return Err(err),
    };
    let layout = layout?;
    let counted = match &layout {
        Layout::NoKey | Layout::Empty(_) => 0,
        Layout::Block { entries, .. } => entries.len(),
        Layout::Flow { flow, .. } => flow.items.len(),
    };
    if counted != models.len() {
        return Err(unsafe_edit(
            path,
            None,
            &format!(
                "its layout is too unusual (found {counted} entries under `models:`, the parser {})",
                models.len()
            ),
        ));
    }
    if let Layout::Block { entries, .. } = &layout {
        for (entry, model) in entries.iter().zip(&models) {
            let line = origin_line(&model.origin);
            if !line.is_some_and(|line| (entry.start..entry.end).contains(&line)) {
                return Err(unsafe_edit(
                    path,
                    Some(entry.start),
                    "this entry is not where the parser places it (an alias?)",
                ));
            }
        }
    }
    Ok((layout, models))
}

/// The 0-based line of a `file:line:column` origin.
fn origin_line(origin: &str) -> Option<usize> {
    let mut parts = origin.rsplitn(3, ':');
    let _column = parts.next()?;
    parts.next()?.parse::<usize>().ok()?.checked_sub(1)
}

fn scan(path: &Utf8Path, doc: &Lines) -> Result<Layout, Error> {
    let refuse = |line: usize, why: &str| unsafe_edit(path, Some(line), why);
    let mut index = 0;
    let mut started = false;
    while index < doc.len() {
        let body = doc.body(index);
        if doc.blank(index) || doc.comment(index) || (!started && body.starts_with('%')) {
            index += 1;
        } else if !started && is_marker(body, "---") {
            started = true;
            index += 1;
        } else {
            break;
        }
    }
    if index == doc.len() {
        return Ok(Layout::NoKey);
    }
    let key = key_line(doc, index).ok_or_else(|| {
        refuse(
            index,
            "expected the `models:` key here, written plainly at the start of the document",
        )
    })?;
    let value = &doc.body(index)[key.colon + 1..];
    let value = value.trim_start_matches([' ', '\t']);
    if value.starts_with('[') {
        let open = doc.body(index).len() - value.len();
        let flow = flow_list(doc.body(index), open).ok_or_else(|| {
            refuse(
                index,
                "`models:` is a flow list (`[...]`) that does not end on its line, or holds comments",
            )
        })?;
        return Ok(Layout::Flow { key, flow });
    }
    if !(value.is_empty() || value.starts_with('#')) {
        return Err(refuse(
            index,
            "the value of `models:` is not a list of `- ` items or a one-line `[...]`",
        ));
    }
    let mut starts = Vec::new();
    let mut item_indent = None;
    let mut limit = doc.len();
    for line in index + 1..doc.len() {
        if !doc.content(line) {
            continue;
        }
        let body = doc.body(line);
        let indent = doc.indent(line);
        if indent == 0 && is_marker(body, "...") {
            limit = line;
            break;
        }
        match item_indent {
            None if indent >= key.indent && is_dash(body, indent) => {
                item_indent = Some(indent);
                starts.push(line);
            }
            Some(item) if indent == item && is_dash(body, indent) => starts.push(line),
            Some(item) if indent > item => {}
            _ => return Err(refuse(line, "expected a list item (`- repo: ...`) here")),
        }
    }
    if (limit + 1..doc.len()).any(|line| doc.content(line)) {
        return Err(refuse(
            limit,
            "content after the end of the document (`...`)",
        ));
    }
    let Some(item_indent) = item_indent else {
        return Ok(Layout::Empty(key));
    };
    let entries = starts
        .iter()
        .enumerate()
        .map(|(number, &start)| {
            let next = starts.get(number + 1).copied().unwrap_or(limit);
            let last = (start..next)
                .rev()
                .find(|&line| doc.content(line))
                .unwrap_or(start);
            Entry {
                start,
                last,
                end: extend_over_comments(doc, last + 1, next, item_indent),
            }
        })
        .collect();
    let offset = key_offset(doc.body(starts[0]), item_indent).unwrap_or(2);
    Ok(Layout::Block {
        key,
        indent: item_indent,
        offset,
        entries,
    })
}

/// The `models:` key line at `line`, if it is one.
fn key_line(doc: &Lines, line: usize) -> Option<KeyLine> {
    let body = doc.body(line);
    let indent = indent(body);
    let rest = body[indent..].strip_prefix("models")?;
    let after = rest.trim_start_matches([' ', '\t']);
    let value = after.strip_prefix(':')?;
    if !(value.is_empty() || value.starts_with([' ', '\t'])) {
        return None;
    }
    Some(KeyLine {
        line,
        indent,
        colon: body.len() - after.len(),
    })
}

/// From `from`, skips blank lines and comments indented deeper than `indent` (they belong to
/// what is above); returns one past the last such comment (or `from`).
fn extend_over_comments(doc: &Lines, from: usize, limit: usize, indent: usize) -> usize {
    let mut end = from;
    for line in from..limit {
        if doc.blank(line) {
            continue;
        }
        if doc.comment(line) && doc.indent(line) > indent {
            end = line + 1;
        } else {
            break;
        }
    }
    end
}

/// In `-   repo: x`, the distance from the `-` to `repo` (4).
fn key_offset(body: &str, indent: usize) -> Option<usize> {
    let after = &body[indent + 1..];
    let spaces = after.len() - after.trim_start_matches(' ').len();
    let rest = &after[spaces..];
    (spaces > 0 && !rest.is_empty() && !rest.starts_with(['#', '\t', '{'])).then_some(1 + spaces)
}

/// Scans a flow list starting at byte `open` (a `[`) that must end on the same line, followed
/// by nothing but a comment.
fn flow_list(body: &str, open: usize) -> Option<FlowList> {
    let bytes = body.as_bytes();
    let mut depth = 0usize;
    let mut items = Vec::new();
    let mut item_start = open + 1;
    let mut token_start = true;
    let mut index = open;
    let push = |items: &mut Vec<Range<usize>>, range: Range<usize>| -> Option<()> {
        let text = &body[range.clone()];
        let trimmed = text.trim_matches([' ', '\t']);
        if trimmed.is_empty() {
            return None;
        }
        let start = range.start + (text.len() - text.trim_start_matches([' ', '\t']).len());
        items.push(start..start + trimmed.len());
        Some(())
    };
    while index < bytes.len() {
        let byte = bytes[index];
        match byte {
            b'[' | b'{' => {
                depth += 1;
                token_start = true;
            }
            b']' | b'}' => {
                depth -= 1;
                token_start = false;
                if depth == 0 {
                    if byte != b']' {
                        return None;
                    }
                    let inner = &body[item_start..index];
                    if !inner.trim_matches([' ', '\t']).is_empty() {
                        push(&mut items, item_start..index)?;
                    }
                    let rest = body[index + 1..].trim_start_matches([' ', '\t']);
                    if !(rest.is_empty()
                        || (rest.starts_with('#') && rest.len() < body.len() - index - 1))
                    {
                        return None;
                    }
                    return Some(FlowList {
                        open,
                        close: index,
                        items,
                    });
                }
            }
            b',' => {
                if depth == 1 {
                    push(&mut items, item_start..index)?;
                    item_start = index + 1;
                }
                token_start = true;
            }
            b' ' | b'\t' => {}
            b'#' if index > 0 && matches!(bytes[index - 1], b' ' | b'\t') => return None,
            b'"' | b'\'' if token_start => {
                index = closing_quote(body, index)?;
                token_start = false;
            }
            b':' => {
                token_start = bytes
                    .get(index + 1)
                    .is_none_or(|next| matches!(next, b' ' | b'\t'));
            }
            _ => token_start = false,
        }
        index += 1;
    }
    None
}

/// The byte offset of the quote closing the one at `open`, on the same line.
fn closing_quote(body: &str, open: usize) -> Option<usize> {
    let bytes = body.as_bytes();
    let quote = bytes[open];
    let mut index = open + 1;
    while index < bytes.len() {
        match bytes[index] {
            b'\\' if quote == b'"' => index += 1,
            b'\'' if quote == b'\'' && bytes.get(index + 1) == Some(&b'\'') => index += 1,
            byte if byte == quote => return Some(index),
            _ => {}
        }
        index += 1;
    }
    None
}

/// Whether an entry's text can be rewritten without losing anything the parse does not keep:
/// no comment, anchor, alias, tag, merge key, block scalar or multi-line quoted string.
fn rewritable(body: &str) -> bool {
    let bytes = body.as_bytes();
    let mut token_start = true;
    let mut index = 0;
    while index < bytes.len() {
        let byte = bytes[index];
        let after_space = index == 0 || matches!(bytes[index - 1], b' ' | b'\t');
        match byte {
            b'#' if after_space => return false,
            b' ' | b'\t' => {}
            b'"' | b'\'' if token_start => match closing_quote(body, index) {
                Some(close) => {
                    index = close;
                    token_start = false;
                }
                None => return false,
            },
            b'&' | b'*' | b'!' | b'|' | b'>' | b'<' | b'?' | b'%' | b'@' | b'`' if token_start => {
                return false;
            }
            b'[' | b'{' | b',' => token_start = true,
            b'-' if token_start => {
                token_start = bytes
                    .get(index + 1)
                    .is_none_or(|next| matches!(next, b' ' | b'\t'));
            }
            b':' => {
                token_start = bytes
                    .get(index + 1)
                    .is_none_or(|next| matches!(next, b' ' | b'\t'));
            }
            _ => token_start = false,
        }
        index += 1;
    }
    true
}

/// A YAML scalar: plain when it cannot be read as anything but this string, else double-quoted.
fn yaml_scalar(value: &str) -> String {
    let plain = value.starts_with(|c: char| c.is_ascii_alphabetic())
        && value
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '_' | '-' | '/'))
        && !["y", "n", "yes", "no", "on", "off", "true", "false", "null"]
            .contains(&value.to_ascii_lowercase().as_str());
    if plain {
        value.to_owned()
    } else {
        yaml_quoted(value)
    }
}

fn yaml_quoted(value: &str) -> String {
    let mut quoted = String::with_capacity(value.len() + 2);
    quoted.push('"');
    for c in value.chars() {
        match c {
            '"' => quoted.push_str("\\\""),
            '\\' => quoted.push_str("\\\\"),
            '\n' => quoted.push_str("\\n"),
            '\t' => quoted.push_str("\\t"),
            c if c.is_control()
                || matches!(
                    c,
                    '\u{2028}' | '\u{2029}' | '\u{feff}' | '\u{200e}' | '\u{200f}'
                ) =>
            {
                quoted.push_str(&format!("\\u{:04X}", u32::from(c)));
            }
            c => quoted.push(c),
        }
    }
    quoted.push('"');
    quoted
}

fn yaml_list(patterns: &[String]) -> String {
    let items: Vec<String> = patterns.iter().map(|p| yaml_quoted(p)).collect();
    format!("[{}]", items.join(", "))
}

/// The entry as block lines: `- repo: x` at `indent`, the other keys `offset` further.
fn yaml_block(fields: &Fields, indent: usize, offset: usize) -> Vec<String> {
    let mut lines = Vec::new();
    let mut pairs: Vec<(&str, String)> = fields
        .scalars()
        .into_iter()
        .map(|(key, value)| (key, yaml_scalar(value)))
        .collect();
    pairs.extend(
        fields
            .lists()
            .into_iter()
            .map(|(key, list)| (key, yaml_list(list))),
    );
    if let Some(name) = &fields.name {
        pairs.push(("name", yaml_scalar(name)));
    }
    for (number, (key, value)) in pairs.into_iter().enumerate() {
        let lead = if number == 0 {
            format!("{}-{}", " ".repeat(indent), " ".repeat(offset - 1))
        } else {
            " ".repeat(indent + offset)
        };
        lines.push(format!("{lead}{key}: {value}"));
    }
    lines
}

/// The entry as a flow mapping: `{repo: x, include: ["*.json"]}`.
fn yaml_flow(fields: &Fields) -> String {
    let mut pairs: Vec<String> = fields
        .scalars()
        .into_iter()
        .map(|(key, value)| format!("{key}: {}", yaml_scalar(value)))
        .collect();
    pairs.extend(
        fields
            .lists()
            .into_iter()
            .map(|(key, list)| format!("{key}: {}", yaml_list(list))),
    );
    if let Some(name) = &fields.name {
        pairs.push(format!("name: {}", yaml_scalar(name)));
    }
    format!("{{{}}}", pairs.join(", "))
}

fn yaml_append(doc: &mut Lines, layout: &Layout, fields: &Fields) {
    match layout {
        Layout::NoKey => {
            let mut lines = vec!["models:".to_owned()];
            lines.extend(yaml_block(fields, 2, 2));
            doc.insert(doc.len(), lines);
        }
        Layout::Empty(key) => {
            let at = extend_over_comments(doc, key.line + 1, doc.len(), key.indent);
            doc.insert(at, yaml_block(fields, key.indent + 2, 2));
        }
        Layout::Block {
            indent,
            offset,
            entries,
            ..
        } => {
            let last = entries.last().expect("a block list has entries");
            // Entries separated by blank lines get a blank line before the new one too.
            let spaced = entries.len() > 1
                && entries
                    .windows(2)
                    .all(|pair| (pair[0].end..pair[1].start).any(|line| doc.blank(line)));
            let mut lines = Vec::new();
            if spaced {
                lines.push(String::new());
            }
            lines.extend(yaml_block(fields, *indent, *offset));
            doc.insert(last.end, lines);
        }
        Layout::Flow { key, flow } => {
            let body = doc.body(key.line).to_owned();
            if flow.items.is_empty() {
                // `models: []` becomes a block list.
                let head = body[..flow.open].trim_end_matches([' ', '\t']);
                let new_body = format!("{head}{}", &body[flow.close + 1..]);
                doc.replace(key.line..key.line + 1, vec![new_body]);
                doc.insert(key.line + 1, yaml_block(fields, key.indent + 2, 2));
            } else {
                let last = flow.items.last().expect("not empty");
                let separator = match &flow.items[..] {
                    [first, second, ..] => &body[first.end..second.start],
                    _ => ", ",
                };
                let new_body = format!(
                    "{}{separator}{}{}",
                    &body[..last.end],
                    yaml_flow(fields),
                    &body[last.end..]
                );
                doc.replace(key.line..key.line + 1, vec![new_body]);
            }
        }
    }
}

fn yaml_update(
    path: &Utf8Path,
    doc: &mut Lines,
    layout: &Layout,
    index: usize,
    fields: &Fields,
) -> Result<(), Error> {
    let refuse = |line: usize| {
        unsafe_edit(
            path,
            Some(line),
            "this entry would be rewritten, and it holds comments, anchors, tags or multi-line values",
        )
    };
    match layout {
        Layout::Block {
            indent, entries, ..
        } => {
            let entry = &entries[index];
            let lines = entry.start..entry.last + 1;
            if !lines.clone().all(|line| rewritable(doc.body(line))) {
                return Err(refuse(entry.start));
            }
            let first = doc.body(entry.start);
            let after_dash = first[indent + 1..].trim_start_matches(' ');
            let new_lines = if after_dash.starts_with('{') {
                let lead = &first[..first.len() - after_dash.len()];
                // Trailing blanks of a one-line entry stay.
                let last = doc.body(entry.last);
                let blanks = &last[last.trim_end_matches([' ', '\t']).len()..];
                vec![format!("{lead}{}{blanks}", yaml_flow(fields))]
            } else {
                let offset = key_offset(first, *indent).unwrap_or(2);
                yaml_block(fields, *indent, offset)
            };
            doc.replace(lines, new_lines);
        }
        Layout::Flow { key, flow } => {
            let body = doc.body(key.line).to_owned();
            let item = flow.items[index].clone();
            if !rewritable(&body[item.clone()]) {
                return Err(refuse(key.line));
            }
            let new_body = format!(
                "{}{}{}",
                &body[..item.start],
                yaml_flow(fields),
                &body[item.end..]
            );
            doc.replace(key.line..key.line + 1, vec![new_body]);
        }
        Layout::NoKey | Layout::Empty(_) => unreachable!("no entry to update"),
    }
    Ok(())
}

fn yaml_remove(doc: &mut Lines, layout: &Layout, removed: &[usize]) {
    match layout {
        Layout::Block {
            key,
            indent,
            entries,
            ..
        } => {
            for &index in removed.iter().rev() {
                let entry = &entries[index];
                // Comment lines directly above at the items' indentation are the entry's.
                let floor = if index == 0 {
                    key.line + 1
                } else {
                    entries[index - 1].end
                };
                let mut start = entry.start;
                while start > floor && doc.comment(start - 1) && doc.indent(start - 1) == *indent {
                    start -= 1;
                }
                doc.lines.drain(start..entry.end);
                // One blank line, not two, where the entry was; what followed the list's last
                // entry now follows the new last one as closely.
                let last_of_list = (index + 1..entries.len()).all(|later| removed.contains(&later));
                if last_of_list {
                    while start > key.line + 1 && doc.blank(start - 1) {
                        doc.lines.remove(start - 1);
                        start -= 1;
                    }
                } else if doc.blank(start - 1) && doc.blank(start) {
                    doc.lines.remove(start - 1);
                }
            }
            if removed.len() == entries.len() {
                let body = &doc.lines[key.line].body;
                let new_body = format!("{} []{}", &body[..=key.colon], &body[key.colon + 1..]);
                doc.lines[key.line].body = new_body;
            }
        }
        Layout::Flow { key, flow } => {
            let body = doc.body(key.line).to_owned();
            let kept: Vec<&Range<usize>> = flow
                .items
                .iter()
                .enumerate()
                .filter(|(index, _)| !removed.contains(index))
                .map(|(_, item)| item)
                .collect();
            let inner = if kept.is_empty() {
                String::new()
            } else {
                let first = &flow.items[0];
                let last = flow.items.last().expect("not empty");
                let separator = match &flow.items[..] {
                    [first, second, ..] => &body[first.end..second.start],
                    _ => ", ",
                };
                let items: Vec<&str> = kept.iter().map(|item| &body[(*item).clone()]).collect();
                format!(
                    "{}{}{}",
                    &body[flow.open + 1..first.start],
                    items.join(separator),
                    &body[last.end..flow.close]
                )
            };
            doc.lines[key.line].body =
                format!("{}{inner}{}", &body[..=flow.open], &body[flow.close..]);
        }
        Layout::NoKey | Layout::Empty(_) => {}
    }
}

fn reparse_yaml(path: &Utf8Path, text: &str, expected: &[Model]) -> Result<Vec<Model>, Error> {
    check_result(
        path,
        Manifest::parse(path, text).map(|manifest| manifest.models),
        expected,
    )
}

// ---------------------------------------------------------------------------------------------
// Cargo.toml, with toml_edit.

fn root_key(table: Table) -> &'static str {
    match table {
        Table::Package => "package",
        Table::Workspace => "workspace",
    }
}

fn parse_toml(path: &Utf8Path, text: &str) -> Result<te::DocumentMut, Error> {
    text.parse::<te::DocumentMut>()
        .map_err(|err| Error::Manifest {
            message: format!("{path}: {}", err.message().trim()),
        })
}

/// The document's text, with the file's CRLF line endings if it had them (toml_edit writes
/// `\n` after the lines it formats).
fn toml_text(doc: &te::DocumentMut, original: &str) -> String {
    let text = doc.to_string();
    if !original.contains("\r\n") {
        return text;
    }
    let mut out = String::with_capacity(text.len() + text.len() / 16);
    let mut previous = None;
    for c in text.chars() {
        if c == '\n' && previous != Some('\r') {
            out.push('\r');
        }
        out.push(c);
        previous = Some(c);
    }
    out
}

fn reparse_toml(
    path: &Utf8Path,
    text: &str,
    table: Table,
    expected: &[Model],
) -> Result<Vec<Model>, Error> {
    check_result(path, parse_models(path, text, table), expected)
}

fn toml_array(patterns: &[String]) -> te::Array {
    patterns.iter().map(String::as_str).collect()
}

fn toml_table(fields: &Fields) -> te::Table {
    let mut table = te::Table::new();
    for (key, value) in fields.scalars() {
        table.insert(key, te::value(value));
    }
    for (key, list) in fields.lists() {
        table.insert(key, te::value(toml_array(list)));
    }
    if let Some(name) = &fields.name {
        table.insert("name", te::value(name.as_str()));
    }
    table
}

fn toml_inline_table(fields: &Fields) -> te::InlineTable {
    let mut table = te::InlineTable::new();
    for (key, value) in fields.scalars() {
        table.insert(key, value.into());
    }
    for (key, list) in fields.lists() {
        table.insert(key, toml_array(list).into());
    }
    if let Some(name) = &fields.name {
        table.insert("name", name.as_str().into());
    }
    table
}

/// A step of the path to a table: a key, or an element of an array of tables.
#[derive(Debug, Clone, PartialEq, Eq)]
enum Step {
    Key(String),
    Index(usize),
}

fn models_path(table: Table) -> Vec<Step> {
    [root_key(table), "metadata", "facehugger", "models"]
        .into_iter()
        .map(|key| Step::Key(key.to_owned()))
        .collect()
}

/// The `models` item of `table`, if there is one.
fn models_item(doc: &mut te::DocumentMut, table: Table) -> Option<&mut te::Item> {
    doc.get_mut(root_key(table))?
        .as_table_like_mut()?
        .get_mut("metadata")?
        .as_table_like_mut()?
        .get_mut("facehugger")?
        .as_table_like_mut()?
        .get_mut("models")
}

/// The tables in the order toml_edit prints them (its `Display` for `DocumentMut`: depth-first,
/// then stably sorted by position, a table without one taking the last seen), keeping those whose
/// header is printed.
fn printed_tables(doc: &te::DocumentMut) -> Vec<Vec<Step>> {
    fn walk(
        table: &te::Table,
        path: &mut Vec<Step>,
        element: bool,
        last: &mut isize,
        out: &mut Vec<(isize, Vec<Step>, bool)>,
    ) {
        if !table.is_dotted() {
            if let Some(position) = table.position() {
                *last = position;
            }
            let printed = !path.is_empty()
                && (element || !(table.is_implicit() && table.get_values().is_empty()));
            out.push((*last, path.clone(), printed));
        }
        for (key, item) in table.iter() {
            match item {
                te::Item::Table(inner) => {
                    path.push(Step::Key(key.to_owned()));
                    walk(inner, path, false, last, out);
                    path.pop();
                }
                te::Item::ArrayOfTables(array) => {
                    for (index, inner) in array.iter().enumerate() {
                        path.push(Step::Key(key.to_owned()));
                        path.push(Step::Index(index));
                        walk(inner, path, true, last, out);
                        path.pop();
                        path.pop();
                    }
                }
                _ => {}
            }
        }
    }
    let mut out = Vec::new();
    walk(doc.as_table(), &mut Vec::new(), false, &mut 0, &mut out);
    out.sort_by_key(|(position, path, _)| (!path.is_empty(), *position));
    out.into_iter()
        .filter(|(_, _, printed)| *printed)
        .map(|(_, path, _)| path)
        .collect()
}

fn table_at<'d>(doc: &'d mut te::DocumentMut, path: &[Step]) -> Option<&'d mut te::Table> {
    let mut table = doc.as_table_mut();
    let mut steps = path.iter().peekable();
    while let Some(step) = steps.next() {
        let Step::Key(key) = step else {
            return None;
        };
        let item = table.get_mut(key)?;
        table = match steps.peek() {
            Some(Step::Index(index)) => {
                let index = *index;
                steps.next();
                item.as_array_of_tables_mut()?.get_mut(index)?
            }
            _ => item.as_table_mut()?,
        };
    }
    Some(table)
}

/// The decor before a table's header (or the document's trailing text for `None`).
fn prefix_at(doc: &mut te::DocumentMut, path: Option<&[Step]>) -> String {
    match path {
        Some(path) => table_at(doc, path)
            .and_then(|table| table.decor().prefix().and_then(|raw| raw.as_str()))
            .unwrap_or("\n")
            .to_owned(),
        None => doc.trailing().as_str().unwrap_or("").to_owned(),
    }
}

fn set_prefix_at(doc: &mut te::DocumentMut, path: Option<&[Step]>, prefix: String) {
    match path {
        Some(path) => {
            if let Some(table) = table_at(doc, path) {
                table.decor_mut().set_prefix(prefix);
            }
        }
        None => doc.set_trailing(prefix),
    }
}

/// The table printed after the one at `path`, if any.
fn next_printed(doc: &te::DocumentMut, path: &[Step]) -> Option<Vec<Step>> {
    let order = printed_tables(doc);
    let at = order.iter().position(|other| other == path)?;
    order.get(at + 1).cloned()
}

/// Splits the text before a table header into the comments that end the body above it (comment
/// lines right after it, followed by a blank line) and the rest.
fn split_trailing(prefix: &str) -> (&str, &str) {
    let mut end = 0;
    for line in prefix.split_inclusive('\n') {
        if line.trim_start_matches([' ', '\t']).starts_with('#') && line.ends_with('\n') {
            end += line.len();
        } else {
            let blank =
                line.trim_matches([' ', '\t', '\r', '\n']).is_empty() && line.ends_with('\n');
            return if blank {
                prefix.split_at(end)
            } else {
                ("", prefix)
            };
        }
    }
    ("", prefix)
}

/// Splits the text before a table header into what separates it from the body above (up to its
/// last blank line) and the comment lines attached to it.
fn split_attached(prefix: &str) -> (&str, &str) {
    let mut end = 0;
    let mut offset = 0;
    for line in prefix.split_inclusive('\n') {
        offset += line.len();
        if line.ends_with('\n') && line.trim_matches([' ', '\t', '\r', '\n']).is_empty() {
            end = offset;
        }
    }
    prefix.split_at(end)
}

fn is_blank_line(line: &str) -> bool {
    line.ends_with('\n') && line.trim_matches([' ', '\t', '\r', '\n']).is_empty()
}

fn toml_append(
    path: &Utf8Path,
    doc: &mut te::DocumentMut,
    table: Table,
    fields: &Fields,
) -> Result<(), Error> {
    let root = root_key(table);
    let refuse = |why: String| Error::Manifest {
        message: format!("{path}: cannot add the model: {why}"),
    };
    let models = models_path(table);
    // The blank lines before the new header: as before the last one, else one.
    let mut spacing = "\n".to_owned();
    let new_path = match models_item(doc, table) {
        Some(te::Item::ArrayOfTables(array)) => {
            if let Some(last) = array.iter().last() {
                let prefix = last.decor().prefix().and_then(|raw| raw.as_str());
                spacing = blank_run(prefix.unwrap_or("\n"));
            }
            array.push(toml_table(fields));
            let mut new_path = models.clone();
            new_path.push(Step::Index(array.len() - 1));
            new_path
        }
        Some(te::Item::Value(te::Value::Array(array))) => {
            push_inline(array, fields);
            return Ok(());
        }
        Some(_) => {
            return Err(refuse(format!(
                "`{root}.metadata.facehugger.models` is not an array"
            )));
        }
        None => {
            let Some(root_item) = doc.get_mut(root) else {
                return Err(refuse(format!("it has no `[{root}]` table")));
            };
            let mut parent = root_item
                .as_table_mut()
                .ok_or_else(|| refuse(format!("`{root}` is not a `[{root}]` table")))?;
            let mut key_path = root.to_owned();
            for key in ["metadata", "facehugger"] {
                key_path = format!("{key_path}.{key}");
                let item = parent.entry(key).or_insert_with(|| {
                    let mut implicit = te::Table::new();
                    implicit.set_implicit(true);
                    te::Item::Table(implicit)
                });
                parent = item.as_table_mut().ok_or_else(|| {
                    refuse(format!(
                        "`{key_path}` is not a table with a `[{key_path}]` header or dotted keys"
                    ))
                })?;
            }
            let mut array = te::ArrayOfTables::new();
            array.push(toml_table(fields));
            parent.insert("models", te::Item::ArrayOfTables(array));
            let mut new_path = models.clone();
            new_path.push(Step::Index(0));
            new_path
        }
    };
    // Comments that ended the body above the new table stay there, above its header.
    let next = next_printed(doc, &new_path);
    let next_prefix = prefix_at(doc, next.as_deref());
    let (trailing, rest) = split_trailing(&next_prefix);
    if trailing.is_empty() {
        set_prefix_at(doc, Some(&new_path), spacing);
    } else {
        if spacing.is_empty() {
            spacing.push('\n');
        }
        let rest = rest.to_owned();
        set_prefix_at(doc, Some(&new_path), format!("{trailing}{spacing}"));
        set_prefix_at(doc, next.as_deref(), rest);
    }
    Ok(())
}

/// The blank lines that end what separates a header from the body above it.
fn blank_run(prefix: &str) -> String {
    let (separator, _attached) = split_attached(prefix);
    let lines: Vec<&str> = separator.split_inclusive('\n').collect();
    let blank = lines
        .iter()
        .rev()
        .take_while(|line| is_blank_line(line))
        .count();
    lines[lines.len() - blank..].concat()
}

/// Pushes an inline table in the style of the array's other elements.
fn push_inline(array: &mut te::Array, fields: &Fields) {
    let mut value = te::Value::InlineTable(toml_inline_table(fields));
    let count = array.len();
    let decor_of = |value: &te::Value, prefix: bool| {
        let raw = if prefix {
            value.decor().prefix()
        } else {
            value.decor().suffix()
        };
        raw.and_then(|raw| raw.as_str()).unwrap_or("").to_owned()
    };
    let prefix = match count {
        0 => String::new(),
        1 => {
            let first = decor_of(array.get(0).expect("one element"), true);
            if first.contains('\n') {
                first
            } else {
                " ".to_owned()
            }
        }
        _ => decor_of(array.get(count - 1).expect("elements"), true),
    };
    let suffix = match count {
        0 => String::new(),
        _ => {
            let last = array.get_mut(count - 1).expect("elements");
            let suffix = decor_of(last, false);
            last.decor_mut().set_suffix("");
            suffix
        }
    };
    value.decor_mut().set_prefix(prefix);
    value.decor_mut().set_suffix(suffix);
    array.push_formatted(value);
}

fn toml_entry(
    doc: &mut te::DocumentMut,
    table: Table,
    index: usize,
) -> Option<&mut dyn te::TableLike> {
    match models_item(doc, table)? {
        te::Item::ArrayOfTables(array) => Some(array.get_mut(index)?),
        te::Item::Value(te::Value::Array(array)) => match array.get_mut(index)? {
            te::Value::InlineTable(entry) => Some(entry),
            _ => None,
        },
        _ => None,
    }
}

fn toml_update(
    path: &Utf8Path,
    doc: &mut te::DocumentMut,
    table: Table,
    index: usize,
    fields: &Fields,
) -> Result<(), Error> {
    let entry = toml_entry(doc, table, index)
        .ok_or_else(|| unsafe_edit(path, None, "the entry to update was not found"))?;
    for (key, list) in [("include", &fields.include), ("exclude", &fields.exclude)] {
        match list {
            Some(list) => {
                let mut value = te::Value::Array(toml_array(list));
                match entry.get_mut(key) {
                    // Replaced in place: the key, and the comments around it, stay.
                    Some(te::Item::Value(old)) => {
                        *value.decor_mut() = old.decor().clone();
                        *old = value;
                    }
                    _ => {
                        entry.insert(key, te::Item::Value(value));
                    }
                }
            }
            None => {
                entry.remove(key);
            }
        }
    }
    Ok(())
}

fn toml_remove(
    path: &Utf8Path,
    doc: &mut te::DocumentMut,
    table: Table,
    removed: &[usize],
) -> Result<(), Error> {
    let models = models_path(table);
    let is_array_of_tables = matches!(models_item(doc, table), Some(te::Item::ArrayOfTables(_)));
    if is_array_of_tables {
        for &index in removed.iter().rev() {
            let mut element = models.clone();
            element.push(Step::Index(index));
            let next = next_printed(doc, &element);
            let own = prefix_at(doc, Some(&element));
            let next_prefix = prefix_at(doc, next.as_deref());
            let (separator, _attached) = split_attached(&own);
            let (_trailing, rest) = split_trailing(&next_prefix);
            let new_prefix = match next {
                // The last table: what followed it stays at the end of the file.
                None => rest.to_owned(),
                Some(_) => {
                    let rest = match rest.split_inclusive('\n').next() {
                        Some(first)
                            if is_blank_line(first)
                                && separator
                                    .split_inclusive('\n')
                                    .next_back()
                                    .is_some_and(is_blank_line) =>
                        {
                            &rest[first.len()..]
                        }
                        _ => rest,
                    };
                    format!("{separator}{rest}")
                }
            };
            set_prefix_at(doc, next.as_deref(), new_prefix);
            if let Some(te::Item::ArrayOfTables(array)) = models_item(doc, table) {
                array.remove(index);
            }
        }
        let empty = matches!(models_item(doc, table), Some(te::Item::ArrayOfTables(array)) if array.is_empty());
        if empty && let Some(parent) = table_at(doc, &models[..models.len() - 1]) {
            parent.remove("models");
        }
        return Ok(());
    }
    let Some(te::Item::Value(te::Value::Array(array))) = models_item(doc, table) else {
        return Err(unsafe_edit(
            path,
            None,
            "the models to remove were not found",
        ));
    };
    // A comment after an element's comma is stored before the next element (or in the
    // array's trailing text): it stays with the element it follows.
    let head = |text: &str| text.find('\n').map_or("", |at| &text[..at]).to_owned();
    let tail = |text: &str| text.find('\n').map_or(text, |at| &text[at..]).to_owned();
    for &index in removed.iter().rev() {
        let old = array.remove(index);
        let own = old
            .decor()
            .prefix()
            .and_then(|raw| raw.as_str())
            .unwrap_or("")
            .to_owned();
        match array.get_mut(index) {
            Some(next) => {
                let after = next
                    .decor()
                    .prefix()
                    .and_then(|raw| raw.as_str())
                    .unwrap_or("")
                    .to_owned();
                let prefix = if index == 0 && !after.contains('\n') {
                    own
                } else {
                    head(&own) + &tail(&after)
                };
                next.decor_mut().set_prefix(prefix);
            }
            None => {
                let after = array.trailing().as_str().unwrap_or("").to_owned();
                array.set_trailing(head(&own) + &tail(&after));
            }
        }
    }
    if array.is_empty() {
        array.set_trailing("");
        array.set_trailing_comma(false);
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    fn repo(id: &str) -> Repo {
        Repo {
            repo_type: RepoType::Model,
            id: id.to_owned(),
        }
    }

    fn new(id: &str) -> NewModel {
        NewModel::new(repo(id))
    }

    fn with(id: &str, reference: Option<&str>, include: &[&str], exclude: &[&str]) -> NewModel {
        NewModel {
            repo: repo(id),
            reference: reference.map(str::to_owned),
            include: include.iter().map(|p| (*p).to_owned()).collect(),
            exclude: exclude.iter().map(|p| (*p).to_owned()).collect(),
        }
    }

    const YAML: &str = "facehugger.yaml";
    const TOML: &str = "Cargo.toml";

    fn add(text: &str, model: &NewModel) -> String {
        add_to_yaml(Utf8Path::new(YAML), text, model)
            .unwrap_or_else(|err| panic!("{err}"))
            .text
    }

    fn add_err(text: &str, model: &NewModel) -> String {
        add_to_yaml(Utf8Path::new(YAML), text, model)
            .unwrap_err()
            .to_string()
    }

    fn remove(text: &str, id: &str, reference: Option<&str>) -> String {
        remove_from_yaml(Utf8Path::new(YAML), text, &repo(id), reference)
            .unwrap_or_else(|err| panic!("{err}"))
            .text
    }

    fn remove_err(text: &str, id: &str, reference: Option<&str>) -> String {
        remove_from_yaml(Utf8Path::new(YAML), text, &repo(id), reference)
            .unwrap_err()
            .to_string()
    }

    fn add_toml(text: &str, model: &NewModel) -> String {
        add_to_cargo_toml(Utf8Path::new(TOML), text, Table::Package, model)
            .unwrap_or_else(|err| panic!("{err}"))
            .text
    }

    fn remove_toml(text: &str, id: &str, reference: Option<&str>) -> String {
        remove_from_cargo_toml(
            Utf8Path::new(TOML),
            text,
            Table::Package,
            &repo(id),
            reference,
        )
        .unwrap_or_else(|err| panic!("{err}"))
        .text
    }

    // --- YAML: add

    #[test]
    fn add_appends_after_the_last_entry_keeping_everything_else() {
        let text = "# models for the app\nmodels:\n  - repo: Qwen/Qwen3-0.6B   # the LLM\n    include: ['*.json', \"*.safetensors\"]\n\n# data\n";
        assert_eq!(
            add(text, &with("acme/tiny", None, &["*.json"], &["old/"])),
            "# models for the app\nmodels:\n  - repo: Qwen/Qwen3-0.6B   # the LLM\n    include: ['*.json', \"*.safetensors\"]\n  - repo: acme/tiny\n    include: [\"*.json\"]\n    exclude: [\"old/\"]\n\n# data\n"
        );
    }

    #[test]
    fn add_creates_the_key_in_an_empty_or_comment_only_file() {
        assert_eq!(add("", &new("acme/tiny")), "models:\n  - repo: acme/tiny\n");
        assert_eq!(
            add("# my models\n", &new("acme/tiny")),
            "# my models\nmodels:\n  - repo: acme/tiny\n"
        );
        assert_eq!(
            add("---\n# no newline at the end", &new("acme/tiny")),
            "---\n# no newline at the end\nmodels:\n  - repo: acme/tiny\n"
        );
    }

    #[test]
    fn add_fills_a_key_without_a_value() {
        assert_eq!(
            add("models:   # none yet\n", &new("acme/tiny")),
            "models:   # none yet\n  - repo: acme/tiny\n"
        );
        assert_eq!(
            add(
                "models:\n  # - repo: example/x\n\n# end\n",
                &new("acme/tiny")
            ),
            "models:\n  # - repo: example/x\n  - repo: acme/tiny\n\n# end\n"
        );
    }

    #[test]
    fn add_turns_an_empty_flow_list_into_a_block_list() {
        assert_eq!(
            add("models: []  # none yet\n", &new("acme/tiny")),
            "models:  # none yet\n  - repo: acme/tiny\n"
        );
    }

    #[test]
    fn add_to_a_one_line_flow_list_stays_in_flow_style() {
        assert_eq!(
            add(
                "models: [{repo: a/b}]\n",
                &with("acme/tiny", Some("v1"), &["*.json"], &[])
            ),
            "models: [{repo: a/b}, {repo: acme/tiny, ref: v1, include: [\"*.json\"]}]\n"
        );
        assert_eq!(
            add(
                "models: [ {repo: a/b} ,  {repo: c/d} ] # two\n",
                &new("e/f")
            ),
            "models: [ {repo: a/b} ,  {repo: c/d} ,  {repo: e/f} ] # two\n"
        );
    }

    #[test]
    fn add_follows_the_list_indentation_and_spacing() {
        assert_eq!(
            add(
                "models:\n- repo: a/b\n  ref: v1\n",
                &with("c/d", None, &["x"], &[])
            ),
            "models:\n- repo: a/b\n  ref: v1\n- repo: c/d\n  include: [\"x\"]\n"
        );
        assert_eq!(
            add(
                "models:\n    -   repo: a/b\n        ref: v1\n",
                &with("c/d", Some("v2"), &[], &[])
            ),
            "models:\n    -   repo: a/b\n        ref: v1\n    -   repo: c/d\n        ref: v2\n"
        );
        assert_eq!(
            add("models:\n  - repo: a/b\n\n  - repo: c/d\n", &new("e/f")),
            "models:\n  - repo: a/b\n\n  - repo: c/d\n\n  - repo: e/f\n"
        );
    }

    #[test]
    fn add_after_flow_entries_and_comments() {
        let text = "models:\n  - {repo: a/b}\n  # about c/d\n  - {repo: c/d, include: x}\n    # indented under c/d\n# the end\n";
        assert_eq!(
            add(text, &new("e/f")),
            "models:\n  - {repo: a/b}\n  # about c/d\n  - {repo: c/d, include: x}\n    # indented under c/d\n  - repo: e/f\n# the end\n"
        );
    }

    #[test]
    fn add_keeps_crlf_line_endings() {
        assert_eq!(
            add(
                "models:\r\n  - repo: a/b\r\n",
                &with("c/d", None, &["*.json"], &[])
            ),
            "models:\r\n  - repo: a/b\r\n  - repo: c/d\r\n    include: [\"*.json\"]\r\n"
        );
        assert_eq!(
            add("# crlf\r\n", &new("c/d")),
            "# crlf\r\nmodels:\r\n  - repo: c/d\r\n"
        );
    }

    #[test]
    fn add_keeps_a_byte_order_mark_and_a_missing_final_newline() {
        assert_eq!(
            add("\u{feff}models:\n  - repo: a/b", &new("c/d")),
            "\u{feff}models:\n  - repo: a/b\n  - repo: c/d\n"
        );
    }

    #[test]
    fn values_are_quoted_when_yaml_needs_it() {
        let model = NewModel {
            repo: Repo {
                repo_type: RepoType::Dataset,
                id: "gpt2".to_owned(),
            },
            reference: Some("0123456789abcdef0123456789abcdef01234567".to_owned()),
            include: vec!["*.json".into(), "a \"b\"\\c #d".into(), "tab\there".into()],
            exclude: vec!["[!x]*".into()],
        };
        let text = add("models: []\n", &model);
        assert_eq!(
            text,
            "models:\n  - repo: gpt2\n    repo_type: dataset\n    ref: \"0123456789abcdef0123456789abcdef01234567\"\n    include: [\"*.json\", \"a \\\"b\\\"\\\\c #d\", \"tab\\there\"]\n    exclude: [\"[!x]*\"]\n"
        );
        let parsed = Manifest::parse(Utf8Path::new(YAML), &text).unwrap();
        assert_eq!(
            parsed.models[0].include.as_ref().unwrap()[1],
            "a \"b\"\\c #d"
        );
        for (value, expected) in [
            ("main", "main"),
            ("v1.0", "v1.0"),
            ("refs/pr/1", "refs/pr/1"),
            ("on", "\"on\""),
            ("No", "\"No\""),
            ("null", "\"null\""),
            ("1e3", "\"1e3\""),
            ("2024-01-01", "\"2024-01-01\""),
            ("_x", "\"_x\""),
        ] {
            assert_eq!(yaml_scalar(value), expected);
        }
        assert_eq!(yaml_quoted("\u{1b}\u{2028}é"), "\"\\u001B\\u2028é\"");
    }

    #[test]
    fn adding_the_same_repo_and_ref_updates_its_selection() {
        let text = "models:\n  - repo: a/b\n    include: \"*.bin\"\n    exclude: old/\n    name: AB\n  - repo: c/d\n";
        let edit = add_to_yaml(
            Utf8Path::new(YAML),
            text,
            &with("a/b", Some("main"), &["*.json"], &[]),
        )
        .unwrap();
        assert_eq!(
            edit.text,
            "models:\n  - repo: a/b\n    include: [\"*.json\"]\n    name: AB\n  - repo: c/d\n"
        );
        assert_eq!(
            edit.change,
            Change::Updated {
                at: "facehugger.yaml:2:5".to_owned()
            }
        );
        // In flow style, in a block or a flow list.
        assert_eq!(
            add(
                "models:\n  -  {repo: a/b, ref: v1}  \n",
                &with("a/b", Some("v1"), &[], &["x"])
            ),
            "models:\n  -  {repo: a/b, ref: v1, exclude: [\"x\"]}  \n"
        );
        assert_eq!(
            add(
                "models: [{repo: c/d}, {repo: a/b}]\n",
                &with("a/b", None, &["y"], &[])
            ),
            "models: [{repo: c/d}, {repo: a/b, include: [\"y\"]}]\n"
        );
    }

    #[test]
    fn adding_a_declared_repo_without_patterns_or_with_the_same_changes_nothing() {
        let text = "models:\n  - repo: a/b  # keep me\n    include: [\"*.json\"]\n";
        for model in [new("a/b"), with("a/b", None, &["*.json"], &[])] {
            let edit = add_to_yaml(Utf8Path::new(YAML), text, &model).unwrap();
            assert_eq!(edit.text, text);
            assert_eq!(
                edit.change,
                Change::Unchanged {
                    at: "facehugger.yaml:2:5".to_owned()
                }
            );
        }
    }

    #[test]
    fn adding_another_ref_or_type_of_a_declared_repo_appends() {
        let text = "models:\n  - repo: a/b\n";
        assert_eq!(
            add(text, &with("a/b", Some("v1"), &[], &[])),
            "models:\n  - repo: a/b\n  - repo: a/b\n    ref: v1\n"
        );
        let dataset = NewModel::new(Repo {
            repo_type: RepoType::Dataset,
            id: "a/b".to_owned(),
        });
        assert_eq!(
            add(text, &dataset),
            "models:\n  - repo: a/b\n  - repo: a/b\n    repo_type: dataset\n"
        );
    }

    #[test]
    fn an_update_that_would_lose_comments_or_anchors_is_refused() {
        let text = "models:\n  - repo: a/b\n    # pinned for the demo\n    include: x\n";
        assert_eq!(
            add_err(text, &with("a/b", None, &["y"], &[])),
            "facehugger.yaml:2: cannot edit this manifest safely: this entry would be rewritten, and it holds comments, anchors, tags or multi-line values; make the change by hand"
        );
        let text = "models:\n  - &base {repo: a/b}\n";
        assert!(
            add_err(text, &with("a/b", None, &["y"], &[]))
                .starts_with("facehugger.yaml:2: cannot edit this manifest safely")
        );
        let text = "models:\n  - repo: a/b\n  - repo: a/b\n    ref: main\n";
        let edit = add_to_yaml(Utf8Path::new(YAML), text, &new("a/b")).unwrap();
        assert_eq!(edit.text, text);
        assert!(matches!(edit.change, Change::Unchanged { .. }));
        assert_eq!(
            add_err(text, &with("a/b", None, &["y"], &[])),
            "`a/b@main` is declared 2 times in facehugger.yaml (at facehugger.yaml:2:5, facehugger.yaml:3:5): edit the one to change by hand"
        );
    }

    #[test]
    fn add_refuses_unusual_layouts_and_reports_broken_manifests() {
        assert_eq!(
            add_err("models: [\n  {repo: a/b},\n]\n", &new("c/d")),
            "facehugger.yaml:1: cannot edit this manifest safely: `models:` is a flow list (`[...]`) that does not end on its line, or holds comments; make the change by hand"
        );
        assert!(
            add_err("{models: [{repo: a/b}]}\n", &new("c/d")).starts_with(
                "facehugger.yaml:1: cannot edit this manifest safely: expected the `models:` key"
            )
        );
        // A manifest that does not parse: its own error, not ours.
        assert!(
            add_err("models:\n  - repo: a/b\n    inlude: x\n", &new("c/d"))
                .starts_with("facehugger.yaml:3:5: unknown field `inlude`"),
        );
        assert!(add_err("", &new("bad//id")).starts_with("invalid repo:"));
        assert!(add_err("", &with("a/b", Some("a..b"), &[], &[])).starts_with("invalid ref:"));
        assert!(
            add_err("models:\r  - repo: a/b\r", &new("c/d"))
                .contains("a carriage return that does not end a line")
        );
    }

    #[test]
    fn add_reports_where_the_entry_is() {
        let edit =
            add_to_yaml(Utf8Path::new(YAML), "models:\n  - repo: a/b\n", &new("c/d")).unwrap();
        assert_eq!(
            edit.change,
            Change::Added {
                at: "facehugger.yaml:3:5".to_owned()
            }
        );
    }

    #[test]
    fn add_handles_document_markers_and_unusual_but_plain_layouts() {
        assert_eq!(
            add(
                "%YAML 1.2\n---\nmodels:\n  - repo: a/b\n...\n# after\n",
                &new("c/d")
            ),
            "%YAML 1.2\n---\nmodels:\n  - repo: a/b\n  - repo: c/d\n...\n# after\n"
        );
        // A `-` alone on its line, the mapping under it.
        assert_eq!(
            add("models:\n  -\n    repo: a/b\n", &new("c/d")),
            "models:\n  -\n    repo: a/b\n  - repo: c/d\n"
        );
        // A block list of patterns is rewritten as a flow list when the entry is updated.
        assert_eq!(
            add(
                "models:\n  - repo: a/b\n    include:\n      - \"*.bin\"\n      - 'x'\n  - repo: c/d\n",
                &with("a/b", None, &["*.json"], &[])
            ),
            "models:\n  - repo: a/b\n    include: [\"*.json\"]\n  - repo: c/d\n"
        );
    }

    #[test]
    fn add_then_remove_gives_back_the_file() {
        let texts = [
            "models:\n  - repo: Qwen/Qwen3-0.6B\n    include: [\"*.json\", \"*.safetensors\"]\n  - repo: HuggingFaceFW/fineweb-edu\n    repo_type: dataset\n    include: sample/10BT/000_00000.parquet\n",
            "# top\nmodels:\n\n  - repo: a/b   # x\n\n  - repo: c/d\n\n# bottom\n",
            "models: [{repo: a/b}]\n",
            "models:\r\n- repo: a/b\r\n  ref: v1\r\n",
            THREE,
        ];
        for text in texts {
            let model = with("new/model", Some("v2"), &["*.gguf"], &["old/"]);
            assert_eq!(remove(&add(text, &model), "new/model", None), text);
        }
        for text in [CARGO, CARGO_THREE, "[package]\nname = \"app\"\n# end\n"] {
            let model = with("new/model", Some("v2"), &["*.gguf"], &["old/"]);
            assert_eq!(
                remove_toml(&add_toml(text, &model), "new/model", None),
                text
            );
        }
    }

    // --- YAML: remove

    const THREE: &str = "# header\nmodels:\n  - repo: a/b\n    include: x\n\n  # the weights\n  - repo: c/d\n    ref: v1\n    # a note under c/d\n\n  - repo: e/f\n# footer\n";

    #[test]
    fn remove_deletes_the_entry_its_comments_and_one_blank_line() {
        assert_eq!(
            remove(THREE, "c/d", None),
            "# header\nmodels:\n  - repo: a/b\n    include: x\n\n  - repo: e/f\n# footer\n"
        );
        assert_eq!(
            remove(THREE, "a/b", None),
            "# header\nmodels:\n\n  # the weights\n  - repo: c/d\n    ref: v1\n    # a note under c/d\n\n  - repo: e/f\n# footer\n"
        );
        assert_eq!(
            remove(THREE, "e/f", None),
            "# header\nmodels:\n  - repo: a/b\n    include: x\n\n  # the weights\n  - repo: c/d\n    ref: v1\n    # a note under c/d\n# footer\n"
        );
        assert_eq!(
            remove("models:\n  - repo: a/b\n\n  - repo: c/d\n\n", "c/d", None),
            "models:\n  - repo: a/b\n\n"
        );
    }

    #[test]
    fn removing_every_entry_leaves_an_empty_list() {
        assert_eq!(
            remove(
                "models:  # all\n  - repo: a/b\n  - repo: a/b\n    ref: v1\n",
                "a/b",
                None
            ),
            "models: []  # all\n"
        );
        assert_eq!(
            remove("models: [{repo: a/b}]\n", "a/b", None),
            "models: []\n"
        );
    }

    #[test]
    fn remove_all_refs_or_only_one() {
        let text = "models:\n  - repo: a/b\n  - repo: c/d\n  - {repo: a/b, ref: v1}\n";
        assert_eq!(remove(text, "a/b", None), "models:\n  - repo: c/d\n");
        assert_eq!(
            remove(text, "a/b", Some("v1")),
            "models:\n  - repo: a/b\n  - repo: c/d\n"
        );
        assert_eq!(
            remove(text, "a/b", Some("main")),
            "models:\n  - repo: c/d\n  - {repo: a/b, ref: v1}\n"
        );
        let edit = remove_from_yaml(Utf8Path::new(YAML), text, &repo("a/b"), Some("v1")).unwrap();
        let Change::Removed { models } = edit.change else {
            panic!("{:?}", edit.change)
        };
        assert_eq!(models.len(), 1);
        assert_eq!(models[0].origin, "facehugger.yaml:4:5");
    }

    #[test]
    fn remove_from_a_one_line_flow_list() {
        let text = "models: [ {repo: a/b},  {repo: c/d}, {repo: e/f} ]  # three\n";
        assert_eq!(
            remove(text, "a/b", None),
            "models: [ {repo: c/d},  {repo: e/f} ]  # three\n"
        );
        assert_eq!(
            remove(text, "e/f", None),
            "models: [ {repo: a/b},  {repo: c/d} ]  # three\n"
        );
    }

    #[test]
    fn remove_keeps_crlf_line_endings() {
        assert_eq!(
            remove("models:\r\n  - repo: a/b\r\n  - repo: c/d\r\n", "a/b", None),
            "models:\r\n  - repo: c/d\r\n"
        );
    }

    #[test]
    fn removing_what_is_not_declared_names_the_file() {
        let text = "models:\n  - repo: a/b\n  - repo: a/b\n    ref: v1\n  - {repo: c/d, repo_type: dataset}\n";
        assert_eq!(
            remove_err(text, "x/y", None),
            "`x/y` is not declared in facehugger.yaml"
        );
        assert_eq!(
            remove_err(text, "a/b", Some("v2")),
            "`a/b@v2` is not declared in facehugger.yaml (only at main, v1)"
        );
        assert_eq!(
            remove_err(text, "c/d", None),
            "`c/d` is not declared in facehugger.yaml (but dataset `c/d` is)"
        );
        assert_eq!(
            remove_err("", "a/b", None),
            "`a/b` is not declared in facehugger.yaml"
        );
        assert_eq!(
            remove_err("models:\n", "a/b", None),
            "`a/b` is not declared in facehugger.yaml"
        );
    }

    // --- Cargo.toml

    const CARGO: &str =
        "[package]\nname = \"app\"\nversion = \"0.1.0\"\n\n[dependencies]\nserde = \"1\" # serde\n";

    #[test]
    fn toml_add_creates_the_array_after_the_package_tables() {
        assert_eq!(
            add_toml(CARGO, &with("acme/tiny", None, &["*.json"], &[])),
            "[package]\nname = \"app\"\nversion = \"0.1.0\"\n\n[[package.metadata.facehugger.models]]\nrepo = \"acme/tiny\"\ninclude = [\"*.json\"]\n\n[dependencies]\nserde = \"1\" # serde\n"
        );
        let with_docs = "[package]\nname = \"app\"\n\n[package.metadata.docs.rs]\nall-features = true\n\n[dependencies]\n";
        assert_eq!(
            add_toml(with_docs, &new("acme/tiny")),
            "[package]\nname = \"app\"\n\n[package.metadata.docs.rs]\nall-features = true\n\n[[package.metadata.facehugger.models]]\nrepo = \"acme/tiny\"\n\n[dependencies]\n"
        );
        assert_eq!(
            add_toml("[package]\nname = \"app\"\n", &new("acme/tiny")),
            "[package]\nname = \"app\"\n\n[[package.metadata.facehugger.models]]\nrepo = \"acme/tiny\"\n"
        );
    }

    #[test]
    fn toml_add_appends_after_the_last_element() {
        let text = "[package]\nname = \"app\"\n\n# tiny\n[[package.metadata.facehugger.models]]\nrepo = \"acme/tiny\" # the small one\ninclude = ['*.json']\n# include = [\"*.bin\"]\n\n[dependencies]\n";
        let model = NewModel {
            repo: Repo {
                repo_type: RepoType::Dataset,
                id: "acme/data".to_owned(),
            },
            reference: Some("v1".to_owned()),
            include: vec!["data/".into()],
            exclude: vec!["a\"b".into()],
        };
        assert_eq!(
            add_toml(text, &model),
            "[package]\nname = \"app\"\n\n# tiny\n[[package.metadata.facehugger.models]]\nrepo = \"acme/tiny\" # the small one\ninclude = ['*.json']\n# include = [\"*.bin\"]\n\n[[package.metadata.facehugger.models]]\nrepo = \"acme/data\"\nrepo_type = \"dataset\"\nref = \"v1\"\ninclude = [\"data/\"]\nexclude = ['a\"b']\n\n[dependencies]\n"
        );
    }

    #[test]
    fn toml_add_follows_the_spacing_of_the_elements() {
        let text = "[package]\nname = \"app\"\n[[package.metadata.facehugger.models]]\nrepo = \"a/b\"\n[[package.metadata.facehugger.models]]\nrepo = \"c/d\"\n";
        assert_eq!(
            add_toml(text, &new("e/f")),
            format!("{text}[[package.metadata.facehugger.models]]\nrepo = \"e/f\"\n")
        );
        let text = "[package]\nname = \"app\"\n\n\n[[package.metadata.facehugger.models]]\nrepo = \"a/b\"\n";
        assert_eq!(
            add_toml(text, &new("e/f")),
            format!("{text}\n\n[[package.metadata.facehugger.models]]\nrepo = \"e/f\"\n")
        );
    }

    #[test]
    fn toml_add_to_an_inline_array() {
        let text = "[package]\nname = \"app\"\n\n[package.metadata.facehugger]\nmodels = [{ repo = \"a/b\" }]\n";
        assert_eq!(
            add_toml(text, &with("c/d", None, &["x"], &[])),
            "[package]\nname = \"app\"\n\n[package.metadata.facehugger]\nmodels = [{ repo = \"a/b\" }, { repo = \"c/d\", include = [\"x\"] }]\n"
        );
        let text = "[package]\nname = \"app\"\n\n[package.metadata.facehugger]\nmodels = [\n  { repo = \"a/b\" },\n]\n";
        assert_eq!(
            add_toml(text, &new("c/d")),
            "[package]\nname = \"app\"\n\n[package.metadata.facehugger]\nmodels = [\n  { repo = \"a/b\" },\n  { repo = \"c/d\" },\n]\n"
        );
    }

    #[test]
    fn toml_add_updates_a_declared_repo_in_place() {
        let text = "[package]\nname = \"app\"\n\n[[package.metadata.facehugger.models]]\nrepo = \"a/b\"\n# what we need\ninclude = \"*.bin\" # weights\nexclude = [\"old/\"]\nname = \"AB\"\n";
        let edit = add_to_cargo_toml(
            Utf8Path::new(TOML),
            text,
            Table::Package,
            &with("a/b", None, &["*.json", "*.safetensors"], &[]),
        )
        .unwrap();
        assert_eq!(
            edit.text,
            "[package]\nname = \"app\"\n\n[[package.metadata.facehugger.models]]\nrepo = \"a/b\"\n# what we need\ninclude = [\"*.json\", \"*.safetensors\"] # weights\nname = \"AB\"\n"
        );
        assert_eq!(
            edit.change,
            Change::Updated {
                at: "Cargo.toml:4:1: package.metadata.facehugger.models[0]".to_owned()
            }
        );
        let unchanged =
            add_to_cargo_toml(Utf8Path::new(TOML), text, Table::Package, &new("a/b")).unwrap();
        assert_eq!(unchanged.text, text);
        assert!(matches!(unchanged.change, Change::Unchanged { .. }));
    }

    #[test]
    fn toml_add_to_the_workspace_table() {
        let text = "[workspace]\nmembers = [\"a\"]\n";
        let edit =
            add_to_cargo_toml(Utf8Path::new(TOML), text, Table::Workspace, &new("a/b")).unwrap();
        assert_eq!(
            edit.text,
            "[workspace]\nmembers = [\"a\"]\n\n[[workspace.metadata.facehugger.models]]\nrepo = \"a/b\"\n"
        );
        assert_eq!(
            add_to_cargo_toml(Utf8Path::new(TOML), text, Table::Package, &new("a/b"))
                .unwrap_err()
                .to_string(),
            "Cargo.toml: cannot add the model: it has no `[package]` table"
        );
    }

    #[test]
    fn toml_keeps_crlf_line_endings() {
        let text = "[package]\r\nname = \"app\"\r\n";
        let added = add_toml(text, &new("a/b"));
        assert_eq!(
            added,
            "[package]\r\nname = \"app\"\r\n\r\n[[package.metadata.facehugger.models]]\r\nrepo = \"a/b\"\r\n"
        );
        assert_eq!(remove_toml(&added, "a/b", None), text);
    }

    const CARGO_THREE: &str = "[package]\nname = \"app\"\n\n# about a/b\n[[package.metadata.facehugger.models]]\nrepo = \"a/b\"\n# ref = \"v1\"\n\n# --- the rest ---\n\n[[package.metadata.facehugger.models]]\nrepo = \"c/d\"\n\n[[package.metadata.facehugger.models]]\nrepo = \"a/b\"\nref = \"v1\"\n\n[dependencies]\nserde = \"1\"\n";

    #[test]
    fn toml_remove_deletes_the_element_and_its_comments() {
        assert_eq!(
            remove_toml(CARGO_THREE, "c/d", None),
            "[package]\nname = \"app\"\n\n# about a/b\n[[package.metadata.facehugger.models]]\nrepo = \"a/b\"\n# ref = \"v1\"\n\n# --- the rest ---\n\n[[package.metadata.facehugger.models]]\nrepo = \"a/b\"\nref = \"v1\"\n\n[dependencies]\nserde = \"1\"\n"
        );
        assert_eq!(
            remove_toml(CARGO_THREE, "a/b", Some("main")),
            "[package]\nname = \"app\"\n\n# --- the rest ---\n\n[[package.metadata.facehugger.models]]\nrepo = \"c/d\"\n\n[[package.metadata.facehugger.models]]\nrepo = \"a/b\"\nref = \"v1\"\n\n[dependencies]\nserde = \"1\"\n"
        );
        assert_eq!(
            remove_toml(CARGO_THREE, "a/b", None),
            "[package]\nname = \"app\"\n\n# --- the rest ---\n\n[[package.metadata.facehugger.models]]\nrepo = \"c/d\"\n\n[dependencies]\nserde = \"1\"\n"
        );
    }

    #[test]
    fn toml_remove_the_last_table_of_the_file() {
        let text = "[package]\nname = \"app\"\n\n[[package.metadata.facehugger.models]]\nrepo = \"a/b\"\n\n[[package.metadata.facehugger.models]]\nrepo = \"c/d\"\n# trailing\n\n# footer\n";
        assert_eq!(
            remove_toml(text, "c/d", None),
            "[package]\nname = \"app\"\n\n[[package.metadata.facehugger.models]]\nrepo = \"a/b\"\n\n# footer\n"
        );
        assert_eq!(
            remove_toml(text, "a/b", None),
            "[package]\nname = \"app\"\n\n[[package.metadata.facehugger.models]]\nrepo = \"c/d\"\n# trailing\n\n# footer\n"
        );
        let both = remove_toml(&remove_toml(text, "a/b", None), "c/d", None);
        assert_eq!(both, "[package]\nname = \"app\"\n\n# footer\n");
    }

    #[test]
    fn toml_remove_from_an_inline_array() {
        let text = "[package.metadata.facehugger]\nmodels = [\n  { repo = \"a/b\" }, # first\n  { repo = \"c/d\" },\n]\n";
        assert_eq!(
            remove_toml(text, "a/b", None),
            "[package.metadata.facehugger]\nmodels = [\n  { repo = \"c/d\" },\n]\n"
        );
        assert_eq!(
            remove_toml(text, "c/d", None),
            "[package.metadata.facehugger]\nmodels = [\n  { repo = \"a/b\" }, # first\n]\n"
        );
        assert_eq!(
            remove_toml(&remove_toml(text, "c/d", None), "a/b", None),
            "[package.metadata.facehugger]\nmodels = []\n"
        );
    }

    #[test]
    fn toml_add_keeps_comments_that_end_the_body_above() {
        assert_eq!(
            add_toml(
                "[package]\nname = \"app\"\n# edition = \"2024\"\n\n# deps\n[dependencies]\n",
                &new("a/b")
            ),
            "[package]\nname = \"app\"\n# edition = \"2024\"\n\n[[package.metadata.facehugger.models]]\nrepo = \"a/b\"\n\n# deps\n[dependencies]\n"
        );
        assert_eq!(
            add_toml(
                "[package]\nname = \"app\"\n# the end\n\n# footer\n",
                &new("a/b")
            ),
            "[package]\nname = \"app\"\n# the end\n\n[[package.metadata.facehugger.models]]\nrepo = \"a/b\"\n\n# footer\n"
        );
    }

    #[test]
    fn toml_add_with_dotted_or_empty_inline_tables() {
        assert_eq!(
            add_toml(
                "[package]\nname = \"app\"\nmetadata.docs = true\n",
                &new("a/b")
            ),
            "[package]\nname = \"app\"\nmetadata.docs = true\n\n[[package.metadata.facehugger.models]]\nrepo = \"a/b\"\n"
        );
        assert_eq!(
            add_toml(
                "[package]\nname = \"app\"\n\n[package.metadata.facehugger]\nmodels = []\n",
                &new("a/b")
            ),
            "[package]\nname = \"app\"\n\n[package.metadata.facehugger]\nmodels = [{ repo = \"a/b\" }]\n"
        );
        let inline = "[package]\nname = \"app\"\nmetadata = { docs = true }\n";
        assert_eq!(
            add_to_cargo_toml(Utf8Path::new(TOML), inline, Table::Package, &new("a/b"))
                .unwrap_err()
                .to_string(),
            "Cargo.toml: cannot add the model: `package.metadata` is not a table with a `[package.metadata]` header or dotted keys"
        );
    }

    #[test]
    fn toml_removing_what_is_not_declared_names_the_file() {
        let err = |text: &str, id: &str, reference| {
            remove_from_cargo_toml(
                Utf8Path::new(TOML),
                text,
                Table::Package,
                &repo(id),
                reference,
            )
            .unwrap_err()
            .to_string()
        };
        assert_eq!(
            err(CARGO, "a/b", None),
            "`a/b` is not declared in Cargo.toml"
        );
        assert_eq!(
            err(CARGO_THREE, "c/d", Some("v9")),
            "`c/d@v9` is not declared in Cargo.toml (only at main)"
        );
        // A broken table: the reader's error, with its place.
        assert!(
            err(
                "[[package.metadata.facehugger.models]]\nrepo = 1\n",
                "a/b",
                None
            )
            .starts_with("Cargo.toml:2:8: package.metadata.facehugger.models[0].repo")
        );
    }
}
