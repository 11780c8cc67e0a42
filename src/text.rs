//! Text for messages: values quoted safely, counts with their nouns, and where in a file a
//! byte that is not UTF-8 sits.

/// Longest user value (repo id, ref, lock field) quoted whole in a message.
pub(crate) const MAX_SHOWN_CHARS: usize = 100;

/// Longest parser message (serde-saphyr's, serde_json's) printed whole: some quote the input.
pub(crate) const MAX_MESSAGE_CHARS: usize = 300;

/// `text` made safe to print inside a one-line message: control and bidirectional-formatting
/// characters escaped (`\u{1b}`), and, beyond `max_chars` characters (escapes included), the
/// middle cut out. A manifest, a lock or a server can say anything; a message must not carry a
/// terminal escape sequence or a megabyte of it.
pub(crate) fn shown(text: &str, max_chars: usize) -> String {
    let escaped = |c: char| {
        let (plain, escape) = if is_unprintable(c) {
            (None, Some(c.escape_default()))
        } else {
            (Some(c), None)
        };
        plain.into_iter().chain(escape.into_iter().flatten())
    };
    let mut length = 0;
    if text.chars().all(|c| {
        length += escaped(c).count();
        length <= max_chars
    }) {
        return text.chars().flat_map(escaped).collect();
    }
    // Whole characters from each end, as many as fit.
    let take = |chars: &mut dyn Iterator<Item = char>, budget: usize| {
        let mut used = 0;
        let mut kept = Vec::new();
        for c in chars {
            used += escaped(c).count();
            if used > budget {
                break;
            }
            kept.push(c);
        }
        kept
    };
    let head_budget = max_chars * 2 / 3;
    let head = take(&mut text.chars(), head_budget);
    let mut tail = take(
        &mut text.chars().rev(),
        max_chars.saturating_sub(head_budget + 1),
    );
    tail.reverse();
    let mut out: String = head.into_iter().flat_map(escaped).collect();
    out.push('…');
    out.extend(tail.into_iter().flat_map(escaped));
    out
}

/// Control characters, and the invisible marks that reorder the text around them.
fn is_unprintable(c: char) -> bool {
    let bidi =
        matches!(c, '\u{200e}' | '\u{200f}' | '\u{202a}'..='\u{202e}' | '\u{2066}'..='\u{2069}');
    c.is_control() || bidi
}

/// `1 file`, `3 files`.
pub(crate) fn plural(count: usize, noun: &str) -> String {
    if count == 1 {
        format!("1 {noun}")
    } else {
        format!("{count} {noun}s")
    }
}

/// Where the first byte that is not UTF-8 sits (line and column, from 1), and what to say of it.
pub(crate) fn not_utf8(bytes: &[u8], error: &std::str::Utf8Error) -> (u64, u64, String) {
    let valid = &bytes[..error.valid_up_to()];
    let line = valid.iter().filter(|&&byte| byte == b'\n').count() + 1;
    let line_start = valid
        .iter()
        .rposition(|&byte| byte == b'\n')
        .map_or(0, |at| at + 1);
    let column = String::from_utf8_lossy(&valid[line_start..])
        .chars()
        .count()
        + 1;
    let byte = bytes.get(error.valid_up_to()).copied().unwrap_or_default();
    (
        line as u64,
        column as u64,
        format!("not UTF-8 text (byte 0x{byte:02x}); save it as UTF-8"),
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shown_values_are_printable_and_short() {
        assert_eq!(shown("acme/tiny", 100), "acme/tiny");
        assert_eq!(
            shown("a\u{1b}[2J\tb\u{202e}", 100),
            "a\\u{1b}[2J\\tb\\u{202e}"
        );
        let long = shown(&"x".repeat(1_000_000), 100);
        assert_eq!(long.chars().count(), 100);
        assert_eq!(long.chars().nth(66), Some('…'));
        assert_eq!(shown("aé", 1), "…");
        let escapes = shown(&"\u{1b}".repeat(1000), 100);
        assert!(escapes.chars().count() <= 100, "{escapes}");
        assert!(escapes.starts_with("\\u{1b}") && escapes.ends_with("\\u{1b}"));
    }

    #[test]
    fn invalid_utf8_is_placed_by_line_and_column() {
        let error = String::from_utf8(b"models:\n  - r\xc3\xa9po: \xff\n".to_vec()).unwrap_err();
        assert_eq!(
            not_utf8(error.as_bytes(), &error.utf8_error()),
            (
                2,
                11,
                "not UTF-8 text (byte 0xff); save it as UTF-8".to_owned()
            )
        );
    }

    #[test]
    fn counts_carry_their_noun() {
        assert_eq!(plural(1, "file"), "1 file");
        assert_eq!(plural(0, "file"), "0 files");
        assert_eq!(plural(3, "download"), "3 downloads");
    }
}
