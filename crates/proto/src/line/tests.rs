use super::*;

#[test]
fn parse_table() {
    let cases: &[(&str, Command<'_>)] = &[
        ("", Command::Empty),
        ("  \r", Command::Empty),
        ("MSG hello world", Command::Msg("hello world")),
        ("msg  two  spaces ", Command::Msg(" two  spaces ")),
        ("Msg x\r", Command::Msg("x")),
        ("MSG", Command::Usage("MSG <text>")),
        ("MSG   ", Command::Usage("MSG <text>")),
        ("NICK bob", Command::Nick("bob")),
        ("nick bob\r", Command::Nick("bob")),
        ("NICK", Command::Usage("NICK <name>")),
        ("NICK a b", Command::Usage("NICK <name> (no spaces)")),
        ("WHO", Command::Who(None)),
        ("who #x", Command::Who(Some("#x"))),
        ("QUIT", Command::Quit("")),
        ("QUIT bye all", Command::Quit("bye all")),
        (
            "OPER admin secret",
            Command::Oper {
                name: "admin",
                password: "secret",
            },
        ),
        ("OPER admin", Command::Usage("OPER <name> <password>")),
        (
            "KILL bob go away",
            Command::Kill {
                nick: "bob",
                text: "go away",
            },
        ),
        ("KILL", Command::Usage("KILL <nick> <text>")),
        (
            "JOIN #a",
            Command::Join {
                channel: "#a",
                key: None,
            },
        ),
        (
            "JOIN #a k",
            Command::Join {
                channel: "#a",
                key: Some("k"),
            },
        ),
        ("JOIN", Command::Usage("JOIN <#channel> [key]")),
        ("PART", Command::Part),
        ("LIST", Command::List),
        ("TOPIC", Command::Topic(None)),
        ("TOPIC new topic", Command::Topic(Some("new topic"))),
        ("HISTORY", Command::History(None)),
        ("history  ", Command::History(None)),
        ("History 20\r", Command::History(Some("20"))),
        ("HISTORY x", Command::History(Some("x"))),
        ("HISTORY 1 2", Command::Usage("HISTORY [count]")),
        (
            "PM bob hi there",
            Command::Pm {
                nick: "bob",
                text: "hi there",
            },
        ),
        (
            "PRIVMSG bob hi",
            Command::Pm {
                nick: "bob",
                text: "hi",
            },
        ),
        ("PM bob", Command::Usage("PM <nick> <text>")),
        ("HELP", Command::Help),
        ("FOO", Command::Invalid),
        ("hello", Command::Invalid),
    ];
    for (line, want) in cases {
        assert_eq!(&parse(line), want, "{line:?}");
    }
}
