//! Property tests: random scripts of commands from several clients on both
//! dialects never panic and always leave the network consistent.

use bavard_core::sim::Sim;
use proptest::prelude::*;

#[derive(Clone, Debug)]
enum Step {
    Connect(bool),
    Line(usize, String),
    Raw(usize, Vec<u8>),
    Disconnect(usize),
    Drain,
}

fn nick() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "a", "b", "c", "A", "b[", "B{", "guest1", "x-1", "1bad", "",
    ])
    .prop_map(String::from)
}

fn chan() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "#a", "#b", "#A", "#lobby", "#Lobby", "bad", "#a,#b", "0",
    ])
    .prop_map(String::from)
}

fn text() -> impl Strategy<Value = String> {
    prop::sample::select(vec![
        "hi",
        "",
        ":x y",
        "é",
        "a b c",
        "\u{1}ACTION waves\u{1}",
    ])
    .prop_map(String::from)
}

fn irc_line() -> impl Strategy<Value = String> {
    prop_oneof![
        nick().prop_map(|n| format!("NICK {n}")),
        Just("USER u 0 * :Real".to_string()),
        Just("CAP LS 302".to_string()),
        Just("CAP REQ :echo-message message-tags server-time multi-prefix labeled-response batch draft/multiline".to_string()),
        Just("CAP REQ :draft/channel-rename extended-monitor away-notify draft/read-marker draft/message-redaction draft/metadata-3 draft/chathistory".to_string()),
        Just("CAP END".to_string()),
        chan().prop_map(|c| format!("JOIN {c}")),
        (chan(), text()).prop_map(|(c, t)| format!("PART {c} :{t}")),
        (chan(), text()).prop_map(|(c, t)| format!("PRIVMSG {c} :{t}")),
        (nick(), text()).prop_map(|(n, t)| format!("@label=l1;+t=v PRIVMSG {n} :{t}")),
        (chan(), text()).prop_map(|(c, t)| format!("NOTICE {c} :{t}")),
        (chan(), text()).prop_map(|(c, t)| format!("TOPIC {c} :{t}")),
        (chan(), prop::sample::select(vec!["+o", "-o", "+v", "+b", "-b", "+i", "+k", "-k", "+l", "+mnst", "+e", "+I", "+x", "-l", "+C", "+b m:"]), nick())
            .prop_map(|(c, m, n)| format!("MODE {c} {m} {n}")),
        nick().prop_map(|n| format!("MODE {n} +iwB")),
        (chan(), nick()).prop_map(|(c, n)| format!("KICK {c} {n} :bye")),
        (chan(), chan(), text()).prop_map(|(a, b, t)| format!("RENAME {a} {b} :{t}")),
        (chan(), text()).prop_map(|(c, t)| format!("PRIVMSG @{c} :{t}")),
        (prop_oneof![chan(), nick()], 1u64..40).prop_map(|(t, id)| format!("REDACT {t} {id} :r")),
        (chan(), prop::sample::select(vec![
            "LATEST {c} * 5", "BEFORE {c} msgid=9 2", "AFTER {c} msgid=3 9", "AROUND {c} msgid=5 4",
            "BETWEEN {c} msgid=1 msgid=30 3", "BETWEEN {c} msgid=30 timestamp=2020-01-01T00:00:00.000Z 3",
            "LATEST {c} *", "BETWEEN {c} *", "TARGETS timestamp=2000-01-01T00:00:00.000Z timestamp=2999-01-01T00:00:00.000Z 3",
            "TARGETS x", "NOPE",
        ]))
            .prop_map(|(c, q)| format!("CHATHISTORY {}", q.replace("{c}", &c))),
        (prop_oneof![chan(), nick(), Just("*".to_string())], prop::sample::select(vec![
            "SET k :v", "SET k", "SET Bad :v", "GET k x", "LIST", "CLEAR", "SUB k x", "UNSUB k", "SUBS", "SYNC", "NOPE",
        ]))
            .prop_map(|(t, sub)| format!("METADATA {t} {sub}")),
        (prop_oneof![chan(), nick()], prop::sample::select(vec!["", " *", " timestamp=2020-01-01T00:00:00.000Z"]))
            .prop_map(|(t, ts)| format!("MARKREAD {t}{ts}")),
        (nick(), chan()).prop_map(|(n, c)| format!("INVITE {n} {c}")),
        chan().prop_map(|c| format!("WHO {c} %tcnf,42")),
        nick().prop_map(|n| format!("WHOIS {n}")),
        nick().prop_map(|n| format!("WHOWAS {n}")),
        chan().prop_map(|c| format!("NAMES {c}")),
        Just("LIST >0".to_string()),
        text().prop_map(|t| format!("AWAY :{t}")),
        nick().prop_map(|n| format!("MONITOR + {n}")),
        Just("MONITOR S".to_string()),
        (nick(), chan()).prop_map(|(n, c)| format!("BATCH +b1 draft/multiline {c}\r\n@batch=b1 PRIVMSG {c} :one\r\n@batch=b1;draft/multiline-concat PRIVMSG {c} :two\r\nBATCH -b1\r\nISON {n}")),
        Just("SETNAME :new name".to_string()),
        nick().prop_map(|n| format!("KILL {n} :x")),
        Just("PING :t".to_string()),
        text().prop_map(|t| format!("QUIT :{t}")),
    ]
}

fn line_line() -> impl Strategy<Value = String> {
    prop_oneof![
        text().prop_map(|t| format!("MSG {t}")),
        nick().prop_map(|n| format!("NICK {n}")),
        chan().prop_map(|c| format!("JOIN {c}")),
        Just("PART".to_string()),
        Just("WHO".to_string()),
        chan().prop_map(|c| format!("WHO {c}")),
        Just("LIST".to_string()),
        text().prop_map(|t| format!("TOPIC {t}")),
        (nick(), text()).prop_map(|(n, t)| format!("PM {n} {t}")),
        nick().prop_map(|n| format!("KILL {n} bye")),
        Just("OPER nobody nothing".to_string()),
        Just("HELP".to_string()),
        text().prop_map(|t| format!("QUIT {t}")),
        Just("bogus".to_string()),
    ]
}

fn step() -> impl Strategy<Value = Step> {
    prop_oneof![
        1 => any::<bool>().prop_map(Step::Connect),
        6 => (0usize..8, prop_oneof![irc_line(), line_line()]).prop_map(|(i, l)| Step::Line(i, l)),
        1 => (0usize..8, prop::collection::vec(any::<u8>(), 0..64)).prop_map(|(i, b)| Step::Raw(i, b)),
        1 => (0usize..8).prop_map(Step::Disconnect),
        1 => Just(Step::Drain),
    ]
}

fn run(script: &[Step]) -> Result<(), String> {
    let mut sim = Sim::mixed();
    for s in script {
        match s {
            Step::Connect(irc) => {
                sim.connect(*irc);
            }
            Step::Line(i, l) => {
                let n = sim.clients.len();
                sim.send(i % n, format!("{l}\r\n").as_bytes());
            }
            Step::Raw(i, b) => {
                let n = sim.clients.len();
                sim.send(i % n, b);
            }
            Step::Disconnect(i) => {
                let n = sim.clients.len();
                sim.disconnect(i % n);
            }
            Step::Drain => sim.drain(),
        }
        sim.check()?;
    }
    Ok(())
}

proptest! {
    #![proptest_config(ProptestConfig { cases: 200, ..ProptestConfig::default() })]

    #[test]
    fn random_scripts_keep_the_network_consistent(script in prop::collection::vec(step(), 1..80)) {
        if let Err(e) = run(&script) {
            prop_assert!(false, "{}", e);
        }
    }
}
