//! Wiring: opens the data directory, starts the projector, the mailer and the
//! servers, and stops them in order on a shutdown signal.

use crate::app::{App, AppParts, LoginThrottle, Settings, SystemClock};
use crate::config::ServeConfig;
use crate::grpc::auth::Authenticator;
use crate::grpc::{
    AccessService, AuditService, EventsService, OperatorService, SessionsService, Shared,
    TenantAdminService,
};
use crate::projections::{ReadModels, run_projector};
use crate::secrets::{DataDirSecrets, Passwords};
use access_log::file_log::FileLog;
use access_log::log::EventLog;
use access_log::nats::JetStreamLog;
use access_log::nats::KvVault;
use access_log::nats::connect_client;
use access_log::vault::{CachedVault, Vault};
use access_mailer::Mailer;
use access_proto::v1::access_server::AccessServer;
use access_proto::v1::audit_server::AuditServer;
use access_proto::v1::events_server::EventsServer;
use access_proto::v1::operator_server::OperatorServer;
use access_proto::v1::sessions_server::SessionsServer;
use access_proto::v1::tenant_admin_server::TenantAdminServer;
use anyhow::Context;
use std::future::Future;
use std::net::SocketAddr;
use std::sync::Arc;
use tokio::net::TcpListener;
use tokio::sync::watch;
use tokio::task::JoinHandle;
use tonic_health::server::HealthReporter;

/// A built, bound, not yet serving instance of the service.
pub struct Application {
    shared: Shared,
    health: HealthReporter,
    grpc: TcpListener,
    http: TcpListener,
    stop: watch::Sender<bool>,
    workers: Vec<JoinHandle<()>>,
    operator_key_path: std::path::PathBuf,
    tls: Option<crate::tls::TlsFiles>,
    /// The Prometheus endpoint, when asked for.
    metrics: Option<(metrics_exporter_prometheus::PrometheusHandle, TcpListener)>,
    /// Signs the pages' CSRF tokens.
    /// How long in-flight requests may finish after a stop.
    drain_timeout: std::time::Duration,
    /// Whose forwarding headers the pages believe.
    trusted_proxies: crate::proxies::TrustedProxies,
    /// The embedded key vault, synced at the stop so the next start reads
    /// no keys back from the log.
    file_vault: Option<Arc<access_log::file_vault::FileVault>>,
    /// The read models.
    models: Arc<ReadModels>,
    /// Turns true once the background check of the whole log has a verdict.
    log_checked: watch::Receiver<bool>,
}

impl Application {
    /// The use cases, for a caller in the same process (the benchmarks).
    pub fn app(&self) -> &App {
        &self.shared.app
    }

    /// Waits until the background check of the whole log that follows a
    /// start has a verdict (intact or damaged; health says which), or the
    /// service stops. The benchmarks measure a settled service after it.
    pub async fn whole_log_checked(&self) {
        let _ = self.log_checked.clone().wait_for(|done| *done).await;
    }

    /// The read models, for a process that leaves their memory to its exit
    /// (at a million contacts, freeing them one by one takes a second).
    pub fn read_models(&self) -> Arc<ReadModels> {
        self.models.clone()
    }

    /// Opens everything and binds the listeners.
    pub async fn build(config: &ServeConfig) -> anyhow::Result<Self> {
        let dir = &config.data_dir;
        let tls = config.tls.load()?;
        std::fs::create_dir_all(dir).with_context(|| format!("creating {}", dir.display()))?;
        crate::datadir::check_format(dir)?;
        let key_dir = config.key_dir.as_deref().unwrap_or(dir);
        std::fs::create_dir_all(key_dir)
            .with_context(|| format!("creating {}", key_dir.display()))?;
        let secrets = DataDirSecrets::load_or_create(key_dir)?;
        let nats = config
            .nats
            .settings("accessd")
            .map_err(|e| anyhow::anyhow!(e))?;
        let distributed = nats.is_some();
        // The read models' snapshot is loaded beside the log's open, which
        // checks every frame: the two are the start's longest steps and need
        // nothing of each other until the check below. Loading only reads,
        // so a start the log refuses still changes nothing; read models
        // still to be created or moved out of the earlier layout wait for
        // the log. (A refused start exits once the load ends.)
        let models_dir = dir.join("readmodels");
        let load_models = {
            let models_dir = models_dir.clone();
            move || {
                let opening = std::time::Instant::now();
                ReadModels::open(&models_dir).map(|m| (m, opening.elapsed()))
            }
        };
        let early = ReadModels::only_read_by_open(&models_dir)
            .then(|| tokio::task::spawn_blocking(load_models.clone()));
        let mut file_vault = None;
        // Where the public events go in the distributed mode.
        let mut public_nats = None;
        let (log, vault): (Arc<dyn EventLog>, Arc<dyn Vault>) = match nats {
            Some(mut settings) => {
                tracing::info!(url = %settings.url, stream = %settings.stream, "event log on NATS JetStream");
                // The replica's index of the log lives with its read models:
                // a restart goes on from where it was instead of reading the
                // whole log again.
                settings
                    .index_dir
                    .get_or_insert_with(|| dir.join("log-index"));
                let client = connect_client(&settings)
                    .await
                    .context("connecting to NATS")?;
                let log = JetStreamLog::with_client(client.clone(), &settings)
                    .await
                    .context("opening the event log on NATS")?;
                let vault = KvVault::open(
                    &async_nats::jetstream::new(client.clone()),
                    &settings.stream,
                    settings.replicas,
                )
                .await
                .context("opening the key vault on NATS")?;
                log.probe_also(vault.stream(), vault.probe_subject());
                public_nats = Some((client, settings));
                (Arc::new(log), Arc::new(vault))
            }
            None => {
                let opening = std::time::Instant::now();
                // The vault's file is read beside the log's check too; it
                // is changed (a torn tail cut) only once the log is accepted.
                let vault_dir = dir.join("vault");
                let early_vault = tokio::task::spawn_blocking(move || {
                    crate::embedded_vault::read_early(&vault_dir)
                });
                let log_dir = dir.join("log");
                let log = tokio::task::spawn_blocking(move || FileLog::open(&log_dir))
                    .await
                    .context("opening the event log")?
                    .context("opening the event log")?;
                tracing::info!(
                    elapsed_ms = opening.elapsed().as_millis() as u64,
                    "event log opened and checked"
                );
                let opening = std::time::Instant::now();
                let early_vault = early_vault.await.context("reading the key vault")?;
                let vault = crate::embedded_vault::open(&dir.join("vault"), &log, early_vault)
                    .await
                    .context("opening the key vault")?;
                tracing::info!(
                    elapsed_ms = opening.elapsed().as_millis() as u64,
                    "key vault opened"
                );
                file_vault = Some(vault.clone());
                (Arc::new(log), vault)
            }
        };
        let vault: Arc<dyn Vault> = CachedVault::new(vault);
        let loading = match early {
            Some(loading) => loading,
            None => tokio::task::spawn_blocking(load_models),
        };
        let (models, loaded) = loading
            .await
            .context("loading the read models")?
            .map_err(|e| crate::integrity::unopenable(&models_dir, e))?;
        let models = Arc::new(models);
        models
            .check_against(log.as_ref(), &models_dir)
            .await
            .context("checking the read models against the log")?;
        tracing::info!(
            load_ms = loaded.as_millis() as u64,
            position = models.checkpoint(),
            "read models loaded and checked against the log"
        );
        let parts = crate::health::Parts::default();
        let (stop, stopped) = watch::channel(false);
        let health = HealthReporter::new();
        crate::health::not_serving(&health, &SERVICES).await;
        let grpc = TcpListener::bind(config.grpc_addr)
            .await
            .with_context(|| format!("binding gRPC to {}", config.grpc_addr))?;
        let http = TcpListener::bind(config.http_addr)
            .await
            .with_context(|| format!("binding HTTP to {}", config.http_addr))?;
        let metrics = match config.metrics_addr {
            Some(addr) => Some((
                crate::metrics::install()?,
                TcpListener::bind(addr)
                    .await
                    .with_context(|| format!("binding metrics to {addr}"))?,
            )),
            None => None,
        };
        // Links must point at the address actually bound (port 0 picks one).
        let scheme = if tls.is_some() { "https" } else { "http" };
        let base_url = config
            .public_base_url
            .clone()
            .unwrap_or(format!("{scheme}://{}", http.local_addr()?));

        // What the read models must replay before the start serves at the
        // head; the start's other readers of the whole log wait for it.
        let start_head = log.latest().await.unwrap_or(0);
        let mut workers = vec![tokio::spawn(run_projector(
            models.clone(),
            log.clone(),
            vault.clone(),
            parts.clone(),
            stopped.clone(),
        ))];
        let app = App::new(AppParts {
            log: log.clone(),
            models: models.clone(),
            passwords: Passwords::new(config.hash_cost())?,
            keyring: secrets.keyring.clone(),
            vault: vault.clone(),
            clock: Arc::new(SystemClock),
            throttle: {
                let (accounts, addresses) = config.lockout();
                LoginThrottle::new(accounts, addresses)
            },
            settings: Settings {
                link_ttl: config.link_ttl,
                session_ttl: config.session_ttl,
                command_deadline: config.command_deadline,
                public_base_url: base_url.clone(),
                webhook_private_addresses: config.webhook_private_addresses,
                ..Settings::default()
            },
        });
        // Sign-outs wait for the read models to reach the log's head: its
        // sweep then covers all that came before, and the worker need not
        // read the whole log beside them while a replica catches up.
        workers.push(tokio::spawn(after_catching_up(
            models.clone(),
            start_head,
            stopped.clone(),
            crate::signout::run(app.clone(), log.clone(), stopped.clone()),
        )));
        let send_mail = match config.mailer.as_str() {
            "in-process" => true,
            "off" => false,
            _ => !distributed,
        };
        let mut mail_progress = None;
        if send_mail {
            let reporter: Arc<dyn access_mailer::DeliveryReporter> =
                Arc::new(crate::app::MailReporter(app.clone()));
            let mailer_config = config.mail.mailer_config(
                &dir.join("mailer"),
                &dir.join("outbox"),
                &base_url,
                Some(reporter),
            )?;
            let mailer = Mailer::open(
                mailer_config,
                secrets.keyring.clone(),
                log.clone(),
                vault.clone(),
            )
            .map_err(|e| crate::integrity::unopenable(&dir.join("mailer"), e))?;
            let opening = std::time::Instant::now();
            mailer
                .reconcile(log.as_ref())
                .await
                .context("checking the mailer's state against the log")?;
            tracing::info!(
                elapsed_ms = opening.elapsed().as_millis() as u64,
                "mailer opened and checked against the log"
            );
            mail_progress = Some(mailer.progress());
            let stopped = stopped.clone();
            let parts = parts.clone();
            workers.push(tokio::spawn(async move {
                if let Some(damage) = mailer.run(stopped).await {
                    parts.set(
                        crate::health::Part::Mailer,
                        crate::health::PartState::Stopped(damage.to_string()),
                    );
                }
            }));
        }
        let leases = match &public_nats {
            Some((client, settings)) => {
                crate::webhooks::Leases::nats(client.clone(), &settings.stream, settings.replicas)
                    .await?
            }
            None => crate::webhooks::Leases::Local,
        };
        if let Some((client, settings)) = public_nats {
            workers.push(tokio::spawn(after_catching_up(
                models.clone(),
                start_head,
                stopped.clone(),
                crate::feed::nats::publish(app.clone(), client, settings, stopped.clone()),
            )));
        }
        workers.push(tokio::spawn(after_catching_up(
            models.clone(),
            start_head,
            stopped.clone(),
            crate::webhooks::run(
                app.clone(),
                leases,
                crate::webhooks::Options {
                    max_backoff: config.webhook_max_backoff,
                    give_up_after: config.webhook_give_up_after,
                    private_addresses: config.webhook_private_addresses,
                },
                stopped.clone(),
            ),
        )));
        let (checked, log_checked) = watch::channel(false);
        workers.push(tokio::spawn(after_catching_up(
            models.clone(),
            start_head,
            stopped.clone(),
            crate::integrity::scrub(log.clone(), parts.clone(), stopped.clone(), checked),
        )));
        workers.push(tokio::spawn(crate::health::report(
            crate::health::Watched {
                log: log.clone(),
                models: models.clone(),
                max_lag: config.max_read_lag,
            },
            parts,
            health.clone(),
            &SERVICES,
            stopped,
        )));

        let checkpoints = crate::checkpoints::Checkpoints::new(secrets.audit_key.clone());
        workers.push(tokio::spawn(after_catching_up(
            models.clone(),
            start_head,
            stop.subscribe(),
            checkpoints
                .clone()
                .follow(log.clone(), config.checkpoint_interval, stop.subscribe()),
        )));
        let shared = Shared {
            auth: Authenticator::new(secrets.operator_key_sha256, app.clone()),
            app,
            checkpoints,
            mail: mail_progress,
        };
        Ok(Application {
            shared,
            health,
            grpc,
            http,
            stop,
            workers,
            operator_key_path: secrets.operator_key_path,
            tls,
            trusted_proxies: config.trusted_proxies.clone(),
            drain_timeout: config.drain_timeout,
            metrics,
            file_vault,
            models,
            log_checked,
        })
    }

    /// The bound gRPC address.
    pub fn grpc_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.grpc.local_addr()?)
    }

    /// The bound HTTP address.
    pub fn http_addr(&self) -> anyhow::Result<SocketAddr> {
        Ok(self.http.local_addr()?)
    }

    /// The bound metrics address, if metrics are on.
    pub fn metrics_addr(&self) -> anyhow::Result<Option<SocketAddr>> {
        Ok(match &self.metrics {
            Some((_, listener)) => Some(listener.local_addr()?),
            None => None,
        })
    }

    /// Where the operator key file is.
    pub fn operator_key_path(&self) -> &std::path::Path {
        &self.operator_key_path
    }

    /// Serves until `shutdown` completes, then stops accepting, finishes
    /// in-flight requests, and stops the projector and the mailer.
    pub async fn run_until_stopped(
        mut self,
        shutdown: impl Future<Output = ()> + Send + 'static,
    ) -> anyhow::Result<()> {
        let health_service = tonic_health::pb::health_server::HealthServer::new(
            tonic_health::server::HealthService::from_health_reporter(self.health.clone()),
        );
        let reflection = tonic_reflection::server::Builder::configure()
            .register_encoded_file_descriptor_set(access_proto::FILE_DESCRIPTOR_SET)
            .register_encoded_file_descriptor_set(tonic_health::pb::FILE_DESCRIPTOR_SET)
            .build_v1()?;

        let stop = self.stop.clone();
        let mut grpc_stop = stop.subscribe();
        let mut http_stop = stop.subscribe();
        tokio::spawn(async move {
            shutdown.await;
            tracing::info!("shutting down");
            let _ = stop.send(true);
        });

        if let Some((handle, listener)) = self.metrics.take() {
            let mut stop = self.stop.subscribe();
            tokio::spawn(async move {
                let served = axum::serve(listener, crate::metrics::router(handle))
                    .with_graceful_shutdown(async move {
                        let _ = stop.wait_for(|s| *s).await;
                    })
                    .await;
                if let Err(e) = served {
                    tracing::error!(error = %e, "metrics endpoint stopped");
                }
            });
        }
        let mut builder = grpc_server_limits(tonic::transport::Server::builder()).layer(
            tower::ServiceBuilder::new()
                .layer(crate::metrics::GrpcMetricsLayer)
                .layer(crate::grpc::gate::GateLayer::new(self.shared.auth.clone()))
                .into_inner(),
        );
        if let Some(tls) = &self.tls {
            builder = builder
                .tls_config(tls.grpc())
                .context("the gRPC server's TLS settings")?;
            tracing::info!(mutual = tls.mutual(), "gRPC and HTTP over TLS");
        }
        let grpc = builder
            .add_service(health_service)
            .add_service(reflection)
            .add_service(
                OperatorServer::new(OperatorService(self.shared.clone()))
                    .max_decoding_message_size(MAX_REQUEST_BYTES),
            )
            .add_service(
                AuditServer::new(AuditService(self.shared.clone()))
                    .max_decoding_message_size(MAX_REQUEST_BYTES),
            )
            .add_service(
                EventsServer::new(EventsService {
                    shared: self.shared.clone(),
                    stop: self.stop.subscribe(),
                    open: Default::default(),
                })
                .max_decoding_message_size(MAX_REQUEST_BYTES),
            )
            .add_service(
                AccessServer::new(AccessService(self.shared.clone()))
                    .max_decoding_message_size(MAX_REQUEST_BYTES),
            )
            .add_service(
                SessionsServer::new(SessionsService(self.shared.clone()))
                    .max_decoding_message_size(MAX_REQUEST_BYTES),
            )
            .add_service(
                TenantAdminServer::new(TenantAdminService(self.shared.clone()))
                    .max_decoding_message_size(MAX_REQUEST_BYTES),
            )
            .serve_with_incoming_shutdown(grpc_incoming(self.grpc), async move {
                let _ = grpc_stop.wait_for(|s| *s).await;
            });
        let router = crate::http::router(
            self.shared.app.clone(),
            self.tls.is_some(),
            self.trusted_proxies.clone(),
        )?;
        let http = async move {
            match &self.tls {
                Some(tls) => {
                    let config = tls.rustls_config()?;
                    crate::tls::serve_https(self.http, router, config, http_stop).await
                }
                None => {
                    axum::serve(
                        http_incoming(self.http),
                        router.into_make_service_with_connect_info::<std::net::SocketAddr>(),
                    )
                    .with_graceful_shutdown(async move {
                        let _ = http_stop.wait_for(|s| *s).await;
                    })
                    .await
                }
            }
            .map_err(anyhow::Error::from)
        };
        // In-flight requests finish after the stop, up to the drain deadline.
        let deadline = self.drain_timeout;
        let mut stopping = self.stop.subscribe();
        let servers = async { tokio::join!(grpc, http) };
        tokio::pin!(servers);
        let drained = tokio::select! {
            done = &mut servers => Some(done),
            _ = async {
                let _ = stopping.wait_for(|s| *s).await;
                tokio::time::sleep(deadline).await;
            } => None,
        };
        match drained {
            Some((grpc, http)) => {
                grpc.context("gRPC server")?;
                http.context("HTTP server")?;
            }
            None => tracing::warn!(
                deadline_ms = deadline.as_millis() as u64,
                "requests still in flight at the drain deadline were cut off"
            ),
        }
        let _ = self.stop.send(true);
        for worker in self.workers {
            let _ = worker.await;
        }
        if let Some(vault) = &self.file_vault
            && let Err(e) = vault.close()
        {
            // The keys are safe in the log; the next start puts them back.
            tracing::warn!(error = %e, "syncing the key vault at the stop failed");
        }
        tracing::info!("stopped");
        Ok(())
    }
}

/// The longest the start's background readers of the whole log wait for
/// the read models to catch up before they begin anyway.
const CATCH_UP_WAIT: std::time::Duration = std::time::Duration::from_secs(60);

/// Runs `then` once the read models reached `head` (or after
/// [`CATCH_UP_WAIT`]): the background check of the whole log and the signed
/// checkpoints' digest each read every event, and the sign-out worker would
/// otherwise follow every event from the snapshot's; beside them on two cores a
/// start's replay at a million contacts took 18 µs an event, three times a
/// rebuild's own pace. Nothing runs if the service stops first.
async fn after_catching_up(
    models: Arc<ReadModels>,
    head: u64,
    mut stop: watch::Receiver<bool>,
    then: impl Future<Output = ()> + Send,
) {
    let stopped = tokio::select! {
        _ = models.wait_for(head, CATCH_UP_WAIT) => false,
        _ = stop.wait_for(|s| *s) => true,
    };
    if !stopped {
        then.await;
    }
}

/// Every name health is reported under: the server as a whole and each service.
const SERVICES: [&str; 7] = [
    "",
    <AccessServer<AccessService> as tonic::server::NamedService>::NAME,
    <AuditServer<AuditService> as tonic::server::NamedService>::NAME,
    <EventsServer<EventsService> as tonic::server::NamedService>::NAME,
    <OperatorServer<OperatorService> as tonic::server::NamedService>::NAME,
    <SessionsServer<SessionsService> as tonic::server::NamedService>::NAME,
    <TenantAdminServer<TenantAdminService> as tonic::server::NamedService>::NAME,
];

pub use access_runtime::shutdown_signal;

/// The largest request body read: the protocol's limit on a whole request.
const MAX_REQUEST_BYTES: usize = access_proto::limits::MAX_REQUEST_BYTES;

/// The gRPC listener's connections, with the socket options tonic applies
/// only to listeners it binds itself. Without `TCP_NODELAY` an answer's
/// last small frame waited for the client's delayed acknowledgement: calls
/// stalled for 40 ms (the p99 of `CheckAccess` under load). Public so that
/// the benchmarks' baseline server accepts the same way.
pub fn grpc_incoming(listener: TcpListener) -> tonic::transport::server::TcpIncoming {
    tonic::transport::server::TcpIncoming::from(listener)
        .with_nodelay(Some(true))
        // A peer gone without a word is found out by the kernel too.
        .with_keepalive(Some(std::time::Duration::from_secs(60)))
}

/// The HTTP listener's connections with `TCP_NODELAY`, as
/// [`grpc_incoming`]'s; public for the benchmarks' baseline too.
pub fn http_incoming(
    listener: TcpListener,
) -> axum::serve::TapIo<TcpListener, fn(&mut tokio::net::TcpStream)> {
    use axum::serve::ListenerExt;
    fn nodelay(tcp: &mut tokio::net::TcpStream) {
        set_nodelay(tcp);
    }
    listener.tap_io(nodelay as fn(&mut tokio::net::TcpStream))
}

/// Sends small answers at once on an accepted HTTP connection.
pub(crate) fn set_nodelay(tcp: &tokio::net::TcpStream) {
    if let Err(e) = tcp.set_nodelay(true) {
        tracing::debug!(error = %e, "setting TCP_NODELAY on an HTTP connection");
    }
}

/// The gRPC server's own limits: what one connection may hold open, how long
/// a call may take, and how a silent peer is found out. Public so that the
/// benchmarks' baseline server runs under the same ones.
pub fn grpc_server_limits(builder: tonic::transport::Server) -> tonic::transport::Server {
    builder
        // Calls in flight per connection; more wait for a slot.
        .concurrency_limit_per_connection(64)
        .max_concurrent_streams(128)
        // A call's whole answer, queries' bounded waits included.
        .timeout(std::time::Duration::from_secs(60))
        .http2_keepalive_interval(Some(std::time::Duration::from_secs(30)))
        .http2_keepalive_timeout(Some(std::time::Duration::from_secs(10)))
        .http2_max_header_list_size(16 * 1024)
        .http2_max_pending_accept_reset_streams(Some(64))
}
