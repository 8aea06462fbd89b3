//! The outbox's unit tests: the queue, its bounds and closing states, the
//! arena's references, the writer's pending bytes, and the congestion count.

use std::io::IoSlice;
use std::sync::Arc;
use std::sync::atomic::Ordering;
use std::task::Waker;

use super::arena::SEGMENT;
use super::queue::Piece;
use super::*;

fn drain(o: &Outbox) -> Vec<u8> {
    o.take(Pending::default()).data.to_vec()
}

#[test]
fn bounded_in_bytes() {
    let o = Outbox::new(10);
    assert_eq!(o.append(b"12345"), Appended::NeedsWake);
    assert_eq!(o.append(b"12345"), Appended::Queued);
    assert!(!o.push(b"1"));
    assert_eq!(o.closed(), Some(Closed::Overflow));
    let b = o.take(Pending::default());
    assert!(b.data.is_empty(), "an overflowed queue is dropped");
    assert_eq!(b.closed, Some(Closed::Overflow));
}

/// A waker that counts its wake-ups.
struct CountWake(std::sync::atomic::AtomicUsize);
impl std::task::Wake for CountWake {
    fn wake(self: Arc<Self>) {
        self.0.fetch_add(1, Ordering::Relaxed);
    }
}

#[test]
fn congestion_counts_queues_past_their_soft_mark() {
    // Eight queues of 800 bytes (soft mark 100). Each case acts on them
    // in turn, then gives (queues past the mark, congested).
    #[derive(Clone, Copy)]
    enum Op {
        /// Pushes that many bytes to queues `0..n`.
        Fill(usize, usize),
        Push(usize, usize),
        Take(usize),
        Final(usize, usize),
        Overflow(usize),
        Drop(usize),
    }
    use Op::*;
    let cases: &[(&str, &[Op], u32, bool)] = &[
        ("at the mark is not past it", &[Fill(8, 100)], 0, false),
        ("one past it", &[Push(0, 101)], 1, false),
        (
            "counted once however far",
            &[Push(0, 101), Push(0, 300)],
            1,
            false,
        ),
        ("small pushes add up", &[Push(0, 60), Push(0, 60)], 1, false),
        (
            "a quarter is not more than a quarter",
            &[Fill(2, 101)],
            2,
            false,
        ),
        ("three of eight is", &[Fill(3, 101)], 3, true),
        (
            "last words count too",
            &[Fill(2, 101), Final(2, 101)],
            3,
            true,
        ),
        ("congested down to two", &[Fill(3, 101), Take(0)], 2, true),
        (
            "clear at one in eight",
            &[Fill(3, 101), Take(0), Take(1)],
            1,
            false,
        ),
        (
            "not again before a quarter",
            &[Fill(3, 101), Take(0), Take(1), Push(0, 101)],
            2,
            false,
        ),
        (
            "an overflow empties a queue",
            &[Fill(3, 101), Overflow(0), Take(1)],
            1,
            false,
        ),
        (
            "queues that go count out",
            &[Fill(2, 101), Drop(7), Drop(6)],
            2,
            true,
        ),
        (
            "and so do their bytes",
            &[Fill(3, 101), Drop(0), Drop(1)],
            1,
            true,
        ),
        (
            "till the last",
            &[Fill(3, 101), Drop(0), Drop(1), Drop(2)],
            0,
            false,
        ),
        (
            "one alone never",
            &[
                Push(0, 101),
                Drop(7),
                Drop(6),
                Drop(5),
                Drop(4),
                Drop(3),
                Drop(2),
            ],
            1,
            false,
        ),
        (
            "two of three are",
            &[Fill(2, 101), Drop(7), Drop(6), Drop(5), Drop(4), Drop(3)],
            2,
            true,
        ),
    ];
    for &(name, ops, over, congested) in cases {
        let c = Arc::new(Congestion::default());
        let mut q: Vec<Option<Outbox>> = (0..8)
            .map(|_| Some(Outbox::counted(800, c.clone())))
            .collect();
        let push = |q: &Option<Outbox>, n: usize| {
            assert!(q.as_ref().unwrap().push(&vec![b'x'; n]), "{name}");
        };
        for &op in ops {
            match op {
                Fill(k, n) => q[..k].iter().for_each(|q| push(q, n)),
                Push(i, n) => push(&q[i], n),
                Final(i, n) => q[i].as_ref().unwrap().push_final(&vec![b'x'; n]),
                Take(i) => drop(q[i].as_ref().unwrap().take(Pending::default())),
                Overflow(i) => assert!(!q[i].as_ref().unwrap().push(&[b'x'; 800]), "{name}"),
                Drop(i) => q[i] = None,
            }
        }
        assert_eq!(c.over.load(Ordering::Relaxed), over, "{name}");
        assert_eq!(c.congested(), congested, "{name}");
        drop(q);
        assert_eq!(c.over.load(Ordering::Relaxed), 0, "{name}: all gone");
        assert_eq!(c.queues.load(Ordering::Relaxed), 0, "{name}: all gone");
        assert!(!c.congested(), "{name}: all gone");
    }
}

#[test]
fn waiters_are_woken_when_congestion_clears() {
    let c = Arc::new(Congestion::default());
    let (a, b) = (
        Outbox::counted(800, c.clone()),
        Outbox::counted(800, c.clone()),
    );
    let counter = Arc::new(CountWake(Default::default()));
    let waker = Waker::from(counter.clone());
    assert!(a.push(&[0; 200]) && b.push(&[0; 200]));
    assert!(c.congested());
    let round = c.wait(&waker);
    assert_eq!(c.round(), round);
    drop(a.take(Pending::default()));
    assert!(c.congested(), "one of two is more than an eighth");
    assert_eq!(counter.0.load(Ordering::Relaxed), 0);
    drop(b.take(Pending::default()));
    assert!(!c.congested());
    assert_eq!(counter.0.load(Ordering::Relaxed), 1);
    assert_ne!(c.round(), round, "no longer registered");
    assert!(a.push(&[0; 200]) && b.push(&[0; 200]));
    drop((a.take(Pending::default()), b.take(Pending::default())));
    assert_eq!(counter.0.load(Ordering::Relaxed), 1, "woken once per wait");
}

#[test]
fn take_resets_the_count() {
    let o = Outbox::new(10);
    assert!(o.push(b"1234567890"));
    assert_eq!(drain(&o), b"1234567890");
    assert_eq!(o.append(b"1234567890"), Appended::NeedsWake);
    // The batch reports its size (the writer's load signal), once.
    assert_eq!(o.take(Pending::default()).bytes, 10);
    assert_eq!(o.take(Pending::default()).bytes, 0);
}

#[test]
fn close_keeps_queued_data_and_refuses_more() {
    let o = Outbox::new(100);
    assert!(o.push(b"a"));
    o.push_final(b"bye");
    o.close();
    assert!(!o.push(b"b"));
    let b = o.take(Pending::default());
    assert_eq!(b.data.to_vec(), b"abye");
    assert_eq!(b.closed, Some(Closed::Closing));
}

#[test]
fn closing_states_only_move_forward() {
    // (steps, state after them): a shutdown overrides a normal close,
    // nothing overrides an overflow, a close does not undo a shutdown.
    let cases: [(&[&str], Option<Closed>); 6] = [
        (&[], None),
        (&["close"], Some(Closed::Closing)),
        (&["shut_down"], Some(Closed::Shutdown)),
        (&["close", "shut_down"], Some(Closed::Shutdown)),
        (&["shut_down", "close"], Some(Closed::Shutdown)),
        (&["overflow", "close", "shut_down"], Some(Closed::Overflow)),
    ];
    for (steps, want) in cases {
        let o = Outbox::new(4);
        for s in steps {
            match *s {
                "close" => o.close(),
                "shut_down" => o.shut_down(),
                _ => assert!(!o.push(b"12345")),
            }
        }
        assert_eq!(o.closed(), want, "{steps:?}");
        assert_eq!(o.take(Pending::default()).closed, want, "{steps:?}");
    }
}

#[test]
fn last_words_pass_the_bound_but_not_a_close() {
    let o = Outbox::new(4);
    assert!(o.push(b"1234"));
    o.push_final(b"ERROR\r\n");
    assert_eq!(drain(&o), b"1234ERROR\r\n");
    o.close();
    o.push_final(b"late");
    assert!(drain(&o).is_empty());
}

#[test]
fn consecutive_shared_lines_extend_one_reference() {
    let mut arena = Arena::default();
    let o = Outbox::new(1 << 20);
    for i in 0..100 {
        let line = arena.put(format!("line {i}\n").as_bytes());
        o.append_shared(&line);
    }
    let b = o.take(Pending::default()).data;
    assert_eq!(b.pieces().count(), 1);
    // Handed to the writer as it is: no list allocated on the way.
    assert_eq!(b.pieces.capacity(), 0);
    let want: String = (0..100).map(|i| format!("line {i}\n")).collect();
    assert_eq!(b.to_vec(), want.as_bytes());
}

#[test]
fn shared_and_owned_lines_keep_their_order() {
    let mut arena = Arena::default();
    let o = Outbox::new(1 << 20);
    let a = arena.put(b"a\n");
    let skipped = arena.put(b"not for o\n");
    let c = arena.put(b"c\n");
    o.append_shared(&a);
    o.append(b"reply\n");
    o.append_shared(&c);
    o.append_shared(&arena.put(b"d\n"));
    drop(skipped);
    assert_eq!(drain(&o), b"a\nreply\nc\nd\n");
}

#[test]
fn the_bound_counts_bytes_not_references() {
    let mut arena = Arena::default();
    let o = Outbox::new(10);
    assert_eq!(o.append_shared(&arena.put(b"12345")), Appended::NeedsWake);
    assert_eq!(o.append_shared(&arena.put(b"12345")), Appended::Queued);
    assert_eq!(o.append_shared(&arena.put(b"1")), Appended::Refused);
    assert_eq!(o.closed(), Some(Closed::Overflow));
}

#[test]
fn scattered_references_are_copied_past_the_pin_bound() {
    let mut arena = Arena::default();
    let o = Outbox::new(3 * SEGMENT);
    let mut want = Vec::new();
    // One line for `o` per segment: each reference would pin a segment.
    for i in 0..10 {
        let line = format!("{i}\n");
        o.append_shared(&arena.put(line.as_bytes()));
        want.extend_from_slice(line.as_bytes());
        arena.put(&vec![b'x'; SEGMENT - 2]);
    }
    let inner = o.lock();
    assert!(
        inner.pinned as usize <= 3 * SEGMENT + want.len(),
        "pinned {}",
        inner.pinned
    );
    let shared = inner
        .pieces
        .iter()
        .filter(|p| matches!(p, Piece::Shared(_)))
        .count();
    assert!(shared <= 3, "{shared} references");
    drop(inner);
    assert_eq!(drain(&o), want);
}

#[test]
fn a_cut_keeps_only_the_rest_of_the_line_under_way() {
    let mut arena = Arena::default();
    let fill = || {
        let o = Outbox::new(1 << 20);
        o.append(b"one\r\ntwo\r\n");
        o.append_shared(&Arena::default().put(b"three\r\n"));
        o.take(Pending::default()).data
    };
    // (bytes written before the cut, what is left to write after it)
    let cases: &[(usize, &[u8])] = &[
        (0, b""),
        (2, b"e\r\n"),
        (4, b"\n"),
        (5, b""),
        (6, b"wo\r\n"),
        (10, b""),
        (12, b"ree\r\n"),
    ];
    for &(written, want) in cases {
        let mut p = fill();
        p.advance(written);
        p.cut_after_current_line();
        assert_eq!(p.to_vec(), want, "after {written} bytes");
    }
    // A shared first piece is cut the same way.
    let o = Outbox::new(1 << 20);
    o.append_shared(&arena.put(b"alpha\r\n"));
    o.append_shared(&arena.put(b"beta\r\n"));
    let mut p = o.take(Pending::default()).data;
    p.advance(3);
    p.cut_after_current_line();
    assert_eq!(p.to_vec(), b"ha\r\n");
}

#[test]
fn partial_writes_resume_where_they_stopped() {
    let mut arena = Arena::default();
    let o = Outbox::new(1 << 20);
    o.append_shared(&arena.put(b"hello "));
    o.append(b"big ");
    o.append_shared(&arena.put(b"world\n"));
    let mut p = o.take(Pending::default()).data;
    let mut out = Vec::new();
    for step in [1, 4, 3, 100] {
        let mut io = [IoSlice::new(&[]); 4];
        let n = p.slices(&mut io);
        let all: Vec<u8> = io[..n].iter().flat_map(|s| s.to_vec()).collect();
        let k = step.min(all.len());
        out.extend_from_slice(&all[..k]);
        p.advance(k);
    }
    assert!(p.is_empty());
    assert_eq!(out, b"hello big world\n");
}
