//! The manifest: `facehugger.yaml`, the list of repos a project needs.
//!
//! ```yaml
//! models:
//!   - repo: owner/model-repo        # required
//!     ref: main                     # branch, tag, refs/pr/N or commit sha; default main
//!     include: "*.gguf"             # one pattern or a list
//!     exclude: ["*.ckpt", "old/"]
//!     repo_type: model              # model (default), dataset or space
//! ```
//! Every mistake is reported with the file, line and column, and what was expected.

use std::fmt;

use camino::{Utf8Path, Utf8PathBuf};
use serde::Deserialize;
use serde::de::{self, Deserializer, MapAccess, SeqAccess, Unexpected, Visitor};
use serde_saphyr::Spanned;

use crate::location::Location;
use crate::repo::{CommitId, Repo, RepoId, RepoType, validate_ref};
use crate::text::{MAX_MESSAGE_CHARS, MAX_SHOWN_CHARS, not_utf8, shown};

/// The manifest file name looked for in the current directory.
pub const MANIFEST_FILE: &str = "facehugger.yaml";

/// The ref used when a model does not name one.
pub const DEFAULT_REF: &str = "main";

/// A manifest (or a Cargo.toml table) that does not parse or validate: where, and what is wrong.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
#[error("{location}: {message}")]
pub struct ManifestError {
    /// Where the mistake is.
    pub location: Location,
    /// What is wrong and what was expected.
    pub message: String,
}

impl ManifestError {
    pub(crate) fn new(location: Location, message: impl Into<String>) -> ManifestError {
        ManifestError {
            location,
            message: message.into(),
        }
    }
}

/// A validated manifest.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Manifest {
    /// Where it was read from; the lock file sits beside it.
    pub path: Utf8PathBuf,
    /// The declared models, in file order.
    pub models: Vec<Model>,
}

/// One entry of `models:`.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Model {
    /// The repo and its type.
    pub repo: Repo,
    /// The declared ref (default `main`).
    pub reference: String,
    /// Include patterns: `None` selects every file, an empty list none.
    pub include: Option<Vec<String>>,
    /// Exclude patterns: `None` excludes nothing.
    pub exclude: Option<Vec<String>>,
    /// The name of the constant the build-script API generates for it (default: from the repo id).
    pub name: Option<String>,
    /// Where the entry starts in the manifest, for error messages.
    pub origin: Location,
}

impl Model {
    /// `acme/tiny@main` (`dataset acme/data@main` for other repo types): how messages name it.
    pub fn name(&self) -> String {
        format!("{}@{}", self.repo, self.reference)
    }

    /// The commit, when the ref is one: such a model needs no resolving.
    pub fn pinned_commit(&self) -> Option<CommitId> {
        CommitId::parse(&self.reference)
    }
}

impl Manifest {
    /// Validates the bytes of a manifest file (they must be UTF-8); `path` is only used in
    /// messages and to place the lock file.
    pub fn from_bytes(path: &Utf8Path, bytes: Vec<u8>) -> Result<Manifest, ManifestError> {
        let text = String::from_utf8(bytes).map_err(|err| {
            let (line, column, message) = not_utf8(err.as_bytes(), &err.utf8_error());
            ManifestError::new(Location::at(path, line, column), message)
        })?;
        Manifest::parse(path, &text)
    }

    /// Parses manifest text; `path` is only used in messages and to place the lock file.
    pub fn parse(path: &Utf8Path, text: &str) -> Result<Manifest, ManifestError> {
        if text.trim().is_empty() {
            return Err(ManifestError::new(
                Location::file(path),
                "the manifest is empty: expected a `models:` list",
            ));
        }
        let raw: RawManifest =
            serde_saphyr::from_str_with_options(text, yaml_options()).map_err(|err| {
                let location = match err.without_snippet().location() {
                    Some(at) => Location::at(path, at.line(), at.column()),
                    None => Location::file(path),
                };
                ManifestError::new(location, yaml_message(&err))
            })?;
        let mut models = Vec::with_capacity(raw.models.len());
        for entry in raw.models {
            let origin = Location::at(path, entry.referenced.line(), entry.referenced.column());
            models.push(entry.value.0.validate(path, origin)?);
        }
        Ok(Manifest {
            path: path.to_owned(),
            models,
        })
    }
}

/// serde-saphyr's defaults, hardened: no merge keys (`<<`, a YAML 1.1 extension), since a few
/// hundred bytes of nested merges keep the parser busy for seconds, and a tenth of the default
/// cap on what aliases may replay. Anchors and aliases still work, and a real manifest stays far
/// below the caps.
fn yaml_options() -> serde_saphyr::Options {
    let mut options = serde_saphyr::Options::default();
    options.merge_keys = serde_saphyr::MergeKeyPolicy::Error;
    options.alias_limits.max_total_replayed_events = 100_000;
    options
}

/// What is wrong, in one line and in a manifest author's terms: serde-saphyr's own messages
/// for a few errors speak of its API (`use Option<String>`, `from_str_multiple`) or of parser
/// events (`expected sequence start`). The location is printed first, by the caller.
fn yaml_message(err: &serde_saphyr::Error) -> String {
    use serde_saphyr::{Error as YamlError, MessageFormatter, UserMessageFormatter};
    let mut err = err;
    let mut through_alias = false;
    loop {
        match err {
            YamlError::WithSnippet { error, .. } => err = error,
            YamlError::AliasError { error, .. } => {
                err = error;
                through_alias = true;
            }
            _ => break,
        }
    }
    let message = match err {
        YamlError::Unexpected {
            expected: "sequence start",
            ..
        } => "`models` must be a list of models, each like `- repo: owner/name`".into(),
        YamlError::Unexpected {
            expected: "mapping start",
            ..
        } => "expected a mapping with a `models:` list".into(),
        YamlError::Unexpected {
            expected: "string scalar",
            ..
        } => "expected a string".into(),
        YamlError::NullIntoString { .. } => "expected a string, found nothing (null)".into(),
        YamlError::MergeKeyNotAllowed { .. } => {
            "merge keys (`<<`) are not supported: write the fields out, or share a value with an anchor and an alias (`&name`, `*name`)".into()
        }
        YamlError::UnknownAnchor { .. } => {
            "alias to an anchor (`&name`) not defined before it".into()
        }
        YamlError::Eof { .. } => "no YAML content: expected a `models:` list".into(),
        YamlError::MultipleDocuments { .. } => {
            "a second YAML document (`---`): a manifest is a single document".into()
        }
        YamlError::DuplicateMappingKey { key: Some(key), .. } => {
            format!("duplicate mapping key: {key}").into()
        }
        other => UserMessageFormatter.format_message(other),
    };
    let message = if through_alias {
        format!("{message} (in a value reached through an alias)")
    } else {
        message.into_owned()
    };
    shown(&message, MAX_MESSAGE_CHARS)
}

#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawManifest {
    models: Vec<Spanned<ModelEntry>>,
}

/// One item of `models:`: a [`RawModel`] mapping, with a message that says so when it is not.
struct ModelEntry(RawModel);

impl<'de> Deserialize<'de> for ModelEntry {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<ModelEntry, D::Error> {
        struct EntryVisitor;
        impl<'de> Visitor<'de> for EntryVisitor {
            type Value = ModelEntry;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a model: a mapping such as `repo: owner/name`")
            }
            fn visit_map<A: MapAccess<'de>>(self, map: A) -> Result<ModelEntry, A::Error> {
                RawModel::deserialize(de::value::MapAccessDeserializer::new(map)).map(ModelEntry)
            }
            fn visit_unit<E: de::Error>(self) -> Result<ModelEntry, E> {
                Err(E::invalid_type(Unexpected::Other("nothing (null)"), &self))
            }
        }
        deserializer.deserialize_any(EntryVisitor)
    }
}

/// The optional fields may be left out, but not given an empty (null) value: `include:` alone is
/// more likely a slip than a wish for every file.
#[derive(Deserialize)]
#[serde(deny_unknown_fields)]
struct RawModel {
    repo: Spanned<String>,
    #[serde(rename = "ref", default, deserialize_with = "present")]
    reference: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "present")]
    include: Option<Patterns>,
    #[serde(default, deserialize_with = "present")]
    exclude: Option<Patterns>,
    #[serde(default, deserialize_with = "present")]
    repo_type: Option<Spanned<String>>,
    #[serde(default, deserialize_with = "present")]
    name: Option<Spanned<String>>,
}

/// A field that is there: null is an error of `T`, not `None`.
fn present<'de, D: Deserializer<'de>, T: Deserialize<'de>>(
    deserializer: D,
) -> Result<Option<T>, D::Error> {
    T::deserialize(deserializer).map(Some)
}

impl RawModel {
    fn validate(self, path: &Utf8Path, origin: Location) -> Result<Model, ManifestError> {
        let located = |spanned: Spanned<String>| Located {
            at: Location::at(path, spanned.referenced.line(), spanned.referenced.column()),
            value: spanned.value,
        };
        ModelFields {
            repo: located(self.repo),
            reference: self.reference.map(located),
            include: self.include.map(|patterns| patterns.0),
            exclude: self.exclude.map(|patterns| patterns.0),
            repo_type: self.repo_type.map(located),
            name: self.name.map(located),
            origin,
        }
        .validate()
    }
}

/// A value and where it was written, so that validation errors point at it whatever the file
/// format.
#[derive(Debug, Clone)]
pub(crate) struct Located<T> {
    pub(crate) value: T,
    pub(crate) at: Location,
}

/// The fields of one model entry as read from `facehugger.yaml` or a Cargo.toml table, before
/// validation.
#[derive(Debug, Clone)]
pub(crate) struct ModelFields {
    pub(crate) repo: Located<String>,
    pub(crate) reference: Option<Located<String>>,
    pub(crate) include: Option<Vec<String>>,
    pub(crate) exclude: Option<Vec<String>>,
    pub(crate) repo_type: Option<Located<String>>,
    pub(crate) name: Option<Located<String>>,
    pub(crate) origin: Location,
}

impl ModelFields {
    /// Checks every field and builds the model; errors point at the field.
    pub(crate) fn validate(self) -> Result<Model, ManifestError> {
        let invalid = |at: &Location, what: String| ManifestError::new(at.clone(), what);
        let repo_type = match &self.repo_type {
            None => RepoType::Model,
            Some(kind) => RepoType::parse(&kind.value).ok_or_else(|| {
                invalid(
                    &kind.at,
                    format!(
                        "unknown repo_type `{}`: expected `model`, `dataset` or `space`",
                        shown(&kind.value, MAX_SHOWN_CHARS)
                    ),
                )
            })?,
        };
        let id = RepoId::new(&self.repo.value)
            .map_err(|why| invalid(&self.repo.at, format!("invalid repo: {why}")))?;
        let reference = match self.reference {
            None => DEFAULT_REF.to_owned(),
            Some(reference) => {
                validate_ref(&reference.value)
                    .map_err(|why| invalid(&reference.at, format!("invalid ref: {why}")))?;
                reference.value
            }
        };
        if let Some(name) = &self.name {
            validate_name(&name.value)
                .map_err(|why| invalid(&name.at, format!("invalid name: {why}")))?;
        }
        Ok(Model {
            repo: Repo { repo_type, id },
            reference,
            include: self.include,
            exclude: self.exclude,
            name: self.name.map(|name| name.value),
            origin: self.origin,
        })
    }
}

/// A model's `name` becomes a Rust constant: letters, digits and `_`, not starting with a digit.
fn validate_name(name: &str) -> Result<(), String> {
    let valid = name
        .chars()
        .next()
        .is_some_and(|c| c.is_ascii_alphabetic() || c == '_')
        && name.chars().all(|c| c.is_ascii_alphanumeric() || c == '_');
    if valid {
        Ok(())
    } else {
        Err(format!(
            "`{}` is not an identifier: use letters, digits and `_`, not starting with a digit",
            shown(name, MAX_SHOWN_CHARS)
        ))
    }
}

/// `include`/`exclude`: one pattern or a list of patterns, as `hf download` takes them.
struct Patterns(Vec<String>);

impl<'de> Deserialize<'de> for Patterns {
    fn deserialize<D: Deserializer<'de>>(deserializer: D) -> Result<Patterns, D::Error> {
        struct PatternsVisitor;
        impl<'de> Visitor<'de> for PatternsVisitor {
            type Value = Patterns;
            fn expecting(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
                f.write_str("a pattern string or a list of pattern strings")
            }
            fn visit_str<E: de::Error>(self, value: &str) -> Result<Patterns, E> {
                Ok(Patterns(vec![value.to_owned()]))
            }
            fn visit_unit<E: de::Error>(self) -> Result<Patterns, E> {
                Err(E::invalid_type(Unexpected::Other("nothing (null)"), &self))
            }
            fn visit_seq<A: SeqAccess<'de>>(self, mut seq: A) -> Result<Patterns, A::Error> {
                let mut patterns = Vec::new();
                while let Some(pattern) = seq.next_element::<String>()? {
                    patterns.push(pattern);
                }
                Ok(Patterns(patterns))
            }
        }
        deserializer.deserialize_any(PatternsVisitor)
    }
}
