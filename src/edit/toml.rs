//! Editing a Cargo.toml's `[[package.metadata.facehugger.models]]` (or the workspace's) through
//! `toml_edit`, which keeps every comment, blank line and quoting style of the rest of the file.

use camino::Utf8Path;
use toml_edit as te;

use super::{
    Change, Edit, Fields, NewModel, Plan, RemoveRepo, check_ref, check_result, plan_add,
    plan_remove, unchanged, unsafe_edit,
};
use crate::cargo::{Table, parse_models};
use crate::error::Error;
use crate::location::Location;
use crate::manifest::{ManifestError, Model};

/// Returns the text of a Cargo.toml with `model` added to `table`
/// (`[[package.metadata.facehugger.models]]` or the workspace's): a new array element after the
/// last one (a new array after the table's other sub-tables when there is none), an inline table
/// if the models are an inline array, or, if the repo is already declared at that ref, that
/// entry's selection updated. The `[package]` or `[workspace]` table must exist.
pub(super) fn add(
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
pub(super) fn remove(
    path: &Utf8Path,
    text: &str,
    table: Table,
    repo: &RemoveRepo,
    reference: Option<&str>,
) -> Result<Edit, Error> {
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

fn root_key(table: Table) -> &'static str {
    match table {
        Table::Package => "package",
        Table::Workspace => "workspace",
    }
}

fn parse_toml(path: &Utf8Path, text: &str) -> Result<te::DocumentMut, Error> {
    text.parse::<te::DocumentMut>().map_err(|err| {
        Error::Manifest(ManifestError {
            location: Location::file(path),
            message: err.message().trim().to_owned(),
        })
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
    check_result(
        path,
        parse_models(path, text, table).map_err(Error::from),
        expected,
    )
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
    let refuse = |why: String| {
        Error::Manifest(ManifestError {
            location: Location::file(path),
            message: format!("cannot add the model: {why}"),
        })
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
