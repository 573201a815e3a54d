use super::*;

/// `CustomerCreated` v1 bytes as an early build wrote them: customer "C1", name "Acme".
const CUSTOMER_CREATED_V1_FIXTURE: &[u8] = &[2, b'C', b'1', 4, b'A', b'c', b'm', b'e'];

#[test]
fn a_stored_v1_customer_is_read_as_the_current_type() {
    let event = CustomerEvent::decode("CustomerCreated", 1, CUSTOMER_CREATED_V1_FIXTURE).unwrap();
    let expected = CustomerEvent::CustomerCreated(CustomerCreated {
        record: CustomerRecord {
            customer_id: "C1".into(),
            name: "Acme".into(),
            ..Default::default()
        },
        status: CustomerStatus::Active,
    });
    assert_eq!(event, expected);
    let v2 = postcard::to_stdvec(&legacy::CustomerCreatedV2 {
        customer_id: "C1".into(),
        name: "Acme".into(),
        status: CustomerStatus::Active,
    })
    .unwrap();
    assert_eq!(
        CustomerEvent::decode("CustomerCreated", 2, &v2).unwrap(),
        expected
    );
}

#[test]
fn current_events_round_trip_and_unknown_versions_are_refused() {
    let event = CustomerEvent::CustomerCreated(CustomerCreated {
        record: CustomerRecord {
            customer_id: "C1".into(),
            name: "Acme".into(),
            sales_rep: Some("anna".into()),
            ..Default::default()
        },
        status: CustomerStatus::Blacklisted,
    });
    let bytes = event.encode();
    assert_eq!(event.schema_version(), 3);
    assert_eq!(
        CustomerEvent::decode("CustomerCreated", 3, &bytes).unwrap(),
        event
    );
    assert!(matches!(
        CustomerEvent::decode("CustomerCreated", 9, &bytes),
        Err(CodecError::UnknownEvent { .. })
    ));
    assert!(matches!(
        CustomerEvent::decode("CustomerCreated", 2, &[0xff]),
        Err(CodecError::Malformed(_))
    ));
}

#[test]
fn version_one_password_and_notification_events_read_as_today_s_with_defaults() {
    let v1 = postcard::to_stdvec(&legacy::LocalPasswordSetV1 {
        password_hash: "$argon2id$x".into(),
        temporary: true,
    })
    .unwrap();
    assert_eq!(
        ContactEvent::decode("LocalPasswordSet", 1, &v1).unwrap(),
        ContactEvent::LocalPasswordSet(LocalPasswordSet {
            password_hash: "$argon2id$x".into(),
            temporary: true,
            generated: None,
        })
    );
    // Bytes as a v1 removal was stored: the factor id and the reason.
    let v1 = [2, b'f', b'1', 4, b'l', b'o', b's', b't'];
    assert_eq!(
        v1.to_vec(),
        postcard::to_stdvec(&legacy::SecondFactorRemovedV1 {
            factor_id: "f1".into(),
            reason: "lost".into(),
        })
        .unwrap()
    );
    assert_eq!(
        ContactEvent::decode("SecondFactorRemoved", 1, &v1).unwrap(),
        ContactEvent::SecondFactorRemoved(super::contact::SecondFactorRemoved {
            factor_id: "f1".into(),
            reason: "lost".into(),
            kind: "totp".into(),
        })
    );
    let v1 = postcard::to_stdvec(&legacy::NotificationPolicySetV1 {
        access_disabled: true,
    })
    .unwrap();
    assert_eq!(
        TenantEvent::decode("NotificationPolicySet", 1, &v1).unwrap(),
        TenantEvent::NotificationPolicySet(NotificationPolicySet {
            access_disabled: true,
            email_temporary_password: false,
        })
    );
    // A client registered before logout URIs: the same settings, told of
    // no logout.
    let v1_settings = legacy::OidcClientSettingsV1 {
        name: "Web shop".into(),
        redirect_uris: vec!["https://shop.example/cb".into()],
        scopes: vec!["openid".into()],
        access_token_ttl_s: 300,
        refresh_token_ttl_s: 3600,
    };
    let v1 = postcard::to_stdvec(&legacy::OidcClientRegisteredV1 {
        client_id: "c1".into(),
        kind: OidcClientKind::Public,
        settings: v1_settings.clone(),
        secret_sha256: None,
        server_key_id: 1,
    })
    .unwrap();
    let OidcClientEvent::OidcClientRegistered(registered) =
        OidcClientEvent::decode("OidcClientRegistered", 1, &v1).unwrap()
    else {
        panic!("a registration");
    };
    assert_eq!(registered.settings.redirect_uris, v1_settings.redirect_uris);
    assert_eq!(registered.settings.backchannel_logout_uri, None);
    assert!(registered.settings.post_logout_redirect_uris.is_empty());
    let v1 = postcard::to_stdvec(&legacy::OidcClientUpdatedV1 {
        settings: v1_settings,
    })
    .unwrap();
    assert!(matches!(
        OidcClientEvent::decode("OidcClientUpdated", 1, &v1).unwrap(),
        OidcClientEvent::OidcClientUpdated(u) if u.settings.name == "Web shop"
    ));
}

#[test]
fn a_sign_in_stored_before_it_said_how_reads_as_a_password() {
    let v1 = legacy::AuthorizationCodeIssuedV1 {
        client_id: "portal".into(),
        contact_id: "c1".into(),
        redirect_uri: "https://shop.example/cb".into(),
        scopes: vec!["openid".into()],
        code_challenge: None,
        nonce: Some("n".into()),
        auth_time_ms: 5,
        expires_at_ms: 9,
        session_id: "s".into(),
        server_key_id: 1,
        client_address: crate::personal::Personal::clear("192.0.2.1"),
    };
    let bytes = postcard::to_stdvec(&v1).unwrap();
    let OidcGrantEvent::AuthorizationCodeIssued(now) =
        OidcGrantEvent::decode("AuthorizationCodeIssued", 1, &bytes).unwrap()
    else {
        panic!()
    };
    assert_eq!((now.amr, now.auth_time_ms), (vec!["pwd".to_owned()], 5));
}
