//! The editors' tests: each edit's exact text, and what is refused.

use super::*;
use crate::manifest::Manifest;
use yaml::{yaml_quoted, yaml_scalar};

/// A `file:line:column[: key]` location, as edits report where an entry is.
fn location(text: &str) -> Location {
    let (place, key) = match text.split_once(": ") {
        Some((place, key)) => (place, Some(key)),
        None => (text, None),
    };
    let mut parts = place.split(':');
    let path = Utf8Path::new(parts.next().unwrap());
    let line = parts.next().unwrap().parse().unwrap();
    let column = parts.next().unwrap().parse().unwrap();
    let at = Location::at(path, line, column);
    match key {
        Some(key) => at.with_key(key),
        None => at,
    }
}

fn repo(id: &str) -> Repo {
    Repo::new(RepoType::Model, id).unwrap()
}

fn add_to_yaml(path: &Utf8Path, text: &str, model: &NewModel) -> Result<Edit, Error> {
    Document::new(path, text, None).add(model)
}

fn remove_from_yaml(
    path: &Utf8Path,
    text: &str,
    repo: &Repo,
    reference: Option<&str>,
) -> Result<Edit, Error> {
    Document::new(path, text, None).remove(&typed(repo), reference)
}

/// The repo with its type given, as `--repo-type` gives it.
fn typed(repo: &Repo) -> RemoveRepo {
    RemoveRepo {
        id: repo.id.clone(),
        repo_type: Some(repo.repo_type),
    }
}

/// The repo id alone: its type is the one the manifest declares.
fn untyped(id: &str) -> RemoveRepo {
    RemoveRepo {
        id: RepoId::new(id).unwrap(),
        repo_type: None,
    }
}

fn add_to_cargo_toml(
    path: &Utf8Path,
    text: &str,
    table: Table,
    model: &NewModel,
) -> Result<Edit, Error> {
    Document::new(path, text, Some(table)).add(model)
}

fn remove_from_cargo_toml(
    path: &Utf8Path,
    text: &str,
    table: Table,
    repo: &Repo,
    reference: Option<&str>,
) -> Result<Edit, Error> {
    Document::new(path, text, Some(table)).remove(&typed(repo), reference)
}

fn new(id: &str) -> NewModel {
    with(id, None, &[], &[])
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
        repo: Repo::new(RepoType::Dataset, "gpt2").unwrap(),
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
            at: location("facehugger.yaml:2:5")
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
                at: location("facehugger.yaml:2:5")
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
    let dataset = NewModel {
        repo: Repo::new(RepoType::Dataset, "a/b").unwrap(),
        ..new("a/b")
    };
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
    assert!(add_err("", &with("a/b", Some("a..b"), &[], &[])).starts_with("invalid ref:"));
    assert!(
        add_err("models:\r  - repo: a/b\r", &new("c/d"))
            .contains("a carriage return that does not end a line")
    );
}

#[test]
fn add_reports_where_the_entry_is() {
    let edit = add_to_yaml(Utf8Path::new(YAML), "models:\n  - repo: a/b\n", &new("c/d")).unwrap();
    assert_eq!(
        edit.change,
        Change::Added {
            at: location("facehugger.yaml:3:5")
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
    assert_eq!(models[0].origin.to_string(), "facehugger.yaml:4:5");
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
    let text =
        "models:\n  - repo: a/b\n  - repo: a/b\n    ref: v1\n  - {repo: c/d, repo_type: dataset}\n";
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

#[test]
fn without_a_type_remove_takes_the_type_the_id_is_declared_with() {
    let path = Utf8Path::new(YAML);
    let remove_untyped = |text: &str, id: &str, reference: Option<&str>| {
        Document::new(path, text, None).remove(&untyped(id), reference)
    };
    let text = "models:\n  - repo: a/b\n  - repo: c/d\n    repo_type: dataset\n";
    assert_eq!(
        remove_untyped(text, "c/d", None).unwrap().text,
        "models:\n  - repo: a/b\n"
    );
    assert_eq!(
        remove_untyped(text, "a/b", None).unwrap().text,
        "models:\n  - repo: c/d\n    repo_type: dataset\n"
    );
    assert_eq!(
        remove_untyped(text, "x/y", None).unwrap_err().to_string(),
        "`x/y` is not declared in facehugger.yaml"
    );
    // Declared with two types: which one must be said; at a ref only one has, it is clear.
    let both = "models:\n  - repo: c/d\n  - repo: c/d\n    repo_type: dataset\n    ref: v1\n  - repo: c/d\n    repo_type: space\n";
    assert_eq!(
        remove_untyped(both, "c/d", None).unwrap_err().to_string(),
        "`c/d` is declared with several repo types in facehugger.yaml (model, dataset, space): pass --repo-type to say which to remove"
    );
    assert_eq!(
        remove_untyped(both, "c/d", Some("v1")).unwrap().text,
        "models:\n  - repo: c/d\n  - repo: c/d\n    repo_type: space\n"
    );
    assert_eq!(
        remove_untyped(both, "c/d", Some("main"))
            .unwrap_err()
            .to_string(),
        "`c/d` at `main` is declared with several repo types in facehugger.yaml (model, space): pass --repo-type to say which to remove"
    );
    // A type given means that type only.
    let given = RemoveRepo {
        repo_type: Some(RepoType::Space),
        ..untyped("c/d")
    };
    assert_eq!(
        Document::new(path, both, None)
            .remove(&given, None)
            .unwrap()
            .text,
        "models:\n  - repo: c/d\n  - repo: c/d\n    repo_type: dataset\n    ref: v1\n"
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
        repo: Repo::new(RepoType::Dataset, "acme/data").unwrap(),
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
    let text =
        "[package]\nname = \"app\"\n\n\n[[package.metadata.facehugger.models]]\nrepo = \"a/b\"\n";
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
            at: location("Cargo.toml:4:1: package.metadata.facehugger.models[0]")
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
    let edit = add_to_cargo_toml(Utf8Path::new(TOML), text, Table::Workspace, &new("a/b")).unwrap();
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
