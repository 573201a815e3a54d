//! The fault suite of the distributed mode, against real processes: three
//! `nats-server` nodes, two `accessd` replicas behind TCP proxies, two
//! `mailerd` workers and a real SMTP server, under a steady load of
//! invitations retried by request id as a client should.
//!
//! Each fault is injected mid-load: the stream leader killed, another node
//! killed, all of NATS stopped for ten seconds, one replica cut off from NATS
//! (closed connections) or partitioned (connections that go silent), a
//! replica SIGKILLed, a worker SIGKILLed. Afterwards every acknowledged
//! invitation must be on both replicas and mailed, at most once more than
//! once; and the suite measures how fast commands fail while the log is out
//! of reach, how soon health says so, how long until commands succeed again,
//! and how long a replica served stale reads. `ACCESS_FAULT_ROUNDS=N` runs
//! each fault N times.

use access_proto::v1 as pb;
use access_tests::deployment::{
    Acked, Deployment, Load, MAILS_IN_FLIGHT, NATS_TIMEOUT, Refusal, mails_per_recipient,
};
use access_tests::proxy::Link;
use std::time::{Duration, Instant};

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Fault {
    LeaderKill,
    NodeKill,
    Outage,
    PartitionCut,
    PartitionStall,
    ReplicaKill,
    WorkerKill,
}

const SERVING: i32 = 1;
const NOT_SERVING: i32 = 2;

/// What one round measured.
#[derive(Debug)]
struct Figures {
    fault: Fault,
    acked: usize,
    present: [usize; 2],
    mails_missing: usize,
    mails_repeated: usize,
    /// The median and the slowest refusal once the fault could be known
    /// (connection closed or found silent) until it healed, as the client
    /// measured them (on a busy machine the slowest includes scheduling).
    fail_fast: Option<(Duration, Duration)>,
    /// From the fault to health `NOT_SERVING` on the replica it hit.
    not_serving_after: Option<Duration>,
    /// From the heal to the first command acknowledged by that replica.
    recovered_after: Option<Duration>,
    /// From the heal to the replica serving, without `min_position`, what
    /// the other acknowledged before the heal.
    stale_for: Option<Duration>,
    /// From health `SERVING` again to the success of a fresh command sent
    /// then (retried with its request id every 100 ms).
    serving_to_success: Option<Duration>,
    /// From the heal to the last mail of what was acknowledged before it.
    mail_caught_up: Option<Duration>,
    /// The longest time without any acknowledged command, around the fault.
    write_gap: Duration,
    /// From the fault to a new stream leader, when the leader was killed
    /// (NATS's own election: the rest of the write gap is ours).
    elected_after: Option<Duration>,
}

fn ms(d: Option<Duration>) -> String {
    d.map_or("–".into(), |d| format!("{} ms", d.as_millis()))
}

impl Figures {
    fn row(&self) -> String {
        format!(
            "| {:?} | {} | {} / {} | {} / {} | {} | {} | {} | {} | {} | {} | {} | {} |",
            self.fault,
            self.acked,
            self.present[0],
            self.present[1],
            self.mails_missing,
            self.mails_repeated,
            self.fail_fast.map_or("–".into(), |(median, max)| format!(
                "{} / {} ms",
                median.as_millis(),
                max.as_millis()
            )),
            ms(self.not_serving_after),
            ms(self.recovered_after),
            ms(self.stale_for),
            ms(self.serving_to_success),
            ms(self.mail_caught_up),
            ms(Some(self.write_gap)),
            ms(self.elected_after),
        )
    }
}

/// The replica a fault hits (or is measured on, when it hits both).
fn hit(fault: Fault) -> usize {
    if fault == Fault::ReplicaKill { 1 } else { 0 }
}

/// How long the fault lasts before it is healed.
fn length(fault: Fault) -> Duration {
    match fault {
        Fault::Outage | Fault::PartitionStall => Duration::from_secs(10),
        Fault::PartitionCut => Duration::from_secs(8),
        _ => Duration::from_secs(3),
    }
}

/// When, after the fault began, it can be known: a closed connection at
/// once, a silent one after the client's pings go unanswered.
fn known_after(fault: Fault) -> Option<Duration> {
    match fault {
        Fault::Outage | Fault::PartitionCut => Some(Duration::from_secs(1)),
        Fault::PartitionStall => Some(Duration::from_secs(7)),
        _ => None,
    }
}

/// The stream's leader, asked until one answers.
async fn leader_of(d: &Deployment) -> usize {
    for _ in 0..20 {
        if let Some(leader) = d.stream_leader().await {
            return leader;
        }
    }
    panic!("the stream has no leader");
}

async fn inject(d: &mut Deployment, fault: Fault) {
    match fault {
        Fault::LeaderKill => {
            let leader = leader_of(d).await;
            d.nats.nodes[leader].kill().await;
        }
        Fault::NodeKill => {
            let leader = leader_of(d).await;
            d.nats.nodes[(leader + 1) % 3].kill().await;
        }
        Fault::Outage => {
            for node in &mut d.nats.nodes {
                node.kill().await;
            }
        }
        Fault::PartitionCut => d.link(0, Link::Cut),
        Fault::PartitionStall => d.link(0, Link::Stalled),
        Fault::ReplicaKill => d.kill_replica(1).await,
        Fault::WorkerKill => d.workers[0].kill9().await,
    }
}

async fn heal(d: &mut Deployment, fault: Fault) {
    match fault {
        Fault::LeaderKill | Fault::NodeKill | Fault::Outage => {
            for node in &mut d.nats.nodes {
                if !node.running() {
                    node.start().await;
                }
            }
        }
        Fault::PartitionCut | Fault::PartitionStall => d.link(0, Link::Up),
        Fault::ReplicaKill => d.restart_replica(1).await,
        Fault::WorkerKill => d.workers[0].restart().await,
    }
}

/// Waits up to `limit` for `load` to have acknowledged `n` more.
async fn progress(load: &Load, n: usize, limit: Duration) {
    let target = load.count() + n;
    let deadline = Instant::now() + limit;
    while load.count() < target && Instant::now() < deadline {
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
}

async fn round(fault: Fault) -> Figures {
    let mut d = Deployment::start().await;
    let load = Load::start(&d, 2);
    progress(&load, 20, Duration::from_secs(60)).await;
    let r = hit(fault);

    let old_leader = d.stream_leader().await;
    let began = Instant::now();
    inject(&mut d, fault).await;
    let mut not_serving_after = None;
    let mut elected_after = None;
    while began.elapsed() < length(fault) {
        if not_serving_after.is_none() && d.health(r).await == NOT_SERVING {
            not_serving_after = Some(began.elapsed());
        }
        if fault == Fault::LeaderKill && elected_after.is_none() {
            elected_after = elected(&d, old_leader, began).await;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    let before_heal: Vec<Acked> = load.acked.lock().expect("acked").clone();
    heal(&mut d, fault).await;
    let healed = Instant::now();

    // Until the replica takes commands and health says so again.
    let mut serving_at = None;
    let mut serving_to_success = None;
    let deadline = healed + Duration::from_secs(60);
    let acked_after = |at: Instant| {
        load.acked
            .lock()
            .expect("acked")
            .iter()
            .filter(|a| a.replica == r && a.at > at)
            .map(|a| a.at)
            .min()
    };
    while Instant::now() < deadline && (serving_at.is_none() || acked_after(healed).is_none()) {
        if serving_at.is_none() && d.health(r).await == SERVING {
            let at = Instant::now();
            serving_at = Some(at);
            serving_to_success = fresh_command(&d, r).await.then(|| at.elapsed());
        }
        if fault == Fault::LeaderKill && elected_after.is_none() {
            elected_after = elected(&d, old_leader, began).await;
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    let recovered_at = acked_after(healed);
    let stale_for = stale_window(&d, r, &before_heal, healed).await;
    let mail_caught_up = mailed(&d, &before_heal, healed).await;
    progress(&load, 10, Duration::from_secs(20)).await;
    let (acked, refusals) = load.stop().await;
    // What the replicas said, for whoever reads a failing round.
    let mut reasons: std::collections::BTreeMap<&str, usize> = Default::default();
    for f in &refusals {
        *reasons.entry(f.reason.as_str()).or_default() += 1;
    }
    for (reason, n) in reasons {
        eprintln!("REFUSED {fault:?} {n}× {reason}");
    }

    let mut times: Vec<Instant> = acked.iter().map(|a| a.at).collect();
    times.sort();
    let write_gap = times
        .windows(2)
        .filter(|w| w[1] >= began)
        .map(|w| w[1].duration_since(w[0]))
        .max()
        .unwrap_or_default();
    let top = acked.iter().map(|a| a.position).max().unwrap_or(0);
    let mut present = [0; 2];
    for (replica, count) in present.iter_mut().enumerate() {
        *count = present_on(d.replica(replica), &d.key, &acked, top).await;
    }
    let (mails_missing, mails_repeated) = mails(&d, &acked).await;
    let fail_fast = known_after(fault).and_then(|known| {
        let mut took: Vec<Duration> = refusals
            .iter()
            .filter(|f: &&Refusal| {
                f.replica == r && f.began >= began + known && f.began + f.took <= healed
            })
            .map(|f| f.took)
            .collect();
        took.sort();
        Some((*took.get(took.len() / 2)?, *took.last()?))
    });
    Figures {
        fault,
        acked: acked.len(),
        present,
        mails_missing,
        mails_repeated,
        fail_fast,
        not_serving_after,
        recovered_after: recovered_at.map(|a| a.duration_since(healed)),
        stale_for,
        serving_to_success,
        mail_caught_up,
        write_gap,
        elected_after,
    }
}

/// Whether a fresh invitation to replica `r`, retried with its request id
/// every 100 ms, is acknowledged within 10 s.
async fn fresh_command(d: &Deployment, r: usize) -> bool {
    let app = d.replica(r);
    let request = access_tests::invite_request(
        "C0",
        &format!("{}@probe.example", access_tests::new_id()),
        None,
    );
    let deadline = Instant::now() + Duration::from_secs(10);
    while Instant::now() < deadline {
        if app
            .access()
            .invite_customer(app.req(&d.key, request.clone()))
            .await
            .is_ok()
        {
            return true;
        }
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
    false
}

/// The time since `began` if the stream has a leader other than `old`
/// (stream info is answered by the leader, so none answers while NATS
/// elects one).
async fn elected(d: &Deployment, old: Option<usize>, began: Instant) -> Option<Duration> {
    let now = d.stream_leader().await;
    (now.is_some() && now != old).then(|| began.elapsed())
}

/// How long after `healed` every invitation in `acked` had its mail.
async fn mailed(d: &Deployment, acked: &[Acked], healed: Instant) -> Option<Duration> {
    let deadline = healed + Duration::from_secs(90);
    while Instant::now() < deadline {
        let per = mails_per_recipient(&d.smtp);
        if acked.iter().all(|a| per.contains_key(&a.email)) {
            return Some(healed.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// How long after `healed` replica `r` took to serve, without waiting for a
/// position, the last invitation the other replica acknowledged before it.
async fn stale_window(
    d: &Deployment,
    r: usize,
    before: &[Acked],
    healed: Instant,
) -> Option<Duration> {
    let last = before
        .iter()
        .filter(|a| a.replica != r)
        .max_by_key(|a| a.position)?;
    let deadline = healed + Duration::from_secs(60);
    while Instant::now() < deadline {
        if contact(d.replica(r), &d.key, &last.contact_id, 0)
            .await
            .is_ok()
        {
            return Some(healed.elapsed());
        }
        tokio::time::sleep(Duration::from_millis(50)).await;
    }
    None
}

/// Contact `id` as `app` answers it once it has reached `min_position`.
async fn contact(
    app: &access_tests::TestApp,
    key: &str,
    id: &str,
    min_position: u64,
) -> Result<pb::Contact, tonic::Status> {
    app.access()
        .get_contact(app.req(
            key,
            pb::GetContactRequest {
                contact_id: id.to_owned(),
                min_position,
            },
        ))
        .await
        .map(tonic::Response::into_inner)
}

/// How many of `acked` the replica has, once it reached `top`.
async fn present_on(app: &access_tests::TestApp, key: &str, acked: &[Acked], top: u64) -> usize {
    // Up to a minute to reach the head: a replica that never does has lost
    // its way, and counts what it has.
    let deadline = Instant::now() + Duration::from_secs(60);
    if let Some(first) = acked.first() {
        while Instant::now() < deadline {
            if contact(app, key, &first.contact_id, top).await.is_ok() {
                break;
            }
            tokio::time::sleep(Duration::from_millis(200)).await;
        }
    }
    let mut present = 0;
    for a in acked {
        let found = contact(app, key, &a.contact_id, 0).await;
        present += usize::from(found.is_ok_and(|c| c.email == a.email));
    }
    present
}

/// Acknowledged invitations with no mail, and mails beyond one a recipient,
/// once the mail has settled (up to 90 s).
async fn mails(d: &Deployment, acked: &[Acked]) -> (usize, usize) {
    let deadline = Instant::now() + Duration::from_secs(90);
    loop {
        let per = mails_per_recipient(&d.smtp);
        let missing = acked.iter().filter(|a| !per.contains_key(&a.email)).count();
        if missing == 0 || Instant::now() > deadline {
            tokio::time::sleep(Duration::from_secs(2)).await;
            let per = mails_per_recipient(&d.smtp);
            let repeated = per.values().map(|n| n - 1).sum();
            return (missing, repeated);
        }
        tokio::time::sleep(Duration::from_millis(200)).await;
    }
}

/// Runs `fault` for the configured number of rounds, printing each round's
/// figures, and checks what must hold.
async fn rounds(fault: Fault) {
    let n: usize = std::env::var("ACCESS_FAULT_ROUNDS")
        .ok()
        .and_then(|v| v.parse().ok())
        .unwrap_or(1);
    for _ in 0..n.max(1) {
        let f = round(fault).await;
        eprintln!("FIGURES {}", f.row());
        assert_eq!(
            f.present,
            [f.acked, f.acked],
            "acknowledged invitations lost: {f:?}"
        );
        assert_eq!(
            f.mails_missing, 0,
            "acknowledged invitations without mail: {f:?}"
        );
        // A killed worker's mails in hand go out again from the other; any
        // other fault repeats one at most, and rarely.
        let bound = if fault == Fault::WorkerKill {
            MAILS_IN_FLIGHT
        } else {
            1
        };
        assert!(f.mails_repeated <= bound, "{f:?}");
        assert!(
            f.recovered_after.is_some(),
            "commands never succeeded again: {f:?}"
        );
        // SERVING again means commands succeed: the first within a second.
        if f.not_serving_after.is_some() {
            assert!(
                f.serving_to_success
                    .is_some_and(|d| d < Duration::from_secs(1)),
                "{f:?}"
            );
        }
        if known_after(fault).is_some() {
            let (median, slowest) = f
                .fail_fast
                .expect("refusals while the log was out of reach");
            // Answered without a round trip to NATS: in a few milliseconds
            // as a rule, and none waited out the NATS timeout (2 s). A single
            // refusal of 1.5 s was seen once with the whole suite running on
            // two cores, of a hundred and more in the round: the machine's
            // scheduling, which the median is not moved by.
            assert!(median < Duration::from_millis(100), "{f:?}");
            assert!(slowest < NATS_TIMEOUT, "{f:?}");
            assert!(
                f.not_serving_after.is_some(),
                "health never said NOT_SERVING: {f:?}"
            );
        }
    }
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn the_stream_leader_killed_under_load() {
    rounds(Fault::LeaderKill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_nats_node_killed_under_load() {
    rounds(Fault::NodeKill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn all_of_nats_stopped_for_ten_seconds_under_load() {
    rounds(Fault::Outage).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_cut_off_from_nats_under_load() {
    rounds(Fault::PartitionCut).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_partitioned_silently_from_nats_under_load() {
    rounds(Fault::PartitionStall).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_replica_killed_with_sigkill_under_load() {
    rounds(Fault::ReplicaKill).await;
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_mail_worker_killed_with_sigkill_under_load() {
    rounds(Fault::WorkerKill).await;
}
