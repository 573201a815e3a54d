//! A whole distributed deployment for fault tests: three `nats-server`
//! nodes, two `accessd` replicas (each reaching NATS through its own TCP
//! proxies, so a test can cut one replica off), two `mailerd` workers and a
//! real SMTP server; and a load of invitations that records what was
//! acknowledged, where, and how long each refusal took.

use crate::nats::Nats;
use crate::proxy::{Link, Proxy};
use crate::smtp::SmtpServer;
use crate::{Mailerd, TestApp, invite_request};
use access_proto::v1 as pb;
use std::collections::HashMap;
use std::sync::{Arc, Mutex, RwLock};
use std::time::{Duration, Instant};
use tonic::Code;
use tonic::transport::Channel;

/// Mails each worker has in hand at once: what one crash may repeat.
pub const MAILS_IN_FLIGHT: usize = 8;

/// The replicas' `--nats-timeout`: how long one exchange with NATS may take.
pub const NATS_TIMEOUT: Duration = Duration::from_secs(2);

/// Everything of one deployment.
pub struct Deployment {
    /// The NATS cluster.
    pub nats: Nats,
    /// The replicas, by index (`None` while one is killed).
    pub replicas: Vec<Option<TestApp>>,
    /// Each replica's proxies, one per NATS node.
    pub proxies: Vec<Vec<Proxy>>,
    /// The mail workers.
    pub workers: Vec<Mailerd>,
    /// Where the mail goes.
    pub smtp: SmtpServer,
    /// The tenant's key.
    pub key: String,
    /// Channels to the replicas, as the load uses them (renewed on restart).
    pub channels: Arc<RwLock<Vec<Channel>>>,
    _keys: tempfile::TempDir,
}

/// Customers the invitations are spread over.
const CUSTOMERS: usize = 10;

impl Deployment {
    /// Starts it all and creates tenant `acme` with its customers.
    pub async fn start() -> Deployment {
        let nats = Nats::cluster().await;
        let keys = tempfile::tempdir().expect("a key directory");
        let smtp = SmtpServer::start(0, "").await;
        let mut replicas = Vec::new();
        let mut proxies = Vec::new();
        for _ in 0..2 {
            let mut own = Vec::new();
            for node in &nats.nodes {
                own.push(Proxy::start(format!("127.0.0.1:{}", node.port)).await);
            }
            let urls: Vec<String> = own.iter().map(Proxy::nats_url).collect();
            let args = replica_args(&urls.join(","), keys.path());
            let args: Vec<&str> = args.iter().map(String::as_str).collect();
            replicas.push(Some(start_replica(&args).await));
            proxies.push(own);
        }
        let live: Vec<&TestApp> = replicas.iter().flatten().collect();
        let key = live[0].create_tenant("acme").await;
        for c in 0..CUSTOMERS {
            create_customer(live[0], &key, &format!("C{c}")).await;
        }
        let mut workers = Vec::new();
        let in_flight = MAILS_IN_FLIGHT.to_string();
        for _ in 0..2 {
            workers.push(
                Mailerd::start_for(
                    &live,
                    keys.path(),
                    &nats.urls(),
                    &smtp.url(),
                    &["--in-flight", &in_flight],
                )
                .await,
            );
        }
        let channels = Arc::new(RwLock::new(
            live.iter().map(|r| r.channel.clone()).collect(),
        ));
        Deployment {
            nats,
            replicas,
            proxies,
            workers,
            smtp,
            key,
            channels,
            _keys: keys,
        }
    }

    /// Replica `r`, running.
    pub fn replica(&self, r: usize) -> &TestApp {
        self.replicas[r].as_ref().expect("the replica runs")
    }

    /// Sets every proxy of replica `r` to `link`.
    pub fn link(&self, r: usize, link: Link) {
        for p in &self.proxies[r] {
            p.set(link);
        }
    }

    /// Kills replica `r` with SIGKILL.
    pub async fn kill_replica(&mut self, r: usize) {
        if let Some(app) = self.replicas[r].as_mut() {
            app.kill9().await;
        }
    }

    /// Starts replica `r` again on its data directory; the load follows it.
    pub async fn restart_replica(&mut self, r: usize) {
        if let Some(app) = self.replicas[r].take() {
            let app = app.start_again().await;
            if let Ok(mut channels) = self.channels.write() {
                channels[r] = app.channel.clone();
            }
            self.replicas[r] = Some(app);
        }
    }

    /// The index of the node leading the log's stream; `None` if no leader
    /// answers within half a second (while NATS elects one).
    pub async fn stream_leader(&self) -> Option<usize> {
        tokio::time::timeout(Duration::from_millis(500), self.ask_stream_leader())
            .await
            .ok()
            .flatten()
    }

    async fn ask_stream_leader(&self) -> Option<usize> {
        let servers: Vec<async_nats::ServerAddr> = self
            .nats
            .nodes
            .iter()
            .filter(|n| n.running())
            .filter_map(|n| n.url().parse().ok())
            .collect();
        let client = async_nats::connect(servers.as_slice()).await.ok()?;
        let js = async_nats::jetstream::new(client);
        let mut stream = js.get_stream("ACCESS").await.ok()?;
        let leader = stream.info().await.ok()?.cluster.clone()?.leader?;
        leader.trim_start_matches('n').parse().ok()
    }

    /// The `grpc.health.v1` status of replica `r`'s server (1 SERVING,
    /// 2 NOT_SERVING, -1 no answer).
    pub async fn health(&self, r: usize) -> i32 {
        let Some(app) = self.replicas[r].as_ref() else {
            return -1;
        };
        let mut client = tonic_health::pb::health_client::HealthClient::new(app.channel.clone());
        let ask = client.check(tonic_health::pb::HealthCheckRequest {
            service: String::new(),
        });
        match tokio::time::timeout(Duration::from_secs(1), ask).await {
            Ok(Ok(answer)) => answer.into_inner().status,
            _ => -1,
        }
    }
}

/// Starts a replica; a fresh cluster on a busy machine may not have its
/// JetStream assets ready in time, so a start that fails is tried again.
async fn start_replica(args: &[&str]) -> TestApp {
    let mut why = String::new();
    for _ in 0..3 {
        match TestApp::try_spawn_with(args).await {
            Ok(app) => return app,
            Err(e) => why = format!("{e:#}"),
        }
        tokio::time::sleep(Duration::from_secs(1)).await;
    }
    panic!("a replica did not start, three times: {why}");
}

/// Creates customer `id`, retrying with its request id while the replica
/// is not ready (a key it issued a moment ago may not be in its read models
/// yet), as a client should.
async fn create_customer(app: &TestApp, key: &str, id: &str) {
    let request_id = crate::new_id();
    for _ in 0..100 {
        let answer = app
            .access()
            .create_customer(app.req(
                key,
                pb::CreateCustomerRequest {
                    request_id: request_id.clone(),
                    customer: Some(crate::customer(id, None)),
                },
            ))
            .await;
        match answer {
            Ok(_) => return,
            Err(s) if s.code() == Code::Unavailable => {
                tokio::time::sleep(Duration::from_millis(100)).await;
            }
            Err(s) => panic!("creating customer {id}: {s:?}"),
        }
    }
    panic!("customer {id} not created within 10 s");
}

/// Replica flags on NATS `urls` with keys in `keys`.
fn replica_args(urls: &str, keys: &std::path::Path) -> Vec<String> {
    [
        "--nats-url",
        urls,
        "--nats-replicas",
        "3",
        "--key-dir",
        &keys.display().to_string(),
        "--nats-timeout",
        &format!("{}s", NATS_TIMEOUT.as_secs()),
        "--max-read-lag",
        "3s",
    ]
    .iter()
    .map(|s| s.to_string())
    .collect()
}

/// One acknowledged invitation.
#[derive(Clone, Debug)]
pub struct Acked {
    /// The invited email.
    pub email: String,
    /// The contact it made.
    pub contact_id: String,
    /// The replica that acknowledged it.
    pub replica: usize,
    /// Its position in the log.
    pub position: u64,
    /// When it was acknowledged.
    pub at: Instant,
}

/// One `UNAVAILABLE` answer.
#[derive(Clone, Debug)]
pub struct Refusal {
    /// The replica that answered.
    pub replica: usize,
    /// When the call began.
    pub began: Instant,
    /// How long it took to answer.
    pub took: Duration,
    /// What the replica said.
    pub reason: String,
}

/// Invitations sent to both replicas by concurrent callers, each retried
/// with its request id until acknowledged, as a client should.
pub struct Load {
    /// Everything acknowledged so far.
    pub acked: Arc<Mutex<Vec<Acked>>>,
    /// Every refusal so far.
    pub refusals: Arc<Mutex<Vec<Refusal>>>,
    stop: Arc<std::sync::atomic::AtomicBool>,
    callers: Vec<tokio::task::JoinHandle<()>>,
}

impl Load {
    /// Starts `per_replica` callers on each replica.
    pub fn start(d: &Deployment, per_replica: usize) -> Load {
        let acked = Arc::new(Mutex::new(Vec::new()));
        let refusals = Arc::new(Mutex::new(Vec::new()));
        let stop = Arc::new(std::sync::atomic::AtomicBool::new(false));
        let next = Arc::new(std::sync::atomic::AtomicUsize::new(0));
        let mut callers = Vec::new();
        for replica in 0..2 {
            for _ in 0..per_replica {
                let (acked, refusals, stop, next) =
                    (acked.clone(), refusals.clone(), stop.clone(), next.clone());
                let (channels, key) = (d.channels.clone(), d.key.clone());
                callers.push(tokio::spawn(async move {
                    while !stop.load(std::sync::atomic::Ordering::Relaxed) {
                        let i = next.fetch_add(1, std::sync::atomic::Ordering::Relaxed);
                        let email = format!("p{i}@shop.example");
                        let customer = format!("C{}", i % CUSTOMERS);
                        let request = invite_request(&customer, &email, None);
                        if let Some(done) =
                            until_acked(&channels, replica, &key, request, &refusals, &stop).await
                        {
                            let (position, contact_id) = done;
                            acked.lock().expect("acked").push(Acked {
                                email,
                                contact_id,
                                replica,
                                position,
                                at: Instant::now(),
                            });
                        }
                        tokio::time::sleep(Duration::from_millis(20)).await;
                    }
                }));
            }
        }
        Load {
            acked,
            refusals,
            stop,
            callers,
        }
    }

    /// Stops the callers (each finishes the invitation it is retrying).
    pub async fn stop(self) -> (Vec<Acked>, Vec<Refusal>) {
        self.stop.store(true, std::sync::atomic::Ordering::Relaxed);
        for c in self.callers {
            let _ = c.await;
        }
        let acked = self.acked.lock().expect("acked").clone();
        let refusals = self.refusals.lock().expect("refusals").clone();
        (acked, refusals)
    }

    /// Acknowledged so far.
    pub fn count(&self) -> usize {
        self.acked.lock().map_or(0, |a| a.len())
    }
}

/// Sends `request` to `replica` until it is acknowledged (with its request
/// id, so never twice); `None` if told to stop before it was acknowledged.
async fn until_acked(
    channels: &RwLock<Vec<Channel>>,
    replica: usize,
    key: &str,
    message: pb::InviteCustomerRequest,
    refusals: &Mutex<Vec<Refusal>>,
    stop: &std::sync::atomic::AtomicBool,
) -> Option<(u64, String)> {
    let deadline = Instant::now() + Duration::from_secs(120);
    loop {
        let channel = channels.read().expect("channels")[replica].clone();
        let mut request = tonic::Request::new(message.clone());
        let bearer = format!("Bearer {key}").parse().expect("a header value");
        request.metadata_mut().insert("authorization", bearer);
        let began = Instant::now();
        let answer = tokio::time::timeout(
            Duration::from_secs(30),
            pb::access_client::AccessClient::new(channel).invite_customer(request),
        )
        .await;
        match answer {
            Ok(Ok(reply)) => {
                let reply = reply.into_inner();
                return Some((reply.position, reply.contact_id));
            }
            Ok(Err(s)) if s.code() == Code::Unavailable || s.code() == Code::Aborted => {
                refusals.lock().expect("refusals").push(Refusal {
                    replica,
                    began,
                    took: began.elapsed(),
                    reason: format!("{:?}: {}", s.code(), s.message()),
                });
            }
            // The replica went away mid-call: the outcome is unknown, and
            // the retry with the same request id tells.
            Ok(Err(s)) if s.code() == Code::Unknown || s.code() == Code::Cancelled => {}
            Ok(Err(s)) => panic!("inviting {}: {s:?}", message.email),
            Err(_) => panic!("an invitation hung for 30 s instead of failing"),
        }
        // Abandoned unacknowledged, it may still have been written: its mail
        // is then one no one counts on, never a loss.
        if stop.load(std::sync::atomic::Ordering::Relaxed) {
            return None;
        }
        assert!(
            Instant::now() < deadline,
            "{} not acknowledged within 120 s",
            message.email
        );
        tokio::time::sleep(Duration::from_millis(100)).await;
    }
}

/// Mails received per recipient.
pub fn mails_per_recipient(smtp: &SmtpServer) -> HashMap<String, usize> {
    let mut per = HashMap::new();
    for mail in smtp.messages() {
        let to = mail
            .lines()
            .find_map(|l| l.strip_prefix("To: "))
            .unwrap_or_default()
            .trim()
            .to_owned();
        *per.entry(to).or_default() += 1;
    }
    per
}
