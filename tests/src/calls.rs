//! The calls tests make over and over: tenants, keys, customers,
//! invitations, and what the service mailed.

use crate::{TestApp, customer, invite_request, link_with, new_id, status_kib, token_of};
use access_proto::v1 as pb;
use std::time::Duration;

impl TestApp {
    /// Creates an API key with `role` (and a rep id for rep keys) with the
    /// tenant's admin key; the reply holds the key, shown once.
    pub async fn create_key(
        &self,
        admin: &str,
        role: pb::Role,
        name: &str,
        rep: &str,
    ) -> pb::CreateApiKeyReply {
        access_proto::v1::tenant_admin_client::TenantAdminClient::new(self.channel.clone())
            .create_api_key(self.req(
                admin,
                pb::CreateApiKeyRequest {
                    request_id: new_id(),
                    role: role as i32,
                    name: name.into(),
                    rep_id: rep.into(),
                },
            ))
            .await
            .expect("key")
            .into_inner()
    }

    /// Creates a tenant with sites Leeds and York (orders to Leeds); returns its admin key.
    pub async fn create_tenant(&self, id: &str) -> String {
        let request = pb::CreateTenantRequest {
            request_id: new_id(),
            tenant_id: id.into(),
            name: format!("{id} supplies"),
            sites: vec!["Leeds".into(), "York".into()],
            default_order_site: "Leeds".into(),
        };
        // As a client should: UNAVAILABLE (a NATS cluster still electing its
        // leaders on a busy machine) is retried with the same request id.
        let mut tries = 0;
        loop {
            match self
                .operator()
                .create_tenant(self.req(&self.operator_key, request.clone()))
                .await
            {
                Ok(reply) => return reply.into_inner().admin_api_key,
                Err(s) if s.code() == tonic::Code::Unavailable && tries < 10 => {
                    tries += 1;
                    tokio::time::sleep(Duration::from_millis(500)).await;
                }
                Err(s) => panic!("create tenant: {s:?}"),
            }
        }
    }

    /// Creates a customer with no sales rep.
    pub async fn create_customer(&self, key: &str, id: &str) -> u64 {
        self.create_customer_with(key, customer(id, None)).await
    }

    /// Creates a customer from a record.
    pub async fn create_customer_with(&self, key: &str, record: pb::CustomerRecord) -> u64 {
        self.access()
            .create_customer(self.req(
                key,
                pb::CreateCustomerRequest {
                    request_id: new_id(),
                    customer: Some(record),
                },
            ))
            .await
            .unwrap_or_else(|s| panic!("create customer: {s:?}\n{}", self.log_tail(30)))
            .into_inner()
            .position
    }

    /// Accepts the invitation `link` names with `password`, over gRPC.
    pub async fn accept(&self, link: &str, password: &str) -> pb::Session {
        self.sessions()
            .accept_invitation(pb::AcceptInvitationRequest {
                request_id: new_id(),
                token: token_of(link),
                password: password.into(),
            })
            .await
            .unwrap_or_else(|s| panic!("accept {link}: {s:?}"))
            .into_inner()
    }

    /// Invites `email` for `customer` with the tenant's default site rule.
    pub async fn invite(&self, key: &str, customer: &str, email: &str) -> pb::InviteCustomerReply {
        self.access()
            .invite_customer(self.req(key, invite_request(customer, email, None)))
            .await
            .expect("invite")
            .into_inner()
    }

    /// Every invitation mailed to `email`, oldest first, as (file name, link).
    pub fn mails_to(&self, email: &str) -> Vec<(String, String)> {
        self.links_to(email, "/invite/")
    }

    /// Every mail to `email` with a link containing `marker` (`/invite/`,
    /// `/reset/`), oldest first, as (file name, link).
    pub fn links_to(&self, email: &str, marker: &str) -> Vec<(String, String)> {
        let mut found = Vec::new();
        let Ok(entries) = std::fs::read_dir(self.dir.join("outbox")) else {
            return found;
        };
        for entry in entries.flatten() {
            let path = entry.path();
            if path.extension().and_then(|e| e.to_str()) != Some("eml") {
                continue;
            }
            let Ok(text) = std::fs::read_to_string(&path) else {
                continue;
            };
            let text = text.replace("=\r\n", "");
            let to_line = text
                .lines()
                .find_map(|l| l.strip_prefix("To: "))
                .unwrap_or_default();
            if !to_line.contains(email) {
                continue;
            }
            if let Some(link) = link_with(&text, marker) {
                found.push((entry.file_name().to_string_lossy().into_owned(), link));
            }
        }
        // Files are named by event id, a time-ordered UUID: name order is send order.
        found.sort();
        found
    }

    /// Waits until `count` invitations to `email` were mailed; returns the newest link.
    pub async fn wait_for_mail(&self, email: &str, count: usize) -> String {
        self.wait_for_link(email, "/invite/", count).await
    }

    /// Waits until `count` mails to `email` carry a `marker` link; returns the newest.
    pub async fn wait_for_link(&self, email: &str, marker: &str, count: usize) -> String {
        for _ in 0..600 {
            let mails = self.links_to(email, marker);
            if mails.len() >= count {
                return mails.last().expect("a mail").1.clone();
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no {marker} mail #{count} to {email} within 15 s");
    }

    /// The peak resident memory of the process so far, in KiB (Linux).
    pub fn peak_rss_kib(&self) -> Option<u64> {
        self.status_kib("VmHWM:")
    }

    /// The resident memory of the process now, in KiB (Linux).
    pub fn rss_kib(&self) -> Option<u64> {
        self.status_kib("VmRSS:")
    }

    /// The process id, while it runs.
    pub fn pid(&self) -> Option<u32> {
        self.child.id()
    }

    fn status_kib(&self, field: &str) -> Option<u64> {
        status_kib(self.child.id()?, field)
    }

    /// Waits up to 15 s for an outbox mail to `email` containing `needle`
    /// (after undoing quoted-printable soft breaks); returns it.
    pub async fn wait_for_outbox(&self, email: &str, needle: &str) -> String {
        for _ in 0..600 {
            let found = std::fs::read_dir(self.dir.join("outbox"))
                .into_iter()
                .flatten()
                .flatten()
                .filter_map(|e| std::fs::read_to_string(e.path()).ok())
                .map(|m| m.replace("=\r\n", ""))
                .find(|m| {
                    m.lines()
                        .any(|l| l.starts_with("To: ") && l.contains(email))
                        && m.contains(needle)
                });
            if let Some(mail) = found {
                return mail;
            }
            tokio::time::sleep(Duration::from_millis(25)).await;
        }
        panic!("no mail to {email} about {needle:?} within 15 s");
    }

    /// The number of `.eml` files in the outbox.
    pub fn outbox_count(&self) -> usize {
        std::fs::read_dir(self.dir.join("outbox"))
            .map(|d| {
                d.flatten()
                    .filter(|e| e.path().extension().and_then(|x| x.to_str()) == Some("eml"))
                    .count()
            })
            .unwrap_or(0)
    }
}
