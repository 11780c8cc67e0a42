//! Editing a `facehugger.yaml`: a light line-based scan finds `models:` and its entries, and the
//! edit is made on the lines, so every other line stays byte for byte.

use std::ops::Range;

use camino::Utf8Path;

use super::{
    Change, Edit, Fields, NewModel, Plan, RemoveRepo, check_ref, check_result, plan_add,
    plan_remove, unchanged, unsafe_edit,
};
use crate::error::Error;
use crate::manifest::{Manifest, Model};

/// Returns the text of a `facehugger.yaml` with `model` added: appended to `models:` (the key is
/// created if the file has none), or, if the repo is already declared at that ref, that entry's
/// selection updated (see the module documentation). `path` names the file in messages.
pub(super) fn add(path: &Utf8Path, text: &str, model: &NewModel) -> Result<Edit, Error> {
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
pub(super) fn remove(
    path: &Utf8Path,
    text: &str,
    repo: &RemoveRepo,
    reference: Option<&str>,
) -> Result<Edit, Error> {
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
        (Err(err), _) => return Err(err.into()),
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

/// The 0-based line where an entry starts.
fn origin_line(origin: &crate::location::Location) -> Option<usize> {
    (origin.line? as usize).checked_sub(1)
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
pub(super) fn yaml_scalar(value: &str) -> String {
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

pub(super) fn yaml_quoted(value: &str) -> String {
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
        Manifest::parse(path, text)
            .map(|manifest| manifest.models)
            .map_err(Error::from),
        expected,
    )
}
