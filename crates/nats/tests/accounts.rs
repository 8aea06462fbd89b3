//! The cluster's accounts (`KvAccounts`) against real nats-server clusters
//! on loopback (see `bavard_nats::harness`); each test skips without a
//! nats-server binary, except under CI.

use std::future::Future;
use std::time::{Duration, Instant};

use bavard_core::store::{Account, AccountStore, Scram, StoreError, conformance};
use bavard_nats::harness::{self, NatsCluster};
use bavard_nats::{ACCOUNTS, Bus};
use bytes::Bytes;

mod common;

use common::{config, logs};

/// An account named `name` whose hash says `password`.
fn account(name: &str, password: &str, certfps: &[&str]) -> Account {
    Account {
        name: name.into(),
        password_hash: format!("$argon2id${password}"),
        scram: None,
        email: None,
        certfps: certfps.iter().map(|f| f.to_string()).collect(),
        created: 1_700_000_000_000,
    }
}

fn names(accounts: &[Account]) -> Vec<&str> {
    accounts.iter().map(|a| a.name.as_str()).collect()
}

/// Tries `f` until it is not `Unavailable` (a leader being elected), for up
/// to 20 s: nats-server 2.9 takes several seconds to elect a new leader
/// when one dies.
async fn eventually<T, F, Fut>(what: &str, mut f: F) -> Result<T, StoreError>
where
    F: FnMut() -> Fut,
    Fut: Future<Output = Result<T, StoreError>>,
{
    let deadline = Instant::now() + Duration::from_secs(20);
    loop {
        match f().await {
            Err(StoreError::Unavailable(e)) if Instant::now() < deadline => {
                eprintln!("{what}: {e}; retrying");
                tokio::time::sleep(Duration::from_millis(200)).await;
            }
            r => return r,
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_cluster_accounts_conform() {
    if harness::skip("the_cluster_accounts_conform") {
        return;
    }
    let _turn = common::alone().await;
    logs();
    let cluster = NatsCluster::start(3).await.unwrap();
    let a = Bus::connect(config(&cluster, "a")).await.unwrap();
    conformance::accounts(&*a.accounts()).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_account_registered_on_one_node_is_seen_on_another() {
    if harness::skip("an_account_registered_on_one_node_is_seen_on_another") {
        return;
    }
    let _turn = common::alone().await;
    logs();
    let cluster = NatsCluster::start(3).await.unwrap();
    let a = Bus::connect(config(&cluster, "a")).await.unwrap();
    let b = Bus::connect(config(&cluster, "b")).await.unwrap();
    let (aa, ab) = (a.accounts(), b.accounts());
    let mut alice = account("Alice", "one", &["f1", "f2"]);
    alice.email = Some("alice@example.org".into());
    alice.scram = Some(Scram {
        salt: vec![1, 2, 3],
        iterations: 4096,
        stored_key: [7; 32],
        server_key: [9; 32],
    });
    aa.create(alice.clone()).get().await.unwrap();
    assert_eq!(ab.get("alice").get().await, Ok(Some(alice.clone())));
    assert_eq!(ab.by_certfp("f2").get().await, Ok(Some(alice.clone())));
    assert_eq!(ab.by_certfp("f3").get().await, Ok(None));
    aa.create(account("bob", "b", &[])).get().await.unwrap();
    assert_eq!(
        names(&ab.list().get().await.unwrap()),
        ["Alice", "bob"],
        "by key"
    );
    // The name is taken, whichever node asks, in whatever case, even by
    // the very same record.
    assert_eq!(
        ab.create(alice.clone()).get().await,
        Err(StoreError::Exists("Alice".into()))
    );
    assert_eq!(
        ab.create(account("ALICE", "two", &[])).get().await,
        Err(StoreError::Exists("ALICE".into()))
    );

    // A new password and certificates, through the other node.
    let mut changed = alice.clone();
    changed.password_hash = "$argon2id$two".into();
    changed.scram = None;
    changed.certfps = vec!["f2".into(), "f3".into()];
    ab.update(changed.clone()).get().await.unwrap();
    assert_eq!(aa.get("alice").get().await, Ok(Some(changed.clone())));
    assert_eq!(aa.by_certfp("f1").get().await, Ok(None), "removed");
    assert_eq!(aa.by_certfp("f2").get().await, Ok(Some(changed.clone())));
    assert_eq!(aa.by_certfp("f3").get().await, Ok(Some(changed.clone())));
    // A removed certificate is free for another account.
    aa.update(account("bob", "b", &["f1"])).get().await.unwrap();
    assert_eq!(
        ab.by_certfp("f1").get().await.unwrap().map(|a| a.name),
        Some("bob".into())
    );
    assert_eq!(
        ab.update(account("carol", "c", &[])).get().await,
        Err(StoreError::Missing("carol".into()))
    );

    aa.delete("alice").get().await.unwrap();
    assert_eq!(ab.get("alice").get().await, Ok(None));
    assert_eq!(ab.by_certfp("f3").get().await, Ok(None));
    assert_eq!(names(&ab.list().get().await.unwrap()), ["bob"]);
    assert_eq!(
        ab.delete("alice").get().await,
        Err(StoreError::Missing("alice".into()))
    );
    // The name and its certificates can be had again.
    ab.create(account("alice", "three", &["f3"]))
        .get()
        .await
        .unwrap();
    assert_eq!(
        aa.by_certfp("f3")
            .get()
            .await
            .unwrap()
            .map(|a| a.password_hash),
        Some("$argon2id$three".into())
    );
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn of_two_registrations_at_once_one_wins() {
    if harness::skip("of_two_registrations_at_once_one_wins") {
        return;
    }
    let _turn = common::alone().await;
    logs();
    let cluster = NatsCluster::start(3).await.unwrap();
    let a = Bus::connect(config(&cluster, "a")).await.unwrap();
    let b = Bus::connect(config(&cluster, "b")).await.unwrap();
    let (aa, ab) = (a.accounts(), b.accounts());
    let mut wins = [0, 0];
    for round in 0..50 {
        // The same name.
        let name = format!("user{round}");
        let (x, y) = (account(&name, "a", &[]), account(&name, "b", &[]));
        let (rx, ry) = tokio::join!(aa.create(x.clone()).get(), ab.create(y.clone()).get());
        let winner = match (rx, ry) {
            (Ok(()), Err(StoreError::Exists(n))) if n == name => {
                wins[0] += 1;
                x
            }
            (Err(StoreError::Exists(n)), Ok(())) if n == name => {
                wins[1] += 1;
                y
            }
            other => panic!("round {round}: want one Ok, one Exists: {other:?}"),
        };
        assert_eq!(aa.get(&name).get().await, Ok(Some(winner.clone())));
        assert_eq!(ab.get(&name).get().await, Ok(Some(winner)));

        // Two names, the same certificate.
        let (fp, fx, fy) = (
            format!("cafe{round:04}"),
            format!("0a{round:04}"),
            format!("0b{round:04}"),
        );
        let (x, y) = (
            account(&format!("x{round}"), "x", &[&fx, &fp]),
            account(&format!("y{round}"), "y", &[&fp, &fy]),
        );
        let (rx, ry) = tokio::join!(aa.create(x.clone()).get(), ab.create(y.clone()).get());
        let (winner, loser) = match (rx, ry) {
            (Ok(()), Err(StoreError::Exists(f))) if f == fp => (x, y),
            (Err(StoreError::Exists(f)), Ok(())) if f == fp => (y, x),
            other => panic!("round {round}: want one Ok, one Exists(fp): {other:?}"),
        };
        assert_eq!(ab.by_certfp(&fp).get().await, Ok(Some(winner.clone())));
        let loser_key = loser.name.clone();
        assert_eq!(aa.get(&loser_key).get().await, Ok(None), "round {round}");
        // The loser's other certificate was freed with it.
        let other = loser.certfps.iter().find(|f| **f != fp).unwrap();
        assert_eq!(aa.by_certfp(other).get().await, Ok(None));
        // Without the winner's certificate, the loser's registration goes.
        let mut again = loser;
        again.certfps.retain(|f| *f != fp);
        ab.create(again).get().await.unwrap();
        aa.delete(&winner.name).get().await.unwrap();
        aa.delete(&loser_key).get().await.unwrap();
    }
    println!("registrations won: a {}, b {}", wins[0], wins[1]);
    let left = names(&aa.list().get().await.unwrap())
        .iter()
        .filter(|n| !n.starts_with("user"))
        .count();
    assert_eq!(left, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_certificate_belongs_to_one_account() {
    if harness::skip("a_certificate_belongs_to_one_account") {
        return;
    }
    let _turn = common::alone().await;
    logs();
    let cluster = NatsCluster::start(3).await.unwrap();
    let a = Bus::connect(config(&cluster, "a")).await.unwrap();
    let b = Bus::connect(config(&cluster, "b")).await.unwrap();
    let (aa, ab) = (a.accounts(), b.accounts());
    aa.create(account("alice", "a", &["aa"]))
        .get()
        .await
        .unwrap();
    // bob would take alice's: refused, and nothing of bob is left.
    assert_eq!(
        ab.create(account("bob", "b", &["bb", "aa"])).get().await,
        Err(StoreError::Exists("aa".into()))
    );
    assert_eq!(aa.get("bob").get().await, Ok(None));
    assert_eq!(aa.by_certfp("bb").get().await, Ok(None));
    ab.create(account("carol", "c", &["bb"]))
        .get()
        .await
        .unwrap();
    // Nor through an update: bob stays as he was.
    let bob = account("bob", "b", &["cc"]);
    ab.create(bob.clone()).get().await.unwrap();
    assert_eq!(
        ab.update(account("bob", "new", &["cc", "dd", "aa"]))
            .get()
            .await,
        Err(StoreError::Exists("aa".into()))
    );
    assert_eq!(aa.get("bob").get().await, Ok(Some(bob.clone())));
    assert_eq!(aa.by_certfp("cc").get().await, Ok(Some(bob.clone())));
    assert_eq!(aa.by_certfp("dd").get().await, Ok(None));
    assert_eq!(
        aa.by_certfp("aa").get().await.unwrap().map(|a| a.name),
        Some("alice".into())
    );

    // A certificate key left over by a node that died between two writes
    // (its account does not list it) logs in as nobody and blocks nobody.
    let js = async_nats::jetstream::new(a.client().clone());
    let kv = js.get_key_value(ACCOUNTS).await.unwrap();
    kv.put("f.ee", Bytes::from("ghost")).await.unwrap();
    kv.put("f.ff", Bytes::from("alice")).await.unwrap();
    assert_eq!(ab.by_certfp("ee").get().await, Ok(None));
    assert_eq!(ab.by_certfp("ff").get().await, Ok(None));
    ab.create(account("dave", "d", &["ee", "ff"]))
        .get()
        .await
        .unwrap();
    assert_eq!(
        aa.by_certfp("ff").get().await.unwrap().map(|a| a.name),
        Some("dave".into())
    );
    // An account whose record lists a certificate its key does not name
    // (it lost the claim) does not log in with it; updating mends that.
    kv.delete("f.cc").await.unwrap();
    assert_eq!(aa.by_certfp("cc").get().await, Ok(None));
    ab.update(bob.clone()).get().await.unwrap();
    assert_eq!(aa.by_certfp("cc").get().await, Ok(Some(bob)));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn an_acknowledged_account_survives_losing_a_server() {
    if harness::skip("an_acknowledged_account_survives_losing_a_server") {
        return;
    }
    let _turn = common::alone().await;
    logs();
    let mut cluster = NatsCluster::start(3).await.unwrap();
    let a = Bus::connect(config(&cluster, "a")).await.unwrap();
    let b = Bus::connect(config(&cluster, "b")).await.unwrap();
    let (aa, ab) = (a.accounts(), b.accounts());
    let alice = account("alice", "a", &["aa"]);
    aa.create(alice.clone()).get().await.unwrap();
    // Kill the bucket's leader: the one that acknowledged the write.
    let js = async_nats::jetstream::new(a.client().clone());
    let mut stream = js.get_stream(format!("KV_{ACCOUNTS}")).await.unwrap();
    let info = stream.info().await.unwrap();
    // As durable as the nicks: on disk, three copies; read through the
    // leader.
    assert_eq!(info.config.num_replicas, 3);
    assert_eq!(
        info.config.storage,
        async_nats::jetstream::stream::StorageType::File
    );
    assert!(!info.config.allow_direct);
    let cluster_info = info.cluster.clone().unwrap();
    assert_eq!(cluster_info.replicas.len(), 2, "three copies");
    let leader = cluster_info.leader.unwrap();
    let victim: usize = leader.trim_start_matches('s').parse().unwrap();
    cluster.kill(victim);
    println!("killed s{victim}, the account bucket's leader");
    let t0 = Instant::now();
    let got = eventually("reading alice", || ab.get("alice").get()).await;
    println!("read back after {:?}", t0.elapsed());
    assert_eq!(got, Ok(Some(alice.clone())));
    assert_eq!(
        eventually("by certificate", || ab.by_certfp("aa").get()).await,
        Ok(Some(alice.clone()))
    );
    // Two servers of three still take registrations; a create retried
    // after a lost ack finds its own record and succeeds.
    let bob = account("bob", "b", &["bb"]);
    eventually("creating bob", || aa.create(bob.clone()).get())
        .await
        .unwrap();
    assert_eq!(
        eventually("listing", || ab.list().get())
            .await
            .map(|l| l.len()),
        Ok(2)
    );
    // Back: it catches up, and both accounts are still there.
    cluster.restart(victim).await.unwrap();
    assert_eq!(
        eventually("reading bob", || ab.get("bob").get()).await,
        Ok(Some(bob))
    );
}
