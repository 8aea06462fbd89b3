use super::*;
use proptest::prelude::*;

fn p(line: &str) -> Message<'_> {
    match Message::parse(line) {
        Ok(m) => m,
        Err(e) => panic!("{line:?} failed to parse: {e}"),
    }
}

fn w(m: &Message<'_>) -> String {
    m.to_string()
}

#[test]
fn trailing_colon_only_gives_empty_param() {
    assert_eq!(p("PRIVMSG #c :").params, ["#c", ""]);
    assert_eq!(p("AWAY :").params, [""]);
    assert_eq!(w(&Message::new("AWAY", [""])), "AWAY :");
}

#[test]
fn double_and_trailing_spaces() {
    let m = p(":src  MODE   #c  +o   nick  ");
    assert_eq!(m.source.as_deref(), Some("src"));
    assert_eq!(m.command, "MODE");
    assert_eq!(m.params, ["#c", "+o", "nick"]);
}

#[test]
fn leading_spaces_are_tolerated() {
    let m = p("   PING x");
    assert_eq!(m.command, "PING");
    assert_eq!(m.params, ["x"]);
    let m = p("  @a=b  :s  CMD");
    assert_eq!(m.tag("a"), Some("b"));
    assert_eq!(m.source.as_deref(), Some("s"));
}

#[test]
fn tags_with_escapes() {
    let m = p(r"@a=x\:y\sz\\w\r\n;b=\q;c=end\ CMD");
    assert_eq!(m.tag("a"), Some("x;y z\\w\r\n"));
    assert_eq!(m.tag("b"), Some("q"), "unknown escape keeps the char");
    assert_eq!(m.tag("c"), Some("end"), "lone trailing backslash dropped");
    // Re-serialising escapes canonically.
    assert_eq!(w(&m), r"@a=x\:y\sz\\w\r\n;b=q;c=end CMD");
}

#[test]
fn empty_tag_value_is_no_value() {
    let m = p("@a=;b CMD");
    assert_eq!(m.tag("a"), Some(""));
    assert_eq!(m.tag("b"), Some(""));
    assert_eq!(w(&m), "@a;b CMD");
}

#[test]
fn duplicate_tags_last_wins() {
    let m = p("@a=1;b=2;a=3 CMD");
    assert_eq!(m.tags, [Tag::new("a", "3"), Tag::new("b", "2")]);
    // Same through the hash-map path.
    let many: Vec<String> = (0..40).map(|i| format!("k{}={i}", i % 20)).collect();
    let line = format!("@{} CMD", many.join(";"));
    let m = p(&line);
    assert_eq!(m.tags.len(), 20);
    assert_eq!(m.tag("k3"), Some("23"));
    assert_eq!(m.tags.first().map(|t| &*t.key), Some("k0"));
}

#[test]
fn trailing_semicolon_in_tags_is_tolerated() {
    assert_eq!(p("@a=1; CMD").tags, [Tag::new("a", "1")]);
}

#[test]
fn colon_inside_middle_param_is_literal() {
    let m = p("CMD a:b c: :d e");
    assert_eq!(m.params, ["a:b", "c:", "d e"]);
    assert_eq!(w(&m), "CMD a:b c: :d e");
}

#[test]
fn last_param_colon_rules() {
    assert_eq!(w(&Message::new("X", ["a", "b"])), "X a b");
    assert_eq!(w(&Message::new("X", ["a", ":b"])), "X a ::b");
    assert_eq!(w(&Message::new("X", ["a", "b c"])), "X a :b c");
    assert_eq!(w(&Message::new("X", ["a:b"])), "X a:b");
}

#[test]
fn invalid_tag_keys() {
    for line in [
        "@ CMD",
        "@;a CMD",
        "@a;;b CMD",
        "@=v CMD",
        "@+ CMD",
        "@a_b=1 CMD",
        "@/x CMD",
        "@v/ CMD",
        "@a/b/c CMD",
        "@é=1 CMD",
    ] {
        assert!(
            matches!(Message::parse(line), Err(ParseError::InvalidTagKey { .. })),
            "{line:?}"
        );
    }
    let m = p("@+example.com/draft-x=1;+typing=active CMD");
    assert_eq!(m.tag("+example.com/draft-x"), Some("1"));
}

#[test]
fn errors() {
    assert_eq!(Message::parse(""), Err(ParseError::Empty));
    assert_eq!(Message::parse("    "), Err(ParseError::Empty));
    assert_eq!(Message::parse(":src"), Err(ParseError::MissingCommand));
    assert_eq!(Message::parse(":src   "), Err(ParseError::MissingCommand));
    assert_eq!(Message::parse("@a=b"), Err(ParseError::MissingCommand));
    assert_eq!(Message::parse("@a=b :s "), Err(ParseError::MissingCommand));
    assert_eq!(
        Message::parse("PRIVMSG #a :x\ny"),
        Err(ParseError::ForbiddenChar { byte: b'\n' })
    );
    assert!(Message::parse("PING\0").is_err());
    assert!(Message::parse("PING\r").is_err());
}

#[test]
fn tag_limits() {
    let data = format!("a={}", "x".repeat(MAX_CLIENT_TAG_DATA_LEN - 2));
    assert_eq!(data.len(), MAX_CLIENT_TAG_DATA_LEN);
    let line = format!("@{data} CMD");
    assert!(Message::parse_client(&line).is_ok());
    let line = format!("@{data}x CMD");
    assert!(matches!(
        Message::parse_client(&line),
        Err(ParseError::TagsTooLong { .. })
    ));
    assert!(Message::parse(&line).is_ok());
    let section_ok = format!("@a={} CMD", "x".repeat(MAX_TAGS_SECTION_LEN - 4));
    assert!(Message::parse(&section_ok).is_ok());
    let too_big = format!("@a={} CMD", "x".repeat(MAX_TAGS_SECTION_LEN - 3));
    assert!(matches!(
        Message::parse(&too_big),
        Err(ParseError::TagsTooLong { .. })
    ));
}

#[test]
fn long_input_and_many_params() {
    let params: Vec<String> = (0..100).map(|i| format!("p{i}")).collect();
    let line = format!("CMD {} :{}", params.join(" "), "y ".repeat(50_000));
    let m = p(&line);
    assert_eq!(m.params.len(), 101, "no 15-parameter cap in the parser");
    assert_eq!(w(&m), line);
}

#[test]
fn verb_helpers() {
    let m = p("privmsg #a b");
    assert_eq!(m.verb(), "PRIVMSG");
    assert!(m.is_command("PRIVMSG"));
    assert!(matches!(p("PING").verb(), Cow::Borrowed("PING")));
    assert_eq!(m.param(1), Some("b"));
    assert_eq!(m.param(2), None);
}

#[test]
fn parse_borrows_from_the_line() {
    let line = r"@a=plain;b=esc\saped :n!u@h PRIVMSG #c :hello there";
    let m = p(line);
    let borrowed = |c: &Cow<'_, str>| matches!(c, Cow::Borrowed(_));
    assert!(borrowed(&m.command));
    assert!(m.source.as_ref().is_some_and(borrowed));
    assert!(m.params.iter().all(borrowed));
    assert!(m.tags.iter().all(|t| borrowed(&t.key)));
    assert!(borrowed(&m.tags[0].value));
    assert_eq!(m.tags[1].value, "esc aped", "unescaping has to copy");
    // Detached copies compare equal, and `FromStr` gives the same.
    let owned = m.clone().into_owned();
    assert_eq!(owned, m);
    assert_eq!(line.parse::<Message<'static>>(), Ok(owned));
}

#[test]
fn empty_source_is_none() {
    let m = p(": PING x");
    assert_eq!(m.source, None);
    assert_eq!(m.command, "PING");
}

#[test]
fn builder_and_sanitising() {
    let m = Message::new("PRIVMSG", ["#c"])
        .with_param("hi\r\nQUIT :pwned\0")
        .with_source("n!u@h")
        .with_tag("time", "2024")
        .with_tag("msgid", "a b\0")
        .with_tag("time", "2025");
    let s = w(&m);
    assert_eq!(
        s,
        "@time=2025;msgid=a\\sb\\s :n!u@h PRIVMSG #c :hi  QUIT :pwned "
    );
    assert!(!s.bytes().any(|b| matches!(b, b'\0' | b'\r' | b'\n')));
    // A bare last param that only gains a space through sanitising still
    // gets the trailing colon, so it stays one parameter.
    assert_eq!(w(&Message::new("X", ["a\rb"])), "X :a b");
    let mut line = Vec::new();
    Message::new("PING", ["x"]).write_line_to(&mut line);
    assert_eq!(line, b"PING x\r\n");
    assert_eq!(sanitize_text("a\r\nb\0"), "a  b ");
    assert!(matches!(sanitize_text("clean"), Cow::Borrowed(_)));
}

#[test]
fn userhost_and_hostnames() {
    let u = split_userhost("n!u@h");
    assert_eq!((u.nick, u.user, u.host), ("n", Some("u"), Some("h")));
    let u = split_userhost("irc.example.com");
    assert_eq!((u.nick, u.user, u.host), ("irc.example.com", None, None));
    assert!(is_valid_hostname("a.b"));
    assert!(!is_valid_hostname("a..b"));
    assert!(!is_valid_hostname(".a.b"));
    assert!(!is_valid_hostname(&format!("{}.com", "a".repeat(64))));
}

// --- property tests ---------------------------------------------------

fn tag_key() -> impl Strategy<Value = String> {
    "\\+?([a-z0-9.-]{1,6}/)?[a-zA-Z0-9-]{1,8}"
}

fn well_formed() -> impl Strategy<Value = Message<'static>> {
    (
        prop::collection::btree_map(tag_key(), "[a-z;\\\\ \r\n=:é\t]{0,10}", 0..5),
        prop::option::of("[!-~é]{1,15}"),
        "[A-Za-z0-9]{1,10}",
        prop::collection::vec("[!-9;-~é\t][!-~é\t]{0,10}", 0..20),
        prop::option::of("[ -~é\t]{0,15}"),
    )
        .prop_map(|(tags, source, command, mut params, trailing)| {
            params.extend(trailing);
            Message {
                tags: tags.into_iter().map(|(k, v)| Tag::new(k, v)).collect(),
                source: source.map(Cow::Owned),
                command: Cow::Owned(command),
                params: params.into_iter().map(Cow::Owned).collect(),
            }
        })
}

proptest! {
    #[test]
    fn parse_never_panics(s in any::<String>()) {
        let _ = Message::parse(&s);
        let _ = Message::parse_client(&s);
    }

    #[test]
    fn parse_never_panics_irc_alphabet(s in "[@:;= a-c\\\\/+.\r\né-]{0,60}") {
        let _ = Message::parse(&s);
    }

    #[test]
    fn write_then_parse_roundtrips(m in well_formed()) {
        let mut buf = Vec::new();
        m.write_to(&mut buf);
        prop_assert!(!buf.iter().any(|&b| is_forbidden(b)));
        let line = String::from_utf8(buf).map_err(|e| TestCaseError::fail(e.to_string()))?;
        prop_assert_eq!(Message::parse(&line), Ok(m));
    }

    #[test]
    fn parse_write_parse_is_stable(s in "[@:;= a-c\\\\/+.é-]{0,60}") {
        if let Ok(m) = Message::parse(&s) {
            let line = m.to_string();
            prop_assert_eq!(Message::parse(&line), Ok(m));
        }
    }
}
