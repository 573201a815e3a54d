//! `access.v1.TenantAdmin`: a tenant's API keys and settings (admin keys).

use super::convert::{self, fingerprint};
use super::status::to_status;
use super::{Shared, context};
use crate::app::{
    Command, SetApprovalPolicy, SetBranding, SetEmailTemplateCommand, SetNotificationPolicy,
    SetPasswordPolicy, SetUsernameAdministrators,
};
use crate::domain::password_policy::PasswordPolicy;
use crate::domain::values::FieldViolation;
use access_catalogue::catalogue::EmailTemplateSet;
use access_mailer::templates;

use crate::domain::policy::Staff;
use crate::domain::values::TenantId;
use crate::domain::values::{Email, RequestId};
use access_catalogue::catalogue::DefaultVisibility;
use access_proto::v1 as pb;
use access_proto::v1::tenant_admin_server::TenantAdmin;
use tonic::{Request, Response, Status};

/// The tenant administration service.
#[derive(Clone)]
pub struct TenantAdminService(pub Shared);

impl TenantAdminService {
    async fn tenant(&self, tenant: &TenantId, position: u64) -> Result<pb::Tenant, Status> {
        let row = self
            .0
            .app
            .tenant(tenant, position)
            .await
            .map_err(to_status)?;
        Ok(pb::Tenant {
            tenant_id: tenant.to_string(),
            name: row.name,
            sites: row.sites,
            default_order_site: row.default_order_site,
            default_site: match row.default_visibility {
                DefaultVisibility::AllSites => String::new(),
                DefaultVisibility::OneSite(site) => site,
            },
            inactive_customers_may_log_in: row.inactive_customers_may_log_in,
            approval_required: row.approval_required,
            username_administrators: row.username_administrators,
            branding: Some(pb::Branding {
                logo_url: row.branding.logo_url.clone(),
                accent_colour: row.branding.accent_colour.clone(),
                portal_url: row.branding.portal_url.clone(),
            }),
            password_policy: Some(pb::PasswordPolicy {
                min_length: row.password_policy.min_length,
                require_mixed_case: row.password_policy.require_mixed_case,
                require_symbol: row.password_policy.require_symbol,
                rules: row.password_policy.describe(),
            }),
            second_factor: super::views::requirement_to_pb(row.second_factor) as i32,
        })
    }

    /// Runs a tenant command and answers with the tenant as it is after it.
    async fn run_tenant<M: prost::Message + Clone, C: Command>(
        &self,
        request: &Request<M>,
        method: &str,
        request_id: &str,
        cmd: impl FnOnce(TenantId, Staff) -> Result<C, Status>,
    ) -> Result<Response<pb::TenantReply>, Status> {
        let (principal, tenant, staff) = self.0.auth.staff(request).await?;
        let mut f = convert::Fields::default();
        let request_id = f.parse("request_id", RequestId::parse(request_id));
        f.finish()?;
        let request_id = request_id.ok_or_else(super::status::internal)?;
        let cmd = cmd(tenant.clone(), staff)?;
        let fp = fingerprint(method, request.get_ref(), |_| {});
        let ctx = context(
            request,
            request_id,
            fp,
            Some(tenant.clone()),
            principal.actor(),
        );
        let outcome = self.0.app.execute(&ctx, &cmd).await.map_err(to_status)?;
        Ok(Response::new(pb::TenantReply {
            position: outcome.position,
            tenant: Some(self.tenant(&tenant, outcome.position).await?),
        }))
    }
}

#[tonic::async_trait]
impl TenantAdmin for TenantAdminService {
    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn create_api_key(
        &self,
        request: Request<pb::CreateApiKeyRequest>,
    ) -> Result<Response<pb::CreateApiKeyReply>, Status> {
        let clear = |m: &mut pb::CreateApiKeyRequest| m.request_id.clear();
        let c = self
            .0
            .staff_command(&request, "CreateApiKey", clear, convert::create_api_key)
            .await?;
        let outcome = self
            .0
            .app
            .create_api_key(&c.ctx, c.cmd)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::CreateApiKeyReply {
            position: outcome.position,
            api_key: outcome.reply.text,
            key_id: outcome.reply.key_id,
        }))
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn revoke_api_key(
        &self,
        request: Request<pb::RevokeApiKeyRequest>,
    ) -> Result<Response<pb::RevokeApiKeyReply>, Status> {
        let clear = |m: &mut pb::RevokeApiKeyRequest| m.request_id.clear();
        let c = self
            .0
            .staff_command(&request, "RevokeApiKey", clear, convert::revoke_api_key)
            .await?;
        let outcome = self
            .0
            .app
            .revoke_api_key(&c.ctx, &c.cmd)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::RevokeApiKeyReply {
            position: outcome.position,
        }))
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn rotate_api_key(
        &self,
        request: Request<pb::RotateApiKeyRequest>,
    ) -> Result<Response<pb::CreateApiKeyReply>, Status> {
        let clear = |m: &mut pb::RotateApiKeyRequest| m.request_id.clear();
        let c = self
            .0
            .staff_command(&request, "RotateApiKey", clear, convert::rotate_api_key)
            .await?;
        let outcome = self
            .0
            .app
            .rotate_api_key(&c.ctx, c.cmd)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::CreateApiKeyReply {
            position: outcome.position,
            api_key: outcome.reply.text,
            key_id: outcome.reply.key_id,
        }))
    }

    #[tracing::instrument(skip_all, err(level = "info"))]
    async fn list_api_keys(
        &self,
        request: Request<pb::ListApiKeysRequest>,
    ) -> Result<Response<pb::ListApiKeysReply>, Status> {
        let (_, tenant, staff) = self.0.auth.staff(&request).await?;
        staff.may_manage_tenant().map_err(|e| to_status(e.into()))?;
        let keys = self
            .0
            .app
            .api_keys(&tenant, request.get_ref().min_position)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::ListApiKeysReply {
            keys: keys
                .into_iter()
                .map(|(key_id, row)| pb::ApiKeyInfo {
                    key_id,
                    role: row.role,
                    name: row.name,
                    rep_id: row.rep_id.unwrap_or_default(),
                    revoked: row.revoked,
                })
                .collect(),
        }))
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn update_tenant_settings(
        &self,
        request: Request<pb::UpdateTenantSettingsRequest>,
    ) -> Result<Response<pb::TenantReply>, Status> {
        let (principal, tenant, staff) = self.0.auth.staff(&request).await?;
        let r = request.get_ref();
        let (request_id, cmd) = convert::change_settings(tenant.clone(), staff, r)?;
        let fp = fingerprint("UpdateTenantSettings", r, |m| m.request_id.clear());
        let ctx = context(
            &request,
            request_id,
            fp,
            Some(tenant.clone()),
            principal.actor(),
        );
        let outcome = self.0.app.execute(&ctx, &cmd).await.map_err(to_status)?;
        Ok(Response::new(pb::TenantReply {
            position: outcome.position,
            tenant: Some(self.tenant(&tenant, outcome.position).await?),
        }))
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn set_username_administrators(
        &self,
        request: Request<pb::SetUsernameAdministratorsRequest>,
    ) -> Result<Response<pb::TenantReply>, Status> {
        let r = request.get_ref().clone();
        self.run_tenant(
            &request,
            "SetUsernameAdministrators",
            &r.request_id,
            |tenant, by| {
                let mut f = convert::Fields::default();
                let emails: Vec<Email> = r
                    .emails
                    .iter()
                    .enumerate()
                    .filter_map(|(i, e)| f.parse(&format!("emails[{i}]"), Email::parse(e)))
                    .collect();
                f.finish()?;
                Ok(SetUsernameAdministrators { tenant, by, emails })
            },
        )
        .await
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn set_approval_policy(
        &self,
        request: Request<pb::SetApprovalPolicyRequest>,
    ) -> Result<Response<pb::TenantReply>, Status> {
        let r = request.get_ref().clone();
        self.run_tenant(
            &request,
            "SetApprovalPolicy",
            &r.request_id,
            |tenant, by| {
                Ok(SetApprovalPolicy {
                    tenant,
                    by,
                    approval_required: r.approval_required,
                })
            },
        )
        .await
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn set_branding(
        &self,
        request: Request<pb::SetBrandingRequest>,
    ) -> Result<Response<pb::TenantReply>, Status> {
        let r = request.get_ref().clone();
        self.run_tenant(&request, "SetBranding", &r.request_id, |tenant, by| {
            let mut f = convert::Fields::default();
            let logo_url = f.parse("logo_url", convert::page_url(&r.logo_url, true));
            let portal_url = f.parse("portal_url", convert::portal_url(&r.portal_url));
            let accent = r.accent_colour.trim();
            let accent_ok = accent.is_empty()
                || (accent.len() == 7
                    && accent.starts_with('#')
                    && accent[1..].chars().all(|c| c.is_ascii_hexdigit()));
            f.parse(
                "accent_colour",
                if accent_ok {
                    Ok(())
                } else {
                    Err("use #rrggbb, e.g. #0b5fff".to_owned())
                },
            );
            let (logo_url, portal_url) = f.finish_with((logo_url, portal_url))?;
            Ok(SetBranding {
                tenant,
                by,
                branding: access_catalogue::catalogue::BrandingSet {
                    logo_url,
                    accent_colour: accent.to_lowercase(),
                    portal_url,
                },
            })
        })
        .await
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn set_second_factor_policy(
        &self,
        request: Request<pb::SetSecondFactorPolicyRequest>,
    ) -> Result<Response<pb::SetSecondFactorPolicyReply>, Status> {
        super::factors::set_policy(&self.0, request).await
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn set_password_policy(
        &self,
        request: Request<pb::SetPasswordPolicyRequest>,
    ) -> Result<Response<pb::TenantReply>, Status> {
        let r = request.get_ref().clone();
        self.run_tenant(
            &request,
            "SetPasswordPolicy",
            &r.request_id,
            |tenant, by| {
                let policy =
                    PasswordPolicy::new(r.min_length, r.require_mixed_case, r.require_symbol)
                        .map_err(|m| {
                            super::status::invalid(&[FieldViolation::new("min_length", m)])
                        })?;
                Ok(SetPasswordPolicy { tenant, by, policy })
            },
        )
        .await
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn set_email_template(
        &self,
        request: Request<pb::SetEmailTemplateRequest>,
    ) -> Result<Response<pb::SetEmailTemplateReply>, Status> {
        let (principal, tenant, staff) = self.0.auth.staff(&request).await?;
        let r = request.get_ref();
        let mut f = convert::Fields::default();
        let request_id = f.parse("request_id", RequestId::parse(&r.request_id));
        let kind = f.parse(
            "kind",
            templates::Kind::parse(r.kind.trim()).ok_or_else(convert::kind_help),
        );
        let parts = [r.subject.as_str(), r.text.as_str(), r.html.as_str()];
        let template = if parts.iter().all(|p| p.trim().is_empty()) {
            None
        } else {
            for (name, part) in ["subject", "text", "html"].into_iter().zip(parts) {
                if part.trim().is_empty() {
                    f.parse::<()>(
                        name,
                        Err("give all three parts (or none, for the built-in template)".into()),
                    );
                }
            }
            let t = templates::Template {
                subject: r.subject.clone(),
                text: r.text.clone(),
                html: r.html.clone(),
            };
            if parts.iter().all(|p| !p.trim().is_empty())
                && let Err(e) = self
                    .0
                    .app
                    .render_sample(t.clone())
                    .await
                    .map_err(to_status)?
            {
                f.parse::<()>(e.part, Err(format!("does not render: {}", e.message)));
            }
            Some(t)
        };
        let (request_id, kind) = f.finish_with((request_id, kind))?;
        let cmd = SetEmailTemplateCommand {
            tenant: tenant.clone(),
            by: staff,
            kind: kind.as_str().to_owned(),
            template: template.map(|t| EmailTemplateSet {
                kind: kind.as_str().to_owned(),
                subject: t.subject,
                text: t.text,
                html: t.html,
            }),
        };
        let fp = fingerprint("SetEmailTemplate", r, |m| m.request_id.clear());
        let ctx = context(&request, request_id, fp, Some(tenant), principal.actor());
        let outcome = self.0.app.execute(&ctx, &cmd).await.map_err(to_status)?;
        Ok(Response::new(pb::SetEmailTemplateReply {
            position: outcome.position,
        }))
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn set_notification_policy(
        &self,
        request: Request<pb::SetNotificationPolicyRequest>,
    ) -> Result<Response<pb::TenantReply>, Status> {
        let r = request.get_ref().clone();
        self.run_tenant(
            &request,
            "SetNotificationPolicy",
            &r.request_id,
            |tenant, by| {
                Ok(SetNotificationPolicy {
                    tenant,
                    by,
                    access_disabled: r.notify_access_disabled,
                    email_temporary_password: r.email_temporary_password,
                })
            },
        )
        .await
    }

    async fn preview_email(
        &self,
        request: Request<pb::PreviewEmailRequest>,
    ) -> Result<Response<pb::PreviewEmailReply>, Status> {
        let (_, tenant, staff) = self.0.auth.staff(&request).await?;
        staff.may_manage_tenant().map_err(|e| to_status(e.into()))?;
        let r = request.get_ref();
        let mut f = convert::Fields::default();
        let kind = f.parse(
            "kind",
            templates::Kind::parse(r.kind.trim()).ok_or_else(convert::kind_help),
        );
        f.finish()?;
        let kind = kind.ok_or_else(super::status::internal)?;
        let draft = (!r.subject.trim().is_empty()
            || !r.text.trim().is_empty()
            || !r.html.trim().is_empty())
        .then(|| templates::Template {
            subject: r.subject.clone(),
            text: r.text.clone(),
            html: r.html.clone(),
        });
        let preview = self
            .0
            .app
            .preview_email(&tenant, kind, draft)
            .await
            .map_err(to_status)?;
        Ok(Response::new(pb::PreviewEmailReply {
            subject: preview.rendered.subject,
            text: preview.rendered.text,
            html: preview.rendered.html,
            custom: preview.custom,
        }))
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn register_oidc_client(
        &self,
        request: Request<pb::RegisterOidcClientRequest>,
    ) -> Result<Response<pb::RegisterOidcClientReply>, Status> {
        super::oidc_clients::register(&self.0, request).await
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn update_oidc_client(
        &self,
        request: Request<pb::UpdateOidcClientRequest>,
    ) -> Result<Response<pb::OidcClientReply>, Status> {
        super::oidc_clients::update(&self.0, request).await
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn rotate_oidc_client_secret(
        &self,
        request: Request<pb::RotateOidcClientSecretRequest>,
    ) -> Result<Response<pb::RotateOidcClientSecretReply>, Status> {
        super::oidc_clients::rotate_secret(&self.0, request).await
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn remove_oidc_client(
        &self,
        request: Request<pb::RemoveOidcClientRequest>,
    ) -> Result<Response<pb::RemoveOidcClientReply>, Status> {
        super::oidc_clients::remove(&self.0, request).await
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn rotate_signing_key(
        &self,
        request: Request<pb::RotateSigningKeyRequest>,
    ) -> Result<Response<pb::RotateSigningKeyReply>, Status> {
        super::oidc_clients::rotate_signing_key(&self.0, request).await
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn create_webhook(
        &self,
        request: Request<pb::CreateWebhookRequest>,
    ) -> Result<Response<pb::CreateWebhookReply>, Status> {
        super::webhooks::create(&self.0, request).await
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn update_webhook(
        &self,
        request: Request<pb::UpdateWebhookRequest>,
    ) -> Result<Response<pb::WebhookReply>, Status> {
        super::webhooks::update(&self.0, request).await
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn rotate_webhook_secret(
        &self,
        request: Request<pb::RotateWebhookSecretRequest>,
    ) -> Result<Response<pb::RotateWebhookSecretReply>, Status> {
        super::webhooks::rotate_secret(&self.0, request).await
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn delete_webhook(
        &self,
        request: Request<pb::DeleteWebhookRequest>,
    ) -> Result<Response<pb::WebhookReply>, Status> {
        super::webhooks::delete(&self.0, request).await
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn resume_webhook(
        &self,
        request: Request<pb::ResumeWebhookRequest>,
    ) -> Result<Response<pb::WebhookReply>, Status> {
        super::webhooks::resume(&self.0, request).await
    }

    #[tracing::instrument(skip_all, fields(request_id = %request.get_ref().request_id), err(level = "info"))]
    async fn replay_webhook(
        &self,
        request: Request<pb::ReplayWebhookRequest>,
    ) -> Result<Response<pb::WebhookReply>, Status> {
        super::webhooks::replay(&self.0, request).await
    }

    async fn get_webhook(
        &self,
        request: Request<pb::GetWebhookRequest>,
    ) -> Result<Response<pb::Webhook>, Status> {
        super::webhooks::get(&self.0, request).await
    }

    async fn import(
        &self,
        request: Request<tonic::Streaming<pb::ImportRequest>>,
    ) -> Result<Response<pb::ImportReply>, Status> {
        super::imports::import(&self.0, request).await
    }

    async fn list_webhooks(
        &self,
        request: Request<pb::ListWebhooksRequest>,
    ) -> Result<Response<pb::ListWebhooksReply>, Status> {
        super::webhooks::list(&self.0, request).await
    }

    async fn list_oidc_clients(
        &self,
        request: Request<pb::ListOidcClientsRequest>,
    ) -> Result<Response<pb::ListOidcClientsReply>, Status> {
        super::oidc_clients::list(&self.0, request).await
    }

    async fn get_tenant(
        &self,
        request: Request<pb::GetTenantRequest>,
    ) -> Result<Response<pb::Tenant>, Status> {
        let (_, tenant, _) = self.0.auth.staff(&request).await?;
        Ok(Response::new(
            self.tenant(&tenant, request.get_ref().min_position).await?,
        ))
    }
}
