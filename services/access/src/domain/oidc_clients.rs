//! OpenID Connect clients: the portals a tenant lets sign its contacts in.
//! A client's redirect URIs are matched exactly, so they are checked here
//! the way the OAuth 2.0 Security BCP asks: absolute, https (plain http only
//! to this machine, for native and development clients), no fragment.

use super::policy::Staff;
use super::values::{FieldViolation, GeneratedId, TenantId};
use super::{Aggregate, Change, DomainError, Reason, streams};
use access_catalogue::catalogue::{
    Event, OidcClientEvent, OidcClientKind, OidcClientRegistered, OidcClientRemoved,
    OidcClientSecretRotated, OidcClientSettings, OidcClientUpdated,
};

/// The scopes a client may be allowed.
pub const SCOPES: [&str; 4] = ["openid", "profile", "email", "offline_access"];
/// The algorithms a client's tokens may be signed with; the tenant keeps a
/// signing key of each.
pub const SIGNING_ALGS: [&str; 2] = ["EdDSA", "ES256"];
/// Most redirect URIs one client may have.
pub const MAX_REDIRECT_URIS: usize = 10;
/// The bounds of an access token's life, in seconds.
pub const ACCESS_TOKEN_TTL_S: (u32, u32) = (60, 3600);
/// The bounds of a refresh token's life, in seconds (an hour to 90 days).
pub const REFRESH_TOKEN_TTL_S: (u32, u32) = (3600, 90 * 86_400);

/// What the log says about one client.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct OidcClientState {
    /// False until it is registered.
    pub exists: bool,
    /// Removed clients never work again.
    pub removed: bool,
    /// Confidential or public, once registered.
    pub kind: Option<OidcClientKind>,
    /// Its settings.
    pub settings: Option<OidcClientSettings>,
    /// Its secret's generation (0 for a public client).
    pub secret_generation: u32,
}

impl Aggregate for OidcClientState {
    fn evolve(mut self, event: &Event) -> Self {
        let Event::OidcClient(e) = event else {
            return self;
        };
        match e {
            OidcClientEvent::OidcClientRegistered(r) => {
                self.exists = true;
                self.kind = Some(r.kind);
                self.settings = Some(r.settings.clone());
                self.secret_generation = u32::from(r.secret_sha256.is_some());
            }
            OidcClientEvent::OidcClientUpdated(u) => self.settings = Some(u.settings.clone()),
            OidcClientEvent::OidcClientSecretRotated(r) => self.secret_generation = r.generation,
            OidcClientEvent::OidcClientRemoved(_) => self.removed = true,
        }
        self
    }
}

/// Whether `uri` may be a redirect URI: an absolute https URL, or plain http
/// to a loopback address (RFC 8252), without a fragment or a user. It is
/// parsed as browsers parse it (the `url` crate, WHATWG), and stored as
/// given, since redirects are matched by exact string.
pub(super) fn redirect_uri_problem(uri: &str) -> Option<&'static str> {
    if uri.len() > 2000 {
        return Some("a redirect URI has at most 2,000 characters");
    }
    if uri
        .chars()
        .any(|c| c.is_whitespace() || c.is_control() || "\"<>\\^`{|}".contains(c))
    {
        return Some("a redirect URI has no spaces or characters that need escaping");
    }
    if uri.contains('#') {
        return Some("a redirect URI has no fragment");
    }
    let Ok(parsed) = url::Url::parse(uri) else {
        return Some("a redirect URI is an absolute https:// URL");
    };
    // As written, not as a parser would mend it (`https:///cb` reads as the
    // host `cb`): the scheme in lower case, then a host.
    let written = uri
        .strip_prefix(&format!("{}://", parsed.scheme()))
        .and_then(|rest| rest.split(['/', '?']).next());
    if written.is_none_or(str::is_empty) {
        return Some("a redirect URI is an absolute https:// URL naming a host");
    }
    if !parsed.username().is_empty() || parsed.password().is_some() {
        return Some("a redirect URI names a host and no user");
    }
    let loopback = match parsed.host() {
        Some(url::Host::Ipv4(ip)) => ip.is_loopback(),
        Some(url::Host::Ipv6(ip)) => ip.is_loopback(),
        Some(url::Host::Domain(name)) => name == "localhost",
        None => return Some("a redirect URI names a host"),
    };
    match parsed.scheme() {
        "https" => None,
        "http" if loopback => None,
        "http" => Some("use https: plain http only to this machine (127.0.0.1, ::1, localhost)"),
        _ => Some("a redirect URI is an absolute https:// URL"),
    }
}

/// Every problem with `settings`, by field.
pub fn check_settings(settings: &OidcClientSettings) -> Vec<FieldViolation> {
    let mut problems = Vec::new();
    let name = settings.name.trim();
    if name.is_empty() || name.chars().count() > 100 {
        problems.push(FieldViolation::new("name", "a name of 1 to 100 characters"));
    }
    if settings.redirect_uris.is_empty() || settings.redirect_uris.len() > MAX_REDIRECT_URIS {
        problems.push(FieldViolation::new(
            "redirect_uris",
            format!("give 1 to {MAX_REDIRECT_URIS} redirect URIs"),
        ));
    }
    for (i, uri) in settings.redirect_uris.iter().enumerate() {
        if let Some(problem) = redirect_uri_problem(uri) {
            problems.push(FieldViolation::new(&format!("redirect_uris[{i}]"), problem));
        } else if settings.redirect_uris[..i].contains(uri) {
            problems.push(FieldViolation::new(
                &format!("redirect_uris[{i}]"),
                "given twice",
            ));
        }
    }
    if let Some(problem) = settings
        .backchannel_logout_uri
        .as_deref()
        .and_then(redirect_uri_problem)
    {
        problems.push(FieldViolation::new(
            "backchannel_logout_uri",
            problem.replace("a redirect URI", "a logout URI"),
        ));
    }
    if let Some(problem) = settings
        .initiate_login_uri
        .as_deref()
        .and_then(redirect_uri_problem)
    {
        problems.push(FieldViolation::new(
            "initiate_login_uri",
            problem.replace("a redirect URI", "a login URI"),
        ));
    }
    if settings.post_logout_redirect_uris.len() > MAX_REDIRECT_URIS {
        problems.push(FieldViolation::new(
            "post_logout_redirect_uris",
            format!("give at most {MAX_REDIRECT_URIS}"),
        ));
    }
    for (i, uri) in settings.post_logout_redirect_uris.iter().enumerate() {
        if let Some(problem) = redirect_uri_problem(uri) {
            problems.push(FieldViolation::new(
                &format!("post_logout_redirect_uris[{i}]"),
                problem,
            ));
        }
    }
    if !SIGNING_ALGS.contains(&settings.token_signing_alg.as_str()) {
        problems.push(FieldViolation::new(
            "token_signing_alg",
            format!("one of {}", SIGNING_ALGS.join(", ")),
        ));
    }
    for (i, scope) in settings.scopes.iter().enumerate() {
        if !SCOPES.contains(&scope.as_str()) {
            problems.push(FieldViolation::new(
                &format!("scopes[{i}]"),
                format!("one of {}", SCOPES.join(", ")),
            ));
        } else if settings.scopes[..i].contains(scope) {
            problems.push(FieldViolation::new(&format!("scopes[{i}]"), "given twice"));
        }
    }
    if !settings.scopes.iter().any(|s| s == "openid") {
        problems.push(FieldViolation::new("scopes", "openid is always among them"));
    }
    let (lo, hi) = ACCESS_TOKEN_TTL_S;
    if !(lo..=hi).contains(&settings.access_token_ttl_s) {
        problems.push(FieldViolation::new(
            "access_token_ttl",
            format!("from {lo} to {hi} seconds"),
        ));
    }
    let (lo, hi) = REFRESH_TOKEN_TTL_S;
    if !(lo..=hi).contains(&settings.refresh_token_ttl_s) {
        problems.push(FieldViolation::new(
            "refresh_token_ttl",
            format!("from {lo} to {hi} seconds"),
        ));
    }
    problems
}

fn checked(settings: &OidcClientSettings) -> Result<(), DomainError> {
    let problems = check_settings(settings);
    if problems.is_empty() {
        Ok(())
    } else {
        Err(DomainError::Invalid(problems))
    }
}

/// Register a client of the caller's tenant.
#[derive(Clone, Debug)]
pub struct RegisterOidcClient {
    /// The caller's tenant.
    pub tenant: TenantId,
    /// Who asks.
    pub by: Staff,
    /// The new client's id.
    pub client_id: GeneratedId,
    /// Confidential or public.
    pub kind: OidcClientKind,
    /// What it may do.
    pub settings: OidcClientSettings,
    /// SHA-256 of its first secret (confidential clients).
    pub secret_sha256: Option<[u8; 32]>,
    /// The server key the secret is derived from.
    pub server_key_id: u8,
}

/// Decides `RegisterOidcClient`.
pub fn register(
    state: &OidcClientState,
    cmd: RegisterOidcClient,
) -> Result<Vec<Change>, DomainError> {
    cmd.by.may_manage_tenant()?;
    checked(&cmd.settings)?;
    if state.exists {
        return Err(DomainError::AlreadyExists(
            "this client exists already".into(),
        ));
    }
    let secret_sha256 =
        match cmd.kind {
            OidcClientKind::Confidential => Some(cmd.secret_sha256.ok_or_else(|| {
                DomainError::invalid("kind", "a confidential client needs a secret")
            })?),
            OidcClientKind::Public => None,
        };
    Ok(vec![Change::new(
        streams::oidc_client(&cmd.tenant, &cmd.client_id),
        Event::OidcClient(OidcClientEvent::OidcClientRegistered(
            OidcClientRegistered {
                client_id: cmd.client_id.to_string(),
                kind: cmd.kind,
                settings: cmd.settings,
                secret_sha256,
                server_key_id: cmd.server_key_id,
            },
        )),
    )])
}

/// A client that exists and was not removed.
fn live(state: &OidcClientState) -> Result<(), DomainError> {
    if !state.exists {
        return Err(DomainError::NotFound("client"));
    }
    if state.removed {
        return Err(DomainError::precondition(
            Reason::AlreadyDeleted,
            "this client was removed",
        ));
    }
    Ok(())
}

/// Decides `UpdateOidcClient`: the settings replaced as a whole.
pub fn update(
    state: &OidcClientState,
    tenant: &TenantId,
    by: &Staff,
    client_id: &GeneratedId,
    settings: OidcClientSettings,
) -> Result<Vec<Change>, DomainError> {
    by.may_manage_tenant()?;
    checked(&settings)?;
    live(state)?;
    if state.settings.as_ref() == Some(&settings) {
        return Err(DomainError::precondition(
            Reason::Unchanged,
            "the client is already so",
        ));
    }
    Ok(vec![Change::new(
        streams::oidc_client(tenant, client_id),
        Event::OidcClient(OidcClientEvent::OidcClientUpdated(OidcClientUpdated {
            settings,
        })),
    )])
}

/// Decides `RotateOidcClientSecret`; `secret_sha256` is the hash of the
/// secret of generation `state.secret_generation + 1`, derived from the
/// server key `server_key_id`.
pub fn rotate_secret(
    state: &OidcClientState,
    tenant: &TenantId,
    by: &Staff,
    client_id: &GeneratedId,
    (secret_sha256, server_key_id): ([u8; 32], u8),
) -> Result<Vec<Change>, DomainError> {
    by.may_manage_tenant()?;
    live(state)?;
    if state.kind != Some(OidcClientKind::Confidential) {
        return Err(DomainError::invalid(
            "client_id",
            "a public client has no secret",
        ));
    }
    Ok(vec![Change::new(
        streams::oidc_client(tenant, client_id),
        Event::OidcClient(OidcClientEvent::OidcClientSecretRotated(
            OidcClientSecretRotated {
                generation: state.secret_generation + 1,
                secret_sha256,
                server_key_id,
            },
        )),
    )])
}

/// Decides `RemoveOidcClient`.
pub fn remove(
    state: &OidcClientState,
    tenant: &TenantId,
    by: &Staff,
    client_id: &GeneratedId,
    reason: &str,
) -> Result<Vec<Change>, DomainError> {
    by.may_manage_tenant()?;
    live(state)?;
    Ok(vec![Change::new(
        streams::oidc_client(tenant, client_id),
        Event::OidcClient(OidcClientEvent::OidcClientRemoved(OidcClientRemoved {
            reason: reason.to_owned(),
        })),
    )])
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::domain::policy::Role;

    fn admin() -> Staff {
        Staff {
            role: Role::Admin,
            rep_id: None,
        }
    }

    fn settings(uris: &[&str]) -> OidcClientSettings {
        OidcClientSettings {
            name: "Web shop".into(),
            redirect_uris: uris.iter().map(|u| (*u).to_owned()).collect(),
            scopes: vec!["openid".into(), "email".into()],
            access_token_ttl_s: 300,
            refresh_token_ttl_s: 30 * 86_400,
            backchannel_logout_uri: None,
            post_logout_redirect_uris: Vec::new(),
            token_signing_alg: "EdDSA".into(),
            initiate_login_uri: None,
        }
    }

    fn register_cmd(kind: OidcClientKind, secret: Option<[u8; 32]>) -> RegisterOidcClient {
        RegisterOidcClient {
            tenant: TenantId::trusted("acme"),
            by: admin(),
            client_id: GeneratedId::trusted("c1"),
            kind,
            settings: settings(&["https://shop.acme.example/callback"]),
            secret_sha256: secret,
            server_key_id: 1,
        }
    }

    fn given(events: &[Change]) -> OidcClientState {
        events
            .iter()
            .fold(OidcClientState::default(), |s, c| s.evolve(&c.event))
    }

    #[test]
    fn redirect_uris_are_https_or_loopback_http_without_fragments() {
        for good in [
            "https://shop.acme.example/callback",
            "https://shop.acme.example:8443/cb?x=1",
            "http://127.0.0.1:8765/cb",
            "http://localhost/cb",
            "http://[::1]:9000/cb",
        ] {
            assert_eq!(redirect_uri_problem(good), None, "{good}");
        }
        for bad in [
            "http://shop.acme.example/callback",
            "https://shop.acme.example/cb#frag",
            "shop.acme.example/cb",
            "javascript://alert(1)",
            "https:///cb",
            "https://user@evil.example/cb",
            "https://shop.acme.example/a b",
            "http://127.0.0.1.evil.example/cb",
            "http://[::1]evil.example/cb",
            "http://[::1/cb",
            "http://127.0.0.1:80.evil.example/cb",
            "http://127.0.0.1:99999/cb",
            "https://:443/cb",
            "https://[]/cb",
            "HTTPS://shop.acme.example/cb",
        ] {
            assert!(redirect_uri_problem(bad).is_some(), "{bad}");
        }
    }

    #[test]
    fn settings_need_openid_known_scopes_and_bounded_lifetimes() {
        let mut s = settings(&["https://a.example/cb", "https://a.example/cb"]);
        s.scopes = vec!["email".into(), "admin".into()];
        s.access_token_ttl_s = 10;
        s.refresh_token_ttl_s = 365 * 86_400;
        s.name = " ".into();
        let fields: Vec<_> = check_settings(&s).into_iter().map(|v| v.field).collect();
        assert_eq!(
            fields,
            [
                "name",
                "redirect_uris[1]",
                "scopes[1]",
                "scopes",
                "access_token_ttl",
                "refresh_token_ttl"
            ]
        );
        assert!(check_settings(&settings(&["https://a.example/cb"])).is_empty());
    }

    #[test]
    fn a_confidential_client_is_registered_with_its_secret_hash_a_public_one_without() {
        let changes = register(
            &OidcClientState::default(),
            register_cmd(OidcClientKind::Confidential, Some([7; 32])),
        )
        .expect("registered");
        let state = given(&changes);
        assert!(state.exists);
        assert_eq!(state.secret_generation, 1);
        let public = given(
            &register(
                &OidcClientState::default(),
                register_cmd(OidcClientKind::Public, Some([7; 32])),
            )
            .expect("registered"),
        );
        assert_eq!(public.secret_generation, 0);
        assert!(matches!(
            register(&state, register_cmd(OidcClientKind::Public, None)),
            Err(DomainError::AlreadyExists(_))
        ));
    }

    #[test]
    fn only_admins_manage_clients() {
        let mut cmd = register_cmd(OidcClientKind::Public, None);
        cmd.by = Staff {
            role: Role::Service,
            rep_id: None,
        };
        assert!(matches!(
            register(&OidcClientState::default(), cmd),
            Err(DomainError::PermissionDenied { .. })
        ));
    }

    #[test]
    fn secrets_rotate_for_confidential_clients_and_removed_clients_stay_removed() {
        let (tenant, id) = (TenantId::trusted("acme"), GeneratedId::trusted("c1"));
        let mut changes = register(
            &OidcClientState::default(),
            register_cmd(OidcClientKind::Confidential, Some([7; 32])),
        )
        .expect("registered");
        let state = given(&changes);
        changes
            .extend(rotate_secret(&state, &tenant, &admin(), &id, ([8; 32], 1)).expect("rotated"));
        let state = given(&changes);
        assert_eq!(state.secret_generation, 2);
        let same = state.settings.clone().expect("settings");
        assert!(matches!(
            update(&state, &tenant, &admin(), &id, same),
            Err(DomainError::FailedPrecondition {
                reason: Reason::Unchanged,
                ..
            })
        ));
        changes.extend(remove(&state, &tenant, &admin(), &id, "replaced").expect("removed"));
        let state = given(&changes);
        assert!(matches!(
            remove(&state, &tenant, &admin(), &id, "again"),
            Err(DomainError::FailedPrecondition {
                reason: Reason::AlreadyDeleted,
                ..
            })
        ));
        let public = given(
            &register(
                &OidcClientState::default(),
                register_cmd(OidcClientKind::Public, None),
            )
            .expect("registered"),
        );
        assert!(matches!(
            rotate_secret(&public, &tenant, &admin(), &id, ([9; 32], 1)),
            Err(DomainError::Invalid(_))
        ));
    }
}
