//! The refusals the app gives that no black-box test can bring about on
//! purpose: a command that keeps conflicting, events too large to store, a
//! renderer at its limit, read models that do not catch up. Each runs a real
//! app over a real file log; the reasons are read as a caller reads them.

use super::*;
use crate::domain::policy::{Role, Staff};
use crate::domain::tenant::CreateTenant;
use crate::domain::values::{GeneratedId, Name, RequestId, SiteName};
use crate::grpc::status::to_status;
use crate::passwords::HashCost;
use access_catalogue::Envelope;
use access_catalogue::catalogue::EmailTemplateSet;
use access_catalogue::{Actor, StreamId};
use access_keyring::ServerKey;
use access_log::file_log::FileLog;
use access_log::file_vault::FileVault;
use access_log::log::{Committed, LogError, RequestRecord};
use access_log::{AppendError, AppendRequest};
use futures::future::BoxFuture;
use tokio::sync::watch;
use tonic_types::StatusExt;
use uuid::Uuid;

/// The reason a caller would read in the status of `error`.
fn reason(error: AppError) -> String {
    to_status(error)
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_default()
}

struct Fixture {
    app: App,
    clock: Arc<ManualClock>,
    _dir: tempfile::TempDir,
}

fn fixture(
    wrap: impl FnOnce(Arc<dyn EventLog>) -> Arc<dyn EventLog>,
    models: Arc<ReadModels>,
) -> Fixture {
    let dir = tempfile::tempdir().expect("a temporary directory");
    let file_log = FileLog::open(&dir.path().join("log")).expect("a log");
    let vault = Arc::new(FileVault::open(&dir.path().join("vault")).expect("a vault"));
    vault.attach(&file_log).expect("the vault attached");
    let log: Arc<dyn EventLog> = Arc::new(file_log);
    let cheap = HashCost {
        memory_kib: 64,
        iterations: 1,
        parallelism: 1,
    };
    let clock = Arc::new(ManualClock::at(1_800_000_000_000));
    let app = App::new(AppParts {
        log: wrap(log),
        models,
        passwords: Passwords::new(cheap).expect("hashing"),
        keyring: Keyring::new(ServerKey::generate(1), Vec::new()),
        vault,
        settings: Settings {
            query_wait: Duration::from_millis(200),
            ..Settings::default()
        },
        throttle: LoginThrottle::new(Default::default(), Default::default()),
        clock: clock.clone(),
    });
    Fixture {
        app,
        clock,
        _dir: dir,
    }
}

fn context(request_id: &str, tenant: Option<&str>) -> CommandContext {
    CommandContext {
        request_id: RequestId::parse(request_id).expect("a request id"),
        fingerprint: [7; 32],
        tenant: tenant.map(TenantId::trusted),
        actor: Actor::Operator,
        correlation_id: Uuid::now_v7(),
    }
}

fn create_tenant(id: &str) -> CreateTenant {
    CreateTenant {
        tenant_id: TenantId::trusted(id),
        name: Name::parse("Acme").expect("a name"),
        sites: vec![SiteName::parse("Leeds").expect("a site")],
        default_order_site: SiteName::parse("Leeds").expect("a site"),
        admin_key_id: GeneratedId::generate(),
        admin_key_sha256: [0; 32],
    }
}

/// A log whose appends always lose to another writer.
struct AlwaysConflicting(Arc<dyn EventLog>);

impl EventLog for AlwaysConflicting {
    fn append(&self, request: AppendRequest) -> BoxFuture<'_, Result<Committed, AppendError>> {
        let stream = request.streams[0].stream.clone();
        Box::pin(async move {
            Err(AppendError::Conflict {
                stream,
                expected: 0,
                actual: 0,
            })
        })
    }
    fn request(&self, request_id: &str) -> BoxFuture<'_, Result<Option<RequestRecord>, LogError>> {
        self.0.request(request_id)
    }
    fn read_stream(&self, stream: &StreamId) -> BoxFuture<'_, Result<Vec<Envelope>, LogError>> {
        self.0.read_stream(stream)
    }
    fn read_from(&self, from: u64, max: usize) -> BoxFuture<'_, Result<Vec<Envelope>, LogError>> {
        self.0.read_from(from, max)
    }
    fn head(&self) -> watch::Receiver<u64> {
        self.0.head()
    }
}

#[path = "tests_oidc.rs"]
mod oidc;

#[tokio::test]
async fn a_command_that_keeps_conflicting_gives_up_with_conflict() {
    let models = Arc::new(ReadModels::temporary().expect("read models"));
    let f = fixture(|log| Arc::new(AlwaysConflicting(log)), models);
    let error = f
        .app
        .create_tenant(&context("r-1", Some("acme")), create_tenant("acme"))
        .await
        .expect_err("every append conflicts");
    assert_eq!(reason(error), "conflict");
}

#[tokio::test]
async fn events_too_large_to_store_are_refused_with_too_large() {
    let models = Arc::new(ReadModels::temporary().expect("read models"));
    let f = fixture(|log| log, models);
    f.app
        .create_tenant(&context("r-1", Some("acme")), create_tenant("acme"))
        .await
        .expect("the tenant is created");
    // Past the protocol's own limits, as only an in-process caller could send.
    let huge = "x".repeat(access_log::file_log::MAX_ENVELOPE_BYTES);
    let cmd = SetEmailTemplateCommand {
        tenant: TenantId::trusted("acme"),
        by: Staff {
            role: Role::Admin,
            rep_id: None,
        },
        kind: "invitation".into(),
        template: Some(EmailTemplateSet {
            kind: "invitation".into(),
            subject: "Hello".into(),
            text: huge.clone(),
            html: huge,
        }),
    };
    let error = f
        .app
        .execute(&context("r-2", Some("acme")), &cmd)
        .await
        .expect_err("too large for one envelope");
    assert_eq!(reason(error), "too_large");
}

#[tokio::test]
async fn a_preview_waits_for_a_free_renderer_and_then_says_busy() {
    let models = Arc::new(ReadModels::temporary().expect("read models"));
    let f = fixture(|log| log, models);
    let _held = f
        .app
        .renders
        .clone()
        .acquire_many_owned(preview::RENDERS_AT_ONCE as u32)
        .await
        .expect("the permits");
    let template =
        access_mailer::templates::default_template(access_mailer::templates::Kind::Invitation);
    let error = f
        .app
        .render_sample(template)
        .await
        .expect_err("no renderer frees up");
    assert_eq!(reason(error), "busy");
}

#[tokio::test]
async fn a_read_that_the_read_models_do_not_reach_in_time_says_read_model_behind() {
    // No projector runs: the read models stay where they are.
    let models = Arc::new(ReadModels::temporary().expect("read models"));
    let f = fixture(|log| log, models);
    let outcome = f
        .app
        .create_tenant(&context("r-1", Some("acme")), create_tenant("acme"))
        .await
        .expect("the tenant is created");
    let error = f
        .app
        .wait_for(outcome.position)
        .await
        .expect_err("nothing applies the log");
    assert_eq!(reason(error), "read_model_behind");
}

#[tokio::test]
async fn a_factor_is_added_with_a_session_only_within_fifteen_minutes_of_its_sign_in() {
    let models = Arc::new(ReadModels::temporary().expect("read models"));
    let f = fixture(|log| log, models);
    let contact = GeneratedId::generate().to_string();
    let (token, _) = f
        .app
        .open_session("acme", (&contact, "i1"), false, vec!["pwd".into()]);
    let acme = TenantId::trusted("acme");
    f.clock.advance(14 * 60_000);
    // Past the freshness rule, the next check is whether the contact may
    // sign in (this one is in no read model).
    let recent = f
        .app
        .enrolling(
            &acme,
            Enroller::Session(&token),
            crate::projections::FactorKind::Passkey,
        )
        .expect_err("no such contact");
    assert_eq!(reason(recent), "not_found");
    f.clock.advance(2 * 60_000);
    let stale = f
        .app
        .enrolling(
            &acme,
            Enroller::Session(&token),
            crate::projections::FactorKind::Passkey,
        )
        .expect_err("a sign-in 16 minutes old adds none");
    assert_eq!(reason(stale), "session_invalid");
    assert!(
        f.app.session(&acme, &token).is_some(),
        "the session itself stands"
    );
}
