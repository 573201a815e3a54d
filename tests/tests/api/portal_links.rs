//! The Manager story: a per-customer capability link, created, resolved (and
//! counted), and killed at once by deleting it.

use access_proto::v1 as pb;
use access_tests::{TestApp, new_id};
use tonic::Code;
use tonic_types::StatusExt;

#[tokio::test]
async fn a_portal_link_shows_chosen_documents_until_it_is_deleted() {
    // Arrange
    let app = TestApp::spawn().await;
    let key = app.create_tenant("manager").await;
    let other = app.create_tenant("other").await;
    app.create_customer(&key, "C1").await;
    let request = pb::CreatePortalLinkRequest {
        request_id: new_id(),
        customer_id: "C1".into(),
        kinds: vec![
            pb::DocumentKind::SalesInvoice as i32,
            pb::DocumentKind::CreditNote as i32,
        ],
        expires_at: String::new(),
    };

    // Act
    let created = app
        .access()
        .create_portal_link(app.req(&key, request.clone()))
        .await
        .unwrap()
        .into_inner();
    let retried = app
        .access()
        .create_portal_link(app.req(&key, request))
        .await
        .unwrap()
        .into_inner();

    // Assert: one link, an unguessable URL, handed back the same on retry.
    assert_eq!(retried, created);
    assert!(created.url.ends_with(&format!("/p/{}", created.token)));
    assert!(created.token.len() >= 3 + 43, "256 bits of token");
    let resolve = |token: &str, key: &str| {
        let request = app.req(
            key,
            pb::ResolvePortalLinkRequest {
                token: token.into(),
            },
        );
        let mut access = app.access();
        async move {
            access
                .resolve_portal_link(request)
                .await
                .map(|r| r.into_inner())
        }
    };
    let first = resolve(&created.token, &key).await.unwrap();
    assert_eq!(first.customer_id, "C1");
    assert_eq!(
        first.kinds,
        vec![
            pb::DocumentKind::SalesInvoice as i32,
            pb::DocumentKind::CreditNote as i32
        ]
    );
    assert_eq!(
        resolve(&created.token, &key).await.unwrap().resolve_count,
        first.resolve_count + 1
    );
    assert_eq!(
        resolve(&created.token, &other).await.unwrap_err().code(),
        Code::NotFound,
        "another tenant sees nothing"
    );
    assert_eq!(
        resolve("pl_guess", &key).await.unwrap_err().code(),
        Code::NotFound
    );

    // Payments and reports are never shown; a past expiry is refused.
    let mut bad = pb::CreatePortalLinkRequest {
        request_id: new_id(),
        customer_id: "C1".into(),
        kinds: vec![pb::DocumentKind::Payment as i32],
        expires_at: String::new(),
    };
    assert_eq!(
        app.access()
            .create_portal_link(app.req(&key, bad.clone()))
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );
    bad.kinds = vec![pb::DocumentKind::SalesQuote as i32];
    bad.expires_at = "2001-01-01T00:00:00Z".into();
    assert_eq!(
        app.access()
            .create_portal_link(app.req(&key, bad))
            .await
            .unwrap_err()
            .code(),
        Code::InvalidArgument
    );

    // Deleting kills it at once.
    app.access()
        .delete_portal_link(app.req(
            &key,
            pb::DeletePortalLinkRequest {
                request_id: new_id(),
                link_id: created.link_id.clone(),
            },
        ))
        .await
        .unwrap();
    let err = resolve(&created.token, &key).await.unwrap_err();
    let reason = err
        .get_details_error_info()
        .map(|i| i.reason)
        .unwrap_or_default();
    assert_eq!(
        (err.code(), reason.as_str()),
        (Code::FailedPrecondition, "link_deleted")
    );
}
