//! The outbox's unit tests: the queue, its bounds and closing states, the
//! arena's references, the writer's pending bytes, and the drains.

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
    assert_eq!(o.append(b"12345"), Appended::Behind);
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
fn an_append_says_when_the_queue_falls_behind() {
    // Bound 800: the soft mark is 100 bytes.
    let o = Outbox::new(800);
    let cases: &[(usize, Appended)] = &[
        (10, Appended::NeedsWake),
        (80, Appended::Queued),
        (10, Appended::Queued),
        (1, Appended::Behind),
        (600, Appended::Behind),
        (100, Appended::Refused),
    ];
    for (n, want) in cases {
        assert_eq!(o.append(&vec![b'x'; *n]), *want, "{n} bytes");
    }
    assert_eq!(o.closed(), Some(Closed::Overflow));
    let o = Outbox::new(800);
    o.append(&[b'x'; 150]);
    assert!(o.behind());
    drain(&o);
    assert!(!o.behind());
    assert_eq!(o.append(&[b'x'; 20]), Appended::NeedsWake);
}

#[test]
fn waiters_are_woken_when_a_queue_drains_below_its_mark_or_closes() {
    let d = Arc::new(Drains::default());
    let woken = Arc::new(CountWake(Default::default()));
    let waker = Waker::from(woken.clone());
    let count = || woken.0.load(Ordering::Relaxed);
    let a = Outbox::watched(800, d.clone());
    let b = Outbox::watched(800, d.clone());
    a.append(&[b'x'; 150]);
    let round = d.wait(&waker);
    b.append(&[b'x'; 50]);
    drain(&b);
    assert_eq!(count(), 0, "a queue that was never behind drains quietly");
    drain(&a);
    assert_eq!(count(), 1, "behind, then under the mark: the waiters go");
    assert_ne!(
        d.round(),
        round,
        "a new round: the waiter must register again"
    );
    d.wait(&waker);
    b.close();
    assert_eq!(count(), 2, "a closing queue holds nobody back");
    d.wait(&waker);
    drop(a);
    assert_eq!(count(), 3, "nor a queue gone");
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
    assert_eq!(o.append_shared(&arena.put(b"12345")), Appended::Behind);
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
