//! Every reason the protocol documents can actually occur: the refusals no
//! other test brings about are brought about here, and a last test checks
//! that each word of the proto's list is asserted by some test (here, in
//! another black-box test, or in the app's tests for what cannot be brought
//! about from outside).

use access_proto::v1 as pb;
use access_proto::v1::tenant_admin_client::TenantAdminClient;
use access_tests::{TestApp, new_id, token_of};
use tonic_types::StatusExt;

/// The reason a refusal carries.
fn reason<T: std::fmt::Debug>(result: Result<T, tonic::Status>) -> String {
    let status = result.expect_err("refused");
    status
        .get_details_error_info()
        .map(|info| info.reason)
        .unwrap_or_else(|| panic!("no reason in {status:?}"))
}

fn contact_command(contact_id: &str) -> pb::ContactCommand {
    pb::ContactCommand {
        request_id: new_id(),
        contact_id: contact_id.into(),
        reason: String::new(),
    }
}

fn check(contact_id: &str, action: pb::Action) -> pb::CheckAccessRequest {
    pb::CheckAccessRequest {
        contact_id: contact_id.into(),
        action: action.into(),
        ..Default::default()
    }
}

#[tokio::test]
async fn refusals_of_staff_commands_say_their_reason() {
    let app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C1").await;
    let invited = app.invite(&key, "C1", "ann@c1.example").await;
    let link = app.wait_for_link("ann@c1.example", "/invite/", 1).await;
    let session = app.accept(&link, "sunlit7meadow").await;
    let ann = invited.contact_id.clone();
    let mut access = app.access();

    // CheckAccess: allowed, then the customer inactive.
    let yes = access
        .check_access(app.req(&key, check(&ann, pb::Action::PlaceOrder)))
        .await
        .expect("a check")
        .into_inner();
    assert_eq!((yes.allowed, yes.reason.as_str()), (true, "allowed"));
    access
        .set_customer_status(app.req(
            &key,
            pb::SetCustomerStatusRequest {
                request_id: new_id(),
                customer_id: "C1".into(),
                status: pb::CustomerStatus::Inactive.into(),
                reason: String::new(),
            },
        ))
        .await
        .expect("inactive");
    let no = access
        .check_access(app.req(&key, check(&ann, pb::Action::PlaceOrder)))
        .await
        .expect("a check")
        .into_inner();
    assert_eq!(
        (no.allowed, no.reason.as_str()),
        (false, "customer_inactive")
    );

    // A session token that is not one.
    let bogus = pb::CheckAccessRequest {
        session_token: format!("{}x", session.session_token),
        action: pb::Action::Login.into(),
        ..Default::default()
    };
    assert_eq!(
        reason(access.check_access(app.req(&key, bogus)).await),
        "session_invalid"
    );

    // The same change twice, or one that changes nothing.
    assert_eq!(
        reason(
            access
                .restore_access(app.req(&key, contact_command(&ann)))
                .await
        ),
        "not_disabled"
    );
    assert_eq!(
        reason(
            access
                .approve_user(app.req(&key, contact_command(&ann)))
                .await
        ),
        "not_pending_approval"
    );
    access
        .disable_access(app.req(&key, contact_command(&ann)))
        .await
        .expect("disabled");
    assert_eq!(
        reason(
            access
                .disable_access(app.req(&key, contact_command(&ann)))
                .await
        ),
        "already_disabled"
    );
    let same = pb::UpdateCustomerRequest {
        request_id: new_id(),
        customer: Some(access_tests::customer("C1", None)),
    };
    assert_eq!(
        reason(access.update_customer(app.req(&key, same)).await),
        "unchanged"
    );

    // A resend for an invitation that was accepted.
    let resend = pb::ResendInvitationRequest {
        request_id: new_id(),
        contact_id: ann.clone(),
    };
    assert_eq!(
        reason(access.resend_invitation(app.req(&key, resend)).await),
        "already_accepted"
    );

    // A portal link deleted twice.
    let created = access
        .create_portal_link(app.req(
            &key,
            pb::CreatePortalLinkRequest {
                request_id: new_id(),
                customer_id: "C1".into(),
                kinds: vec![pb::DocumentKind::SalesOrder.into()],
                expires_at: String::new(),
            },
        ))
        .await
        .expect("a link")
        .into_inner();
    let delete = || pb::DeletePortalLinkRequest {
        request_id: new_id(),
        link_id: created.link_id.clone(),
    };
    access
        .delete_portal_link(app.req(&key, delete()))
        .await
        .expect("deleted");
    assert_eq!(
        reason(access.delete_portal_link(app.req(&key, delete())).await),
        "already_deleted"
    );

    // A position the log has not reached.
    let ahead = pb::GetContactRequest {
        contact_id: ann.clone(),
        min_position: 1 << 40,
    };
    assert_eq!(
        reason(access.get_contact(app.req(&key, ahead)).await),
        "position_beyond_log"
    );

    // A request id used again for another command.
    let first = access_tests::invite_request("C1", "bob@c1.example", None);
    let mut other = access_tests::invite_request("C1", "carol@c1.example", None);
    other.request_id = first.request_id.clone();
    access
        .invite_customer(app.req(&key, first))
        .await
        .expect("invited");
    assert_eq!(
        reason(access.invite_customer(app.req(&key, other)).await),
        "request_id_reused"
    );

    // Approval without anyone to approve.
    let mut admin = TenantAdminClient::new(app.channel.clone());
    let policy = pb::SetApprovalPolicyRequest {
        request_id: new_id(),
        approval_required: true,
    };
    assert_eq!(
        reason(admin.set_approval_policy(app.req(&key, policy)).await),
        "no_username_administrators"
    );

    // A tenant created twice.
    let again = pb::CreateTenantRequest {
        request_id: new_id(),
        tenant_id: "acme".into(),
        name: "Acme again".into(),
        sites: vec!["Leeds".into()],
        default_order_site: "Leeds".into(),
    };
    let operator_key = std::fs::read_to_string(app.dir.join("operator.key")).expect("the key");
    assert_eq!(
        reason(
            app.operator()
                .create_tenant(app.req(operator_key.trim(), again))
                .await
        ),
        "already_exists"
    );
}

#[tokio::test]
async fn refusals_of_links_and_codes_say_their_reason() {
    let app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C1").await;
    let invited = app.invite(&key, "C1", "dan@c1.example").await;
    let link = app.wait_for_link("dan@c1.example", "/invite/", 1).await;
    let mut sessions = app.sessions();

    // A login code that is not one.
    let code = pb::ExchangeLoginCodeRequest {
        code: "lgc_AAAA.BBBB".into(),
    };
    assert_eq!(
        reason(sessions.exchange_login_code(app.req(&key, code)).await),
        "bad_login_code"
    );

    // An invitation withdrawn before it was accepted.
    app.access()
        .revoke_access(app.req(&key, contact_command(&invited.contact_id)))
        .await
        .expect("revoked");
    let accept = pb::AcceptInvitationRequest {
        request_id: new_id(),
        token: token_of(&link),
        password: "sunlit7meadow".into(),
    };
    assert_eq!(
        reason(sessions.accept_invitation(accept).await),
        "link_revoked"
    );
}

#[tokio::test]
async fn a_command_on_damaged_history_says_history_damaged() {
    let app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C1").await;
    let invited = app.invite(&key, "C1", "eve@c1.example").await;
    app.settled_head().await;

    // A byte of the contact's first event flips on the disk under the
    // running service.
    let (offset, _) = access_tests::stored_events(&app.dir)
        .into_iter()
        .find(|(_, e)| e.stream.to_string().contains(&invited.contact_id))
        .expect("the contact's first event");
    let path = app.dir.join("log/events");
    let mut bytes = std::fs::read(&path).expect("the log file");
    bytes[offset as usize + 40] ^= 0x01;
    std::fs::write(&path, bytes).expect("written back");

    let resend = pb::ResendInvitationRequest {
        request_id: new_id(),
        contact_id: invited.contact_id,
    };
    assert_eq!(
        reason(app.access().resend_invitation(app.req(&key, resend)).await),
        "history_damaged"
    );
}

/// The words of the reason list at the top of the proto.
fn documented_reasons() -> Vec<String> {
    let proto = include_str!("../../../proto/access/v1/access.proto");
    proto
        .lines()
        .filter_map(|l| l.strip_prefix("//   "))
        .filter_map(|l| l.split_once(": ").map(|(word, _)| word.to_owned()))
        .filter(|w| w.chars().all(|c| c.is_ascii_lowercase() || c == '_'))
        .collect()
}

#[tokio::test]
async fn an_eleventh_webhook_says_limit_reached() {
    let app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    let mut admin = TenantAdminClient::new(app.channel.clone());
    let create = || pb::CreateWebhookRequest {
        request_id: new_id(),
        settings: Some(pb::WebhookSettings {
            url: "https://erp.example.com/hooks".into(),
            event_types: vec!["contact.invited".into()],
            description: "ERP".into(),
        }),
    };
    for _ in 0..10 {
        admin
            .create_webhook(app.req(&key, create()))
            .await
            .expect("within the limit");
    }
    let refused = admin.create_webhook(app.req(&key, create())).await;
    assert_eq!(reason(refused), "limit_reached");
}

#[test]
fn every_documented_reason_is_asserted_by_a_test() {
    let here = std::path::Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut sources = String::new();
    for entry in std::fs::read_dir(here.join("tests/api"))
        .expect("the black-box tests")
        .flatten()
    {
        if entry.path().extension().is_some_and(|e| e == "rs") {
            sources.push_str(&std::fs::read_to_string(entry.path()).expect("a test"));
        }
    }
    // What no black-box test can bring about on purpose (a command that
    // keeps conflicting, say) is shown by the app's own tests.
    sources.push_str(include_str!("../../../services/access/src/app/tests.rs"));
    let words = documented_reasons();
    assert!(words.len() > 40, "the proto's list was read: {words:?}");
    let unasserted: Vec<_> = words
        .iter()
        .filter(|w| !sources.contains(&format!("\"{w}\"")))
        .collect();
    assert!(
        unasserted.is_empty(),
        "documented reasons no test brings about: {unasserted:?}"
    );
}
