//! Models declared in Cargo.toml, next to the crate's dependencies:
//!
//! ```toml
//! [[package.metadata.facehugger.models]]
//! repo = "acme/tiny"
//! include = ["*.json", "*.safetensors"]
//! ```
//!
//! `[workspace.metadata.facehugger]` takes the same `models` list. The tables are read straight
//! from the file (not through `cargo metadata`, which can deadlock inside a build script), with the
//! positions the toml parser keeps, so an error names the file, the line and column, and the key
//! path (`package.metadata.facehugger.models[1].include`).

use std::borrow::Cow;
use std::ops::Range;

use camino::Utf8Path;
use toml::Spanned;
use toml::de::{DeTable, DeValue};

use crate::location::Location;
use crate::manifest::{Located, ManifestError, Model, ModelFields};

/// Which table of a Cargo.toml to read.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub(crate) enum Table {
    /// `[package.metadata.facehugger]`
    Package,
    /// `[workspace.metadata.facehugger]`
    Workspace,
}

impl Table {
    fn root_key(self) -> &'static str {
        match self {
            Table::Package => "package",
            Table::Workspace => "workspace",
        }
    }
}

/// Whether a Cargo.toml declares models in this table (without validating them).
pub(crate) fn declares_models(cargo_toml: &Utf8Path, table: Table) -> bool {
    std::fs::read_to_string(cargo_toml).is_ok_and(|text| {
        DeTable::parse(&text)
            .ok()
            .and_then(|root| {
                let facehugger = lookup(
                    root.get_ref(),
                    &[table.root_key(), "metadata", "facehugger"],
                )?;
                matches!(facehugger.get_ref(), DeValue::Table(t) if t.contains_key("models"))
                    .then_some(())
            })
            .is_some()
    })
}

/// Whether the file's `[workspace]` names its `default-members`.
pub(crate) fn names_default_members(cargo_toml: &Utf8Path) -> bool {
    std::fs::read_to_string(cargo_toml).is_ok_and(|text| {
        DeTable::parse(&text)
            .is_ok_and(|root| lookup(root.get_ref(), &["workspace", "default-members"]).is_some())
    })
}

/// Whether the file has a `[workspace]` table.
pub(crate) fn is_workspace_root(cargo_toml: &Utf8Path) -> bool {
    has_table(cargo_toml, "workspace")
}

/// Whether the file has a `[package]` table.
pub(crate) fn is_package(cargo_toml: &Utf8Path) -> bool {
    has_table(cargo_toml, "package")
}

fn has_table(cargo_toml: &Utf8Path, key: &str) -> bool {
    std::fs::read_to_string(cargo_toml)
        .is_ok_and(|text| DeTable::parse(&text).is_ok_and(|root| root.get_ref().contains_key(key)))
}

/// Parses the models of `table` from Cargo.toml text; `path` is only used in messages.
pub(crate) fn parse_models(
    path: &Utf8Path,
    text: &str,
    table: Table,
) -> Result<Vec<Model>, ManifestError> {
    let reader = Reader { path, text };
    let root = DeTable::parse(text).map_err(|err| {
        let location = err
            .span()
            .map_or_else(|| Location::file(path), |span| reader.place(&span));
        ManifestError::new(location, err.message().trim())
    })?;
    let key_path = format!("{}.metadata.facehugger", table.root_key());
    let Some(facehugger) = lookup(
        root.get_ref(),
        &[table.root_key(), "metadata", "facehugger"],
    ) else {
        return Ok(Vec::new());
    };
    let facehugger = reader.table(facehugger, &key_path)?;
    let mut models_value = None;
    for (key, value) in facehugger {
        match key.get_ref().as_ref() {
            "models" => models_value = Some(value),
            other => {
                return Err(reader.error(
                    &key.span(),
                    &format!("{key_path}.{other}"),
                    "unknown field, expected `models`",
                ));
            }
        }
    }
    let Some(models_value) = models_value else {
        return Ok(Vec::new());
    };
    let DeValue::Array(entries) = models_value.get_ref() else {
        return Err(reader.error(
            &models_value.span(),
            &format!("{key_path}.models"),
            "expected an array of tables (`[[package.metadata.facehugger.models]]`)",
        ));
    };
    entries
        .iter()
        .enumerate()
        .map(|(index, entry)| reader.model(entry, &format!("{key_path}.models[{index}]")))
        .collect()
}

/// The value at a dotted path of tables, if every step is a table.
fn lookup<'a, 'i>(table: &'a DeTable<'i>, keys: &[&str]) -> Option<&'a Spanned<DeValue<'i>>> {
    let (first, rest) = keys.split_first()?;
    let value = table.get(*first)?;
    if rest.is_empty() {
        return Some(value);
    }
    match value.get_ref() {
        DeValue::Table(inner) => lookup(inner, rest),
        _ => None,
    }
}

struct Reader<'a> {
    path: &'a Utf8Path,
    text: &'a str,
}

impl Reader<'_> {
    /// The line and column of a byte offset.
    fn place(&self, span: &Range<usize>) -> Location {
        let before = &self.text[..span.start.min(self.text.len())];
        let line = before.matches('\n').count() + 1;
        let column = before.rsplit('\n').next().unwrap_or("").chars().count() + 1;
        Location::at(self.path, line as u64, column as u64)
    }

    fn error(&self, span: &Range<usize>, key_path: &str, what: &str) -> ManifestError {
        ManifestError::new(self.place(span).with_key(key_path), what)
    }

    fn located(
        &self,
        value: &Spanned<DeValue<'_>>,
        key_path: &str,
    ) -> Result<Located<String>, ManifestError> {
        match value.get_ref() {
            DeValue::String(text) => Ok(Located {
                value: text.to_string(),
                at: self.place(&value.span()).with_key(key_path),
            }),
            other => Err(self.error(
                &value.span(),
                key_path,
                &format!("expected a string, found {}", kind(other)),
            )),
        }
    }

    fn table<'v, 'i>(
        &self,
        value: &'v Spanned<DeValue<'i>>,
        key_path: &str,
    ) -> Result<&'v DeTable<'i>, ManifestError> {
        match value.get_ref() {
            DeValue::Table(table) => Ok(table),
            other => Err(self.error(
                &value.span(),
                key_path,
                &format!("expected a table, found {}", kind(other)),
            )),
        }
    }

    fn patterns(
        &self,
        value: &Spanned<DeValue<'_>>,
        key_path: &str,
    ) -> Result<Vec<String>, ManifestError> {
        let expected = "expected a pattern string or an array of pattern strings";
        match value.get_ref() {
            DeValue::String(text) => Ok(vec![text.to_string()]),
            DeValue::Array(items) => items
                .iter()
                .enumerate()
                .map(|(index, item)| match item.get_ref() {
                    DeValue::String(text) => Ok(text.to_string()),
                    other => Err(self.error(
                        &item.span(),
                        &format!("{key_path}[{index}]"),
                        &format!("{expected}, found {}", kind(other)),
                    )),
                })
                .collect(),
            other => Err(self.error(
                &value.span(),
                key_path,
                &format!("{expected}, found {}", kind(other)),
            )),
        }
    }

    fn model(&self, entry: &Spanned<DeValue<'_>>, key_path: &str) -> Result<Model, ManifestError> {
        let table = self.table(entry, key_path)?;
        let origin = self.place(&entry.span()).with_key(key_path);
        let mut repo = None;
        let mut fields = ModelFields {
            repo: Located {
                value: String::new(),
                at: origin.clone(),
            },
            reference: None,
            include: None,
            exclude: None,
            repo_type: None,
            name: None,
            origin,
        };
        for (key, value) in table {
            let key_name: &Cow<'_, str> = key.get_ref();
            let field_path = format!("{key_path}.{key_name}");
            match key_name.as_ref() {
                "repo" => repo = Some(self.located(value, &field_path)?),
                "ref" => fields.reference = Some(self.located(value, &field_path)?),
                "include" => fields.include = Some(self.patterns(value, &field_path)?),
                "exclude" => fields.exclude = Some(self.patterns(value, &field_path)?),
                "repo_type" => fields.repo_type = Some(self.located(value, &field_path)?),
                "name" => fields.name = Some(self.located(value, &field_path)?),
                _ => {
                    return Err(self.error(
                        &key.span(),
                        &field_path,
                        "unknown field, expected one of `repo`, `ref`, `include`, `exclude`, `repo_type`, `name`",
                    ));
                }
            }
        }
        fields.repo =
            repo.ok_or_else(|| self.error(&entry.span(), key_path, "missing field `repo`"))?;
        fields.validate()
    }
}

fn kind(value: &DeValue<'_>) -> &'static str {
    match value {
        DeValue::String(_) => "a string",
        DeValue::Integer(_) => "an integer",
        DeValue::Float(_) => "a float",
        DeValue::Boolean(_) => "a boolean",
        DeValue::Datetime(_) => "a datetime",
        DeValue::Array(_) => "an array",
        DeValue::Table(_) => "a table",
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::repo::RepoType;

    fn parse(text: &str) -> Result<Vec<Model>, String> {
        parse_models(Utf8Path::new("Cargo.toml"), text, Table::Package).map_err(|e| e.to_string())
    }

    #[test]
    fn models_are_read_from_package_metadata() {
        let models = parse(
            "[package]\nname = \"x\"\n\n[[package.metadata.facehugger.models]]\nrepo = \"acme/tiny\"\ninclude = \"*.json\"\nname = \"TINY\"\n\n[[package.metadata.facehugger.models]]\nrepo = \"acme/data\"\nrepo_type = \"dataset\"\nref = \"v1\"\nexclude = [\"*.bin\"]\n",
        )
        .unwrap();
        assert_eq!(models.len(), 2);
        assert_eq!(models[0].repo.id.as_str(), "acme/tiny");
        assert_eq!(
            models[0].include.as_deref(),
            Some(&["*.json".to_owned()][..])
        );
        assert_eq!(models[0].name.as_deref(), Some("TINY"));
        assert_eq!(
            models[0].origin.to_string(),
            "Cargo.toml:4:1: package.metadata.facehugger.models[0]"
        );
        assert_eq!(models[1].repo.repo_type, RepoType::Dataset);
        assert_eq!(models[1].reference, "v1");
        assert_eq!(parse("[package]\nname = \"x\"\n").unwrap(), Vec::new());
    }

    #[test]
    fn errors_name_the_line_and_the_key_path() {
        let header = "[package]\nname = \"x\"\n[[package.metadata.facehugger.models]]\nrepo = \"acme/tiny\"\n";
        let cases = [
            (
                "include = 3\n",
                "Cargo.toml:5:11: package.metadata.facehugger.models[0].include: expected a pattern string or an array of pattern strings, found an integer",
            ),
            (
                "include = [\"a\", 1]\n",
                "Cargo.toml:5:17: package.metadata.facehugger.models[0].include[1]: expected a pattern string",
            ),
            (
                "bogus = 1\n",
                "Cargo.toml:5:1: package.metadata.facehugger.models[0].bogus: unknown field",
            ),
            (
                "repo_type = \"modle\"\n",
                "Cargo.toml:5:13: package.metadata.facehugger.models[0].repo_type: unknown repo_type `modle`",
            ),
            (
                "ref = \"a b\"\n",
                "Cargo.toml:5:7: package.metadata.facehugger.models[0].ref: invalid ref:",
            ),
            (
                "name = \"1x\"\n",
                "Cargo.toml:5:8: package.metadata.facehugger.models[0].name: invalid name:",
            ),
            (
                "[[package.metadata.facehugger.models]]\nref = \"main\"\n",
                "Cargo.toml:5:1: package.metadata.facehugger.models[1]: missing field `repo`",
            ),
            (
                "[[package.metadata.facehugger.models]]\nrepo = \"a//b\"\n",
                "Cargo.toml:6:8: package.metadata.facehugger.models[1].repo: invalid repo:",
            ),
            ("repo = \"x\"\n", "Cargo.toml:5:1: duplicate key"),
        ];
        for (tail, expected) in cases {
            let message = parse(&format!("{header}{tail}")).unwrap_err();
            assert!(message.starts_with(expected), "{tail:?}: {message}");
        }
        let message = parse("[package.metadata.facehugger]\nmodels = 1\n").unwrap_err();
        assert!(
            message.starts_with(
                "Cargo.toml:2:10: package.metadata.facehugger.models: expected an array"
            ),
            "{message}"
        );
        let message = parse("[package.metadata.facehugger]\nmodel = []\n").unwrap_err();
        assert!(
            message.starts_with("Cargo.toml:2:1: package.metadata.facehugger.model: unknown field"),
            "{message}"
        );
    }
}
