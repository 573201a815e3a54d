//! OpenID Connect grants: an authorization code that works once, for the
//! client and redirect it was issued to, with the PKCE verifier its
//! challenge asks for; then refresh tokens that rotate, where a replaced
//! token presented again ends the whole grant (it leaked, RFC 9700 §4.14.2).

use super::values::{GeneratedId, TenantId};
use super::{Aggregate, Change, streams};
use access_catalogue::catalogue::{
    AuthorizationCodeIssued, AuthorizationCodeRedeemed, Event, GrantEnd, GrantRevoked,
    OidcGrantEvent, RefreshTokenRotated,
};
use base64::Engine;
use base64::engine::general_purpose::URL_SAFE_NO_PAD;
use sha2::{Digest, Sha256};

/// How long an authorization code works (RFC 9700 asks for short-lived codes).
pub const CODE_TTL_MS: i64 = 60_000;
/// The longest a grant lives from the sign-in, however often it is
/// refreshed: then the contact proves the password again.
pub const MAX_GRANT_MS: i64 = crate::domain::oidc_clients::REFRESH_TOKEN_TTL_S.1 as i64 * 1000;

/// What the log says about one grant.
#[derive(Clone, Debug, Default, PartialEq, Eq)]
pub struct GrantState {
    /// The code as issued; `None` before.
    pub issued: Option<AuthorizationCodeIssued>,
    /// The current refresh token's generation (0 while the code is unused).
    pub generation: u32,
    /// When the current refresh token stops working unused.
    pub refresh_expires_at_ms: i64,
    /// Why it ended, once it has.
    pub ended: Option<GrantEnd>,
    /// Whether the client was told of the end (or telling it was given up).
    pub logout_settled: bool,
}

impl Aggregate for GrantState {
    fn evolve(mut self, event: &Event) -> Self {
        let Event::OidcGrant(e) = event else {
            return self;
        };
        match e {
            OidcGrantEvent::AuthorizationCodeIssued(i) => self.issued = Some(i.clone()),
            OidcGrantEvent::AuthorizationCodeRedeemed(r) => {
                self.generation = 1;
                self.refresh_expires_at_ms = r.refresh_expires_at_ms;
            }
            OidcGrantEvent::RefreshTokenRotated(r) => {
                self.generation = r.generation;
                self.refresh_expires_at_ms = r.refresh_expires_at_ms;
            }
            OidcGrantEvent::GrantRevoked(r) => self.ended = Some(r.reason),
            OidcGrantEvent::BackchannelLogoutDelivered(_)
            | OidcGrantEvent::BackchannelLogoutAbandoned(_) => self.logout_settled = true,
        }
        self
    }
}

/// Why a code or refresh token was not honoured. Each is `invalid_grant` on
/// the wire; the words differ for the client's developers.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum GrantRefusal {
    /// No such grant, or not this client's.
    Unknown,
    /// The code was already used (the grant is now ended).
    CodeUsed,
    /// The code or refresh token is past its time.
    Expired,
    /// The token request names another redirect URI than the authorization.
    RedirectMismatch,
    /// The PKCE verifier is missing or does not match the challenge.
    VerifierMismatch,
    /// The grant ended (revoked, signed out, access lost).
    Ended,
    /// A replaced refresh token was presented (the grant is now ended).
    Reused,
}

impl GrantRefusal {
    /// The `error_description` a client gets.
    pub fn describe(self) -> &'static str {
        match self {
            GrantRefusal::Unknown => "the code or refresh token is unknown or not this client's",
            GrantRefusal::CodeUsed => {
                "the code was already used; the tokens issued for it are revoked"
            }
            GrantRefusal::Expired => "the code or refresh token has expired",
            GrantRefusal::RedirectMismatch => {
                "redirect_uri differs from the authorization request's"
            }
            GrantRefusal::VerifierMismatch => "code_verifier does not match the code_challenge",
            GrantRefusal::Ended => "the sign-in has ended; sign in again",
            GrantRefusal::Reused => "the refresh token was already used; the sign-in is revoked",
        }
    }
}

/// A decision that may record something even when it refuses (a replayed
/// code or refresh token ends the grant).
#[derive(Debug, PartialEq, Eq)]
pub struct GrantDecision {
    /// What to append.
    pub changes: Vec<Change>,
    /// The answer.
    pub outcome: Result<(), GrantRefusal>,
}

impl GrantDecision {
    fn ok(changes: Vec<Change>) -> Self {
        GrantDecision {
            changes,
            outcome: Ok(()),
        }
    }

    fn refuse(refusal: GrantRefusal) -> Self {
        GrantDecision {
            changes: Vec::new(),
            outcome: Err(refusal),
        }
    }

    fn end(stream: &GrantStream, reason: GrantEnd, refusal: GrantRefusal) -> Self {
        GrantDecision {
            changes: vec![stream.change(OidcGrantEvent::GrantRevoked(GrantRevoked { reason }))],
            outcome: Err(refusal),
        }
    }
}

/// The stream a decision writes to.
pub struct GrantStream<'a> {
    /// The tenant.
    pub tenant: &'a TenantId,
    /// The grant.
    pub grant_id: &'a GeneratedId,
}

impl GrantStream<'_> {
    fn change(&self, event: OidcGrantEvent) -> Change {
        Change::new(
            streams::oidc_grant(self.tenant, self.grant_id),
            Event::OidcGrant(event),
        )
    }
}

/// Whether a PKCE verifier is well formed (RFC 7636 §4.1) and matches the
/// S256 challenge.
pub fn verifier_matches(challenge: &str, verifier: &str) -> bool {
    let well_formed = (43..=128).contains(&verifier.len())
        && verifier
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b"-._~".contains(&b));
    well_formed && URL_SAFE_NO_PAD.encode(Sha256::digest(verifier.as_bytes())) == challenge
}

/// Records a new grant with its code.
pub fn issue_code(
    stream: &GrantStream,
    state: &GrantState,
    code: AuthorizationCodeIssued,
) -> Vec<Change> {
    if state.issued.is_some() {
        return Vec::new();
    }
    vec![stream.change(OidcGrantEvent::AuthorizationCodeIssued(code))]
}

/// A token request presenting an authorization code.
pub struct Redeem<'a> {
    /// The authenticated (or, for a public client, named) client.
    pub client_id: &'a str,
    /// The redirect URI the request names.
    pub redirect_uri: &'a str,
    /// The PKCE verifier, if sent.
    pub verifier: Option<&'a str>,
    /// Now, Unix milliseconds.
    pub now_ms: i64,
    /// How long the first refresh token lives unused.
    pub refresh_ttl_ms: i64,
}

/// Redeems a code once. A second presentation ends the grant, revoking
/// the tokens the first one gave (RFC 6749 §4.1.2).
pub fn redeem(stream: &GrantStream, state: &GrantState, r: &Redeem) -> GrantDecision {
    let Some(issued) = state.issued.as_ref().filter(|i| i.client_id == r.client_id) else {
        return GrantDecision::refuse(GrantRefusal::Unknown);
    };
    if state.generation > 0 {
        return match state.ended {
            Some(_) => GrantDecision::refuse(GrantRefusal::CodeUsed),
            None => GrantDecision::end(stream, GrantEnd::CodeReplayed, GrantRefusal::CodeUsed),
        };
    }
    if state.ended.is_some() {
        return GrantDecision::refuse(GrantRefusal::Ended);
    }
    if r.now_ms >= issued.expires_at_ms {
        return GrantDecision::refuse(GrantRefusal::Expired);
    }
    if issued.redirect_uri != r.redirect_uri {
        return GrantDecision::refuse(GrantRefusal::RedirectMismatch);
    }
    let pkce_ok = match (&issued.code_challenge, r.verifier) {
        (Some(challenge), Some(verifier)) => verifier_matches(challenge, verifier),
        (None, None) => true,
        // A verifier without a challenge is a downgrade attempt (RFC 9700 §4.8.2).
        _ => false,
    };
    if !pkce_ok {
        return GrantDecision::refuse(GrantRefusal::VerifierMismatch);
    }
    GrantDecision::ok(vec![stream.change(
        OidcGrantEvent::AuthorizationCodeRedeemed(AuthorizationCodeRedeemed {
            refresh_expires_at_ms:
                (r.now_ms + r.refresh_ttl_ms).min(issued.auth_time_ms.saturating_add(MAX_GRANT_MS)),
        }),
    )])
}

/// A token request presenting a refresh token of `generation`.
pub struct Refresh<'a> {
    /// The authenticated (or named) client.
    pub client_id: &'a str,
    /// The generation the presented token carries.
    pub generation: u32,
    /// Now, Unix milliseconds.
    pub now_ms: i64,
    /// How long the next refresh token lives unused.
    pub refresh_ttl_ms: i64,
}

/// Rotates the refresh token: the presented one must be the current one.
pub fn refresh(stream: &GrantStream, state: &GrantState, r: &Refresh) -> GrantDecision {
    let Some(issued) = state.issued.as_ref().filter(|i| i.client_id == r.client_id) else {
        return GrantDecision::refuse(GrantRefusal::Unknown);
    };
    if state.generation == 0 || r.generation > state.generation {
        return GrantDecision::refuse(GrantRefusal::Unknown);
    }
    if state.ended.is_some() {
        return GrantDecision::refuse(GrantRefusal::Ended);
    }
    if r.generation < state.generation {
        return GrantDecision::end(stream, GrantEnd::RefreshReused, GrantRefusal::Reused);
    }
    if r.now_ms >= state.refresh_expires_at_ms {
        return GrantDecision::refuse(GrantRefusal::Expired);
    }
    GrantDecision::ok(vec![stream.change(OidcGrantEvent::RefreshTokenRotated(
        RefreshTokenRotated {
            generation: state.generation + 1,
            refresh_expires_at_ms:
                (r.now_ms + r.refresh_ttl_ms).min(issued.auth_time_ms.saturating_add(MAX_GRANT_MS)),
        },
    ))])
}

/// Whether the end of a grant for `reason` is told to its client: not when
/// the client itself revoked it.
pub fn tells_client(reason: GrantEnd) -> bool {
    reason != GrantEnd::RevokedByClient
}

/// Records what came of telling the client that the grant ended; nothing
/// when that is recorded already.
pub fn settle_logout(
    stream: &GrantStream,
    state: &GrantState,
    abandoned: Option<String>,
) -> Vec<Change> {
    if state.ended.is_none() || state.logout_settled {
        return Vec::new();
    }
    let event = match abandoned {
        None => OidcGrantEvent::BackchannelLogoutDelivered(
            access_catalogue::catalogue::BackchannelLogoutDelivered {},
        ),
        Some(reason) => OidcGrantEvent::BackchannelLogoutAbandoned(
            access_catalogue::catalogue::BackchannelLogoutAbandoned { reason },
        ),
    };
    vec![stream.change(event)]
}

/// Ends a grant for `reason`; nothing when it has already ended.
pub fn revoke(stream: &GrantStream, state: &GrantState, reason: GrantEnd) -> Vec<Change> {
    if state.issued.is_none() || state.ended.is_some() {
        return Vec::new();
    }
    vec![stream.change(OidcGrantEvent::GrantRevoked(GrantRevoked { reason }))]
}

#[cfg(test)]
#[path = "oidc_grants_tests.rs"]
mod tests;
