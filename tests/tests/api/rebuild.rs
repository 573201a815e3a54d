//! Read models are disposable: delete them, restart, and every answer is the same.

use access_proto::v1 as pb;
use access_tests::{TestApp, invite_request, new_id, token_of};

async fn answers(app: &TestApp, key: &str, contacts: &[String]) -> Vec<String> {
    let mut out = Vec::new();
    let head = app.head().await;
    for id in contacts {
        let c = app
            .access()
            .get_contact(app.req(
                key,
                pb::GetContactRequest {
                    contact_id: id.clone(),
                    min_position: head,
                },
            ))
            .await
            .unwrap()
            .into_inner();
        let s = app
            .access()
            .get_site_visibility(app.req(
                key,
                pb::GetSiteVisibilityRequest {
                    contact_id: id.clone(),
                    min_position: head,
                },
            ))
            .await
            .unwrap()
            .into_inner();
        out.push(format!("{c:?} {s:?}"));
    }
    let login = app
        .sessions()
        .login(app.req(
            key,
            pb::LoginRequest {
                request_id: new_id(),
                login: "c0@x.example".into(),
                password: "sunlit7meadow".into(),
                client_address: String::new(),
            },
        ))
        .await
        .map(|s| s.into_inner().contact_id)
        .map_err(|e| e.code());
    out.push(format!("{login:?}"));
    out
}

#[tokio::test]
async fn deleting_the_read_models_and_restarting_gives_identical_answers() {
    // Arrange: a few contacts in every state.
    let app = TestApp::spawn().await;
    let key = app.create_tenant("acme").await;
    app.create_customer(&key, "C001").await;
    let mut contacts = Vec::new();
    for i in 0..6 {
        let site = if i % 2 == 0 { Some("York") } else { None };
        let r = app
            .access()
            .invite_customer(app.req(
                &key,
                invite_request("C001", &format!("c{i}@x.example"), site),
            ))
            .await
            .unwrap();
        contacts.push(r.into_inner().contact_id);
    }
    let link = app.wait_for_mail("c0@x.example", 1).await;
    app.sessions()
        .accept_invitation(pb::AcceptInvitationRequest {
            request_id: new_id(),
            token: token_of(&link),
            password: "sunlit7meadow".into(),
        })
        .await
        .unwrap();
    let cmd = |id: &String| pb::ContactCommand {
        request_id: new_id(),
        contact_id: id.clone(),
        reason: String::new(),
    };
    app.access()
        .disable_access(app.req(&key, cmd(&contacts[1])))
        .await
        .unwrap();
    app.access()
        .revoke_access(app.req(&key, cmd(&contacts[2])))
        .await
        .unwrap();
    // The first login and each mail's delivery are recorded too, a moment
    // later: let them land before comparing answers.
    answers(&app, &key, &contacts).await;
    while app.outbox_count() < 6 {
        tokio::time::sleep(std::time::Duration::from_millis(25)).await;
    }
    app.settled_head().await;
    let before = answers(&app, &key, &contacts).await;
    let mails = app.outbox_count();

    // Act
    let mut app = app;
    app.terminate().await;
    std::fs::remove_dir_all(app.dir.join("readmodels")).unwrap();
    let app = app.start_again().await;

    // Assert
    assert_eq!(answers(&app, &key, &contacts).await, before);
    assert_eq!(
        app.outbox_count(),
        mails,
        "rebuilding read models sends no mail"
    );
}
