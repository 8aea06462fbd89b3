//! IRC casemapping and wildcard masks (`nick!user@host` bans, `WHO` masks...).
//!
//! The server advertises `CASEMAPPING=rfc1459`: ASCII letters fold to lower
//! case and, for historical Scandinavian reasons, `[]\~` are the "upper case"
//! forms of `{}|^`. Everything else (including all non-ASCII characters) is
//! compared exactly; we deliberately do not apply Unicode lowercasing so that
//! the folding is the same one every client computes.

/// Folds one character with the `rfc1459` casemapping.
///
/// `A`-`Z` become `a`-`z`, and `[`, `]`, `\`, `~` become `{`, `}`, `|`, `^`.
/// Any other character is returned unchanged.
#[inline]
pub fn fold_char(c: char) -> char {
    match c {
        'A'..='Z' => c.to_ascii_lowercase(),
        '[' => '{',
        ']' => '}',
        '\\' => '|',
        '~' => '^',
        _ => c,
    }
}

/// Returns `s` folded with the `rfc1459` casemapping (see [`fold_char`]).
///
/// Two nicknames or channel names are "the same" for IRC when their
/// casefolded forms are equal, so this is the key to use in lookup tables.
pub fn casefold(s: &str) -> String {
    s.chars().map(fold_char).collect()
}

/// [`casefold`], borrowing `s` when folding would not change it: map
/// lookups on the message path then allocate nothing.
pub fn folded(s: &str) -> std::borrow::Cow<'_, str> {
    if s.bytes()
        .any(|b| matches!(b, b'A'..=b'Z' | b'[' | b']' | b'\\' | b'~'))
    {
        std::borrow::Cow::Owned(casefold(s))
    } else {
        std::borrow::Cow::Borrowed(s)
    }
}

/// Compares two strings for equality under the `rfc1459` casemapping,
/// without allocating.
pub fn eq_casefold(a: &str, b: &str) -> bool {
    // Folding never changes a character's UTF-8 length (it only maps ASCII to
    // ASCII), so differing byte lengths can be rejected up front.
    a.len() == b.len() && a.chars().map(fold_char).eq(b.chars().map(fold_char))
}

/// Matches `subject` against an IRC wildcard `mask`, case-insensitively under
/// the `rfc1459` casemapping.
///
/// `*` matches any sequence of characters (including none) and `?` matches
/// exactly one character. There is no escape syntax and no character classes:
/// `[` is an ordinary character (that folds to `{`).
///
/// Runs in `O(mask.len() * subject.len())` worst case and `O(n)` for typical
/// masks: it uses the greedy two-pointer algorithm that only remembers the
/// most recent `*`, so hostile masks such as `*a*a*a*a*b` cannot trigger
/// exponential backtracking. Works on `char`s, so `?` matches one Unicode
/// scalar value, never half of one.
pub fn wildcard_match(mask: &str, subject: &str) -> bool {
    // Byte offsets into `mask` and `subject`; always on char boundaries
    // because we only ever advance them by a decoded char's length.
    let mut mi = 0usize;
    let mut si = 0usize;
    // After a `*`: where in the mask to resume, and the subject position the
    // star is currently assumed to stretch up to.
    let mut star: Option<(usize, usize)> = None;

    while let Some(sc) = char_at(subject, si) {
        if let Some(mc) = char_at(mask, mi) {
            if mc == '*' {
                mi += 1;
                star = Some((mi, si));
                continue;
            }
            if mc == '?' || fold_char(mc) == fold_char(sc) {
                mi += mc.len_utf8();
                si += sc.len_utf8();
                continue;
            }
        }
        // Mismatch (or mask exhausted): let the last star swallow one more
        // subject character and retry from just after it.
        match star {
            Some((star_mi, star_si)) => {
                let swallowed = char_at(subject, star_si).map_or(1, char::len_utf8);
                let next_si = star_si + swallowed;
                star = Some((star_mi, next_si));
                mi = star_mi;
                si = next_si;
            }
            None => return false,
        }
    }
    // Subject consumed: only trailing stars may remain in the mask.
    mask.get(mi..)
        .is_some_and(|rest| rest.bytes().all(|b| b == b'*'))
}

/// Decodes the char starting at byte offset `i`, or `None` at (or past) the end.
#[inline]
fn char_at(s: &str, i: usize) -> Option<char> {
    s.get(i..).and_then(|rest| rest.chars().next())
}

#[cfg(test)]
mod tests {
    use super::*;
    use proptest::prelude::*;

    /// Obviously-correct (and exponential) reference matcher for proptest.
    fn naive(mask: &[char], subject: &[char]) -> bool {
        match mask.split_first() {
            None => subject.is_empty(),
            Some(('*', rest)) => (0..=subject.len()).any(|i| naive(rest, &subject[i..])),
            Some((m, rest)) => match subject.split_first() {
                Some((s, srest)) => {
                    (*m == '?' || fold_char(*m) == fold_char(*s)) && naive(rest, srest)
                }
                None => false,
            },
        }
    }

    #[test]
    fn folding() {
        assert_eq!(casefold("Nick[A]\\~"), "nick{a}|^");
        assert_eq!(casefold("ÉTÉ"), "ÉtÉ", "non-ASCII is left alone");
        assert!(eq_casefold("FOO[]", "foo{}"));
        assert!(!eq_casefold("foo", "fooo"));
    }

    #[test]
    fn basic_matches() {
        assert!(wildcard_match("", ""));
        assert!(!wildcard_match("", "a"));
        assert!(wildcard_match("*", ""));
        assert!(wildcard_match("**", "abc"));
        assert!(wildcard_match("a*c", "abbbc"));
        assert!(!wildcard_match("a*c", "abbbd"));
        assert!(wildcard_match("?", "é"), "? matches one char, not one byte");
        assert!(!wildcard_match("??", "é"));
        assert!(wildcard_match("NICK[1]!*@*", "nick{1}!u@h"));
        assert!(wildcard_match("*ab", "aab"));
    }

    #[test]
    fn pathological_mask_is_fast() {
        let mask = "*a".repeat(50) + "b";
        let subject = "a".repeat(10_000);
        let t = std::time::Instant::now();
        assert!(!wildcard_match(&mask, &subject));
        assert!(t.elapsed() < std::time::Duration::from_secs(2));
    }

    proptest! {
        #[test]
        fn never_panics(mask in "\\PC*", subject in "\\PC*") {
            let _ = wildcard_match(&mask, &subject);
        }

        #[test]
        fn agrees_with_reference(mask in "[ab*?AB\\[{é]{0,8}", subject in "[abAB{\\[é]{0,8}") {
            let m: Vec<char> = mask.chars().collect();
            let s: Vec<char> = subject.chars().collect();
            prop_assert_eq!(wildcard_match(&mask, &subject), naive(&m, &s));
        }
    }
}
