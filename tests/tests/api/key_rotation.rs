//! Rotating the server key: links and sessions made with the old key keep
//! working; new links carry the new key's id.

use access_proto::v1 as pb;
use access_tests::{TestApp, binary, new_id, token_of};
use base64::Engine;

fn key_id_of(token: &str) -> u8 {
    base64::engine::general_purpose::URL_SAFE_NO_PAD
        .decode(token)
        .expect("base64")[1]
}

async fn accept(app: &TestApp, link: &str) -> Result<pb::Session, tonic::Status> {
    app.sessions()
        .accept_invitation(pb::AcceptInvitationRequest {
            request_id: new_id(),
            token: token_of(link),
            password: "sunlit7meadow".into(),
        })
        .await
        .map(|r| r.into_inner())
}

#[tokio::test]
async fn a_rotated_key_keeps_outstanding_links_and_sessions_alive() {
    let mut app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C001").await;
    app.invite(&key, "C001", "bob@hardware.example").await;
    app.invite(&key, "C001", "carol@hardware.example").await;
    let bob_link = app
        .wait_for_link("bob@hardware.example", "/invite/", 1)
        .await;
    let carol_link = app
        .wait_for_link("carol@hardware.example", "/invite/", 1)
        .await;
    assert_eq!(key_id_of(&token_of(&bob_link)), 1);
    let carol = accept(&app, &carol_link).await.expect("accept");

    app.terminate().await;
    let rotated = std::process::Command::new(binary("accessd"))
        .args(["keys", "--rotate", "--key-dir"])
        .arg(&app.dir)
        .output()
        .expect("accessd keys runs");
    assert!(
        rotated.status.success(),
        "{}",
        String::from_utf8_lossy(&rotated.stderr)
    );
    let text = std::fs::read_to_string(app.dir.join("server.key")).expect("key file");
    assert_eq!(text.lines().count(), 2);
    assert!(text.starts_with("2:"));
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        let mode = std::fs::metadata(app.dir.join("server.key"))
            .expect("metadata")
            .permissions()
            .mode();
        assert_eq!(mode & 0o777, 0o600);
    }
    let app = app.start_again().await;

    // The link sent before the rotation still works; so does the session.
    accept(&app, &bob_link)
        .await
        .expect("the old link is accepted");
    let checked = app
        .access()
        .check_access(app.req(
            &key,
            pb::CheckAccessRequest {
                session_token: carol.session_token.clone(),
                action: pb::Action::Login as i32,
                ..Default::default()
            },
        ))
        .await
        .expect("the old session is accepted")
        .into_inner();
    assert!(checked.allowed);

    // New links are made with the new key.
    app.invite(&key, "C001", "dan@hardware.example").await;
    let dan_link = app
        .wait_for_link("dan@hardware.example", "/invite/", 1)
        .await;
    assert_eq!(key_id_of(&token_of(&dan_link)), 2);
}
