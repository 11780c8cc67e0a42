//! Include/exclude patterns with the exact semantics of `hf download` (Python `fnmatchcase`).
//!
//! `hf download --include P --exclude Q` filters the repo's file list with huggingface_hub's
//! `filter_repo_objects`, which normalizes `\` to `/`, appends `*` to patterns ending in `/` and
//! then calls Python's `fnmatch.fnmatchcase`. This module reimplements that, so facehugger selects
//! exactly the same files. Notable consequences of those semantics:
//!
//! - matching is case-sensitive and works on Unicode characters;
//! - `*` matches any run of characters **including `/`**, and `**` is just `*`;
//! - `?` matches any one character, including `/`;
//! - `[seq]` / `[!seq]` are character sets; every other character, `{`, `}` and `\` included,
//!   is literal, and there is no anchoring trick: `./x` and `/x` never match `x`.
//!
//! Every string is a valid pattern, as in Python: a malformed set such as `[abc` is read as
//! literal text rather than rejected, so [`Pattern::new`] and [`FileFilter::new`] cannot fail.
//! Rejecting patterns Python accepts would make a manifest fail where `hf download` works.

use std::borrow::Cow;

/// One compiled `fnmatchcase` pattern, matched against a whole name.
///
/// This is the raw Python semantics: no `\` normalization and no trailing-`/` rule (those belong
/// to [`FileFilter`]).
#[derive(Debug, Clone, PartialEq, Eq)]
pub(crate) struct Pattern {
    source: String,
    tokens: Vec<Token>,
}

#[derive(Debug, Clone, PartialEq, Eq)]
enum Token {
    Literal(char),
    /// `?`
    AnyChar,
    /// `*` (consecutive stars are folded into one)
    Star,
    Set(CharSet),
}

/// A `[...]` set: inclusive ranges, single characters being one-character ranges.
#[derive(Debug, Clone, PartialEq, Eq)]
struct CharSet {
    negated: bool,
    ranges: Vec<(char, char)>,
}

impl CharSet {
    fn contains(&self, c: char) -> bool {
        let listed = self.ranges.iter().any(|&(lo, hi)| lo <= c && c <= hi);
        // An empty negated set therefore matches any character, and an empty plain set none.
        listed != self.negated
    }
}

impl Token {
    fn matches_char(&self, c: char) -> bool {
        match self {
            Token::Literal(l) => *l == c,
            Token::AnyChar => true,
            Token::Set(set) => set.contains(c),
            Token::Star => false,
        }
    }
}

impl Pattern {
    /// Compiles a pattern. Never fails: Python accepts every string as a pattern.
    pub(crate) fn new(pattern: &str) -> Pattern {
        let chars: Vec<char> = pattern.chars().collect();
        let mut tokens = Vec::new();
        let mut i = 0;
        while i < chars.len() {
            match chars[i] {
                '*' => {
                    if tokens.last() != Some(&Token::Star) {
                        tokens.push(Token::Star);
                    }
                    i += 1;
                }
                '?' => {
                    tokens.push(Token::AnyChar);
                    i += 1;
                }
                '[' => match parse_set(&chars, i) {
                    Some((set, next)) => {
                        tokens.push(Token::Set(set));
                        i = next;
                    }
                    // No closing `]`: the `[` is literal and what follows is read normally.
                    None => {
                        tokens.push(Token::Literal('['));
                        i += 1;
                    }
                },
                c => {
                    tokens.push(Token::Literal(c));
                    i += 1;
                }
            }
        }
        Pattern {
            source: pattern.to_owned(),
            tokens,
        }
    }

    /// Whether the whole of `name` matches, like Python's `fnmatch.fnmatchcase(name, pattern)`.
    pub(crate) fn matches(&self, name: &str) -> bool {
        // Greedy matching that, on a mismatch, lets the last `*` swallow one more character.
        // Only the last star needs revisiting, so this is O(len(name) * len(pattern)) at worst.
        let tokens = &self.tokens;
        let (mut t, mut n) = (0, 0);
        // (token index after the last star, byte offset in `name` that star currently stops at)
        let mut retry: Option<(usize, usize)> = None;
        while let Some(c) = name[n..].chars().next() {
            match tokens.get(t) {
                Some(Token::Star) => {
                    t += 1;
                    retry = Some((t, n));
                    continue;
                }
                Some(token) if token.matches_char(c) => {
                    t += 1;
                    n += c.len_utf8();
                    continue;
                }
                _ => {}
            }
            let Some((star_next, star_end)) = retry else {
                return false;
            };
            let swallowed = name[star_end..].chars().next().map_or(0, char::len_utf8);
            t = star_next;
            n = star_end + swallowed;
            retry = Some((star_next, n));
        }
        tokens[t..].iter().all(|token| *token == Token::Star)
    }
}

/// Parses the set whose `[` is at `chars[open]`, returning it and the index after its `]`,
/// or `None` if it is not closed.
fn parse_set(chars: &[char], open: usize) -> Option<(CharSet, usize)> {
    let negated = chars.get(open + 1) == Some(&'!');
    let start = open + 1 + usize::from(negated);
    // A `]` right at the start is a member, not the end of the set.
    let search_from = if chars.get(start) == Some(&']') {
        start + 1
    } else {
        start
    };
    let close = search_from + chars.get(search_from..)?.iter().position(|&c| c == ']')?;
    let content = &chars[start..close];

    // Split the content at the hyphens that form ranges, the way Python's `fnmatch.translate`
    // does: the first character is never a range operator, and the character right after a
    // range's end is not one either (so `a-b-c` is `a` to `b`, `-` and `c`, as in a regex).
    // Each boundary between two chunks is a range from the last char of one to the first of the
    // next; every other character is a literal member.
    let mut chunks: Vec<Vec<char>> = Vec::new();
    let mut chunk_start = 0;
    let mut search = 1;
    while let Some(offset) = content
        .get(search..)
        .and_then(|rest| rest.iter().position(|&c| c == '-'))
    {
        let hyphen = search + offset;
        chunks.push(content[chunk_start..hyphen].to_vec());
        chunk_start = hyphen + 1;
        search = hyphen + 3;
    }
    let last = &content[chunk_start..];
    match chunks.last_mut() {
        // A trailing `-` is literal.
        Some(previous) if last.is_empty() => previous.push('-'),
        _ => chunks.push(last.to_vec()),
    }

    // Python drops reversed ranges such as `z-a` (an error in `re`) by joining the two chunks
    // around them without the range's endpoints: `[az-bc]` is `[ac]`, and `[z-a]` is empty.
    for k in (1..chunks.len()).rev() {
        let (Some(&end), Some(&begin)) = (chunks[k - 1].last(), chunks[k].first()) else {
            continue;
        };
        if end > begin {
            let next = chunks.remove(k);
            let previous = &mut chunks[k - 1];
            previous.pop();
            previous.extend_from_slice(&next[1..]);
        }
    }

    // Python then builds a regex bracket expression from the chunks joined by range hyphens
    // (`None` here) and only then looks for a leading `!`. So a set whose reversed first range
    // was dropped can become negated: `[a-Z!x]` is `[!x]`.
    let mut members: Vec<Option<char>> = Vec::new();
    for (k, chunk) in chunks.iter().enumerate() {
        if k > 0 {
            members.push(None);
        }
        members.extend(chunk.iter().copied().map(Some));
    }
    let mut negated = negated;
    if !negated && members.first() == Some(&Some('!')) {
        negated = true;
        members.remove(0);
    }

    // Read the members as `re` reads a bracket expression.
    let mut ranges = Vec::new();
    let mut i = 0;
    while i < members.len() {
        match members[i..] {
            [Some(lo), None, Some(hi), ..] => {
                ranges.push((lo, hi));
                i += 3;
            }
            [Some(c), ..] => {
                ranges.push((c, c));
                i += 1;
            }
            // A range hyphen with no start (it followed the `!` removed above) is a literal `-`.
            _ => {
                ranges.push(('-', '-'));
                i += 1;
            }
        }
    }
    Some((CharSet { negated, ranges }, close + 1))
}

/// Python's `fnmatch.fnmatchcase(name, pattern)`. Compiles the pattern on each call: use
/// `Pattern` to match one pattern many times.
pub fn fnmatchcase(name: &str, pattern: &str) -> bool {
    Pattern::new(pattern).matches(name)
}

/// A compiled include/exclude filter, equivalent to huggingface_hub's `filter_repo_objects`
/// (what `hf download --include ... --exclude ...` uses). The default keeps every file.
#[derive(Debug, Clone, Default)]
pub struct FileFilter {
    /// `None` keeps every path; `Some(vec![])` keeps none.
    include: Option<Vec<Pattern>>,
    exclude: Vec<Pattern>,
}

impl FileFilter {
    /// Compiles include and exclude patterns.
    ///
    /// `include: None` keeps every file while `Some(&[])` keeps none (as in huggingface_hub);
    /// `exclude: None` and `Some(&[])` both exclude nothing. A path is kept if it matches some
    /// include pattern and no exclude pattern: exclude wins.
    pub fn new(include: Option<&[String]>, exclude: Option<&[String]>) -> FileFilter {
        let compile = |patterns: &[String]| {
            patterns
                .iter()
                .map(|p| Pattern::new(&hf_pattern(p)))
                .collect()
        };
        FileFilter {
            include: include.map(compile),
            exclude: exclude.map(compile).unwrap_or_default(),
        }
    }

    /// Whether `path` (a repo-relative file path such as `sub/config.json`) is selected.
    pub fn matches(&self, path: &str) -> bool {
        let path = normalize_separators(path);
        let included = match &self.include {
            None => true,
            Some(patterns) => patterns.iter().any(|p| p.matches(&path)),
        };
        included && !self.exclude.iter().any(|p| p.matches(&path))
    }
}

/// huggingface_hub treats `\` as a path separator in patterns and paths alike.
fn normalize_separators(s: &str) -> Cow<'_, str> {
    if s.contains('\\') {
        Cow::Owned(s.replace('\\', "/"))
    } else {
        Cow::Borrowed(s)
    }
}

/// A user pattern as huggingface_hub rewrites it: `\` to `/`, and a directory (trailing `/`)
/// matches everything below it.
fn hf_pattern(pattern: &str) -> String {
    let mut pattern = normalize_separators(pattern).into_owned();
    if pattern.ends_with('/') {
        pattern.push('*');
    }
    pattern
}

#[cfg(test)]
mod tests {
    use super::{FileFilter, Pattern, fnmatchcase};

    #[test]
    fn stars_and_question_marks_cross_slashes() {
        assert!(fnmatchcase("sub/dir/config.json", "*.json"));
        assert!(fnmatchcase("a/b", "a?b"));
        assert!(fnmatchcase("", "*"));
        assert!(fnmatchcase("", "***"));
        assert!(!fnmatchcase("", "?"));
        assert!(!fnmatchcase("a.bin", "**/*.bin"));
        assert!(
            fnmatchcase("line\nbreak", "line?break"),
            "`?` matches a newline (DOTALL)"
        );
        assert!(
            fnmatchcase("abcbcd", "*bc*d"),
            "needs the star to backtrack"
        );
    }

    #[test]
    fn sets() {
        assert!(fnmatchcase("]", "[]]"));
        assert!(fnmatchcase("a", "[!]]"));
        assert!(!fnmatchcase("]", "[!]]"));
        assert!(fnmatchcase("[]", "[]"), "unclosed `[` is literal");
        assert!(fnmatchcase("[!]", "[!]"), "unclosed `[!` is literal");
        assert!(
            fnmatchcase("[ab", "[a*"),
            "text after an unclosed `[` is still parsed"
        );
        assert!(fnmatchcase("^", "[^a]"), "`^` is not a negation");
        assert!(fnmatchcase("-", "[a-]") && fnmatchcase("-", "[-a]"));
        assert!(
            !fnmatchcase("b", "[z-a]") && !fnmatchcase("z", "[z-a]"),
            "reversed range is empty"
        );
        assert!(
            fnmatchcase("b", "[!z-a]"),
            "negated empty set matches anything"
        );
        assert!(fnmatchcase("c", "[az-bc]") && !fnmatchcase("z", "[az-bc]"));
        assert!(
            fnmatchcase("-", "[a-b-c]")
                && fnmatchcase("c", "[a-b-c]")
                && !fnmatchcase("d", "[a-b-c]")
        );
        assert!(fnmatchcase("\\", "[\\]") && fnmatchcase("é", "[à-ÿ]"));
        // Dropping the reversed `a-Z` leaves a leading `!`, which Python then reads as negation.
        assert!(
            fnmatchcase("b", "[a-Z!x]")
                && fnmatchcase("!", "[a-Z!x]")
                && !fnmatchcase("x", "[a-Z!x]")
        );
        assert!(
            !fnmatchcase("-", "[a-Z!-z]")
                && !fnmatchcase("z", "[a-Z!-z]")
                && fnmatchcase("m", "[a-Z!-z]")
        );
    }

    #[test]
    fn long_inputs_do_not_blow_up() {
        let name = "a".repeat(10_000);
        assert!(!Pattern::new(&format!("{}b", "*a".repeat(50))).matches(&name));
        assert!(!fnmatchcase(&name, "*a*a*a*a*a*a*a*a*a*a*a*a*b"));
        assert!(fnmatchcase(&name, "*a*a*a*a*a*a*a*a*a*a*a*a*"));
    }

    #[test]
    fn filter_rules() {
        let strings = |list: &[&str]| list.iter().map(|s| s.to_string()).collect::<Vec<_>>();
        assert!(FileFilter::new(None, None).matches("anything"));
        assert!(FileFilter::default().matches("anything"));
        assert!(!FileFilter::new(Some(&[]), None).matches("anything"));
        let dir = FileFilter::new(Some(&strings(&["sub\\"])), None);
        assert!(dir.matches("sub/x/y.bin") && dir.matches("sub\\x.bin") && !dir.matches("sub"));
        let both = FileFilter::new(Some(&strings(&["*.json"])), Some(&strings(&["config*"])));
        assert!(both.matches("tokenizer.json") && !both.matches("config.json"));
    }

    /// Every row of `tests/fixtures/patterns/cases.tsv`, generated by huggingface_hub itself.
    #[test]
    fn conformance_with_huggingface_hub() {
        let table = include_str!("../tests/fixtures/patterns/cases.tsv");
        let parse_list = |column: &str| -> Option<Vec<String>> {
            (column != "-")
                .then(|| serde_json::from_str(column).expect("pattern column is a JSON list"))
        };
        let mut cases = 0;
        let mut mismatches = Vec::new();
        for line in table
            .lines()
            .filter(|l| !l.starts_with('#') && !l.is_empty())
        {
            let columns: Vec<&str> = line.split('\t').collect();
            let [include, exclude, path, expected] = columns[..] else {
                panic!("malformed row: {line:?}");
            };
            let expected: bool = expected.parse().expect("expected is true or false");
            let filter = FileFilter::new(
                parse_list(include).as_deref(),
                parse_list(exclude).as_deref(),
            );
            if filter.matches(path) != expected {
                mismatches.push(format!(
                    "include {include} exclude {exclude} path {path:?}: expected {expected}"
                ));
            }
            cases += 1;
        }
        assert!(
            mismatches.is_empty(),
            "{} mismatches:\n{}",
            mismatches.len(),
            mismatches.join("\n")
        );
        assert!(cases >= 150, "only {cases} cases");
    }
}
