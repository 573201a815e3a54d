//! Email previews: a tenant's template (or a draft) rendered with sample
//! values, bounded so that no template ties up the threads that answer calls.

use super::{App, AppError, Unit};
use crate::domain::streams;
use crate::domain::tenant::TenantState;
use crate::domain::values::TenantId;
use access_mailer::templates::{self, Kind, Rendered, Template, TemplateError};
use std::time::Duration;

/// How many previews render at once, and how long one may wait and take.
pub(super) const RENDERS_AT_ONCE: usize = 2;
const RENDER_DEADLINE: Duration = Duration::from_secs(2);

/// A rendered preview.
#[derive(Clone, Debug)]
pub struct Preview {
    /// The email as it would be sent, with sample values.
    pub rendered: Rendered,
    /// Whether it is the tenant's own template (or the draft) rather than the
    /// built-in one.
    pub custom: bool,
}

impl App {
    /// Renders `template` with the sample values on the blocking pool, a few
    /// at a time and under a deadline (the engine's own limits bound each
    /// render already). The inner error is the template's own fault.
    pub async fn render_sample(
        &self,
        template: Template,
    ) -> Result<Result<Rendered, TemplateError>, AppError> {
        let busy = || AppError::Busy("too many templates are being rendered; retry shortly".into());
        let _permit = tokio::time::timeout(RENDER_DEADLINE, self.renders.acquire())
            .await
            .map_err(|_| busy())?
            .map_err(|_| busy())?;
        let render = tokio::task::spawn_blocking(move || {
            templates::render(&template, &templates::Vars::sample())
        });
        match tokio::time::timeout(RENDER_DEADLINE, render).await {
            Ok(Ok(rendered)) => Ok(rendered),
            Ok(Err(e)) => Err(AppError::Internal(anyhow::anyhow!(
                "rendering a preview: {e}"
            ))),
            Err(_) => Ok(Err(TemplateError {
                part: "template",
                message: "takes too long to render".into(),
            })),
        }
    }

    /// The email of `kind` as the tenant would send it: `draft` if given,
    /// else the tenant's own template, else the built-in one.
    pub async fn preview_email(
        &self,
        tenant: &TenantId,
        kind: Kind,
        draft: Option<Template>,
    ) -> Result<Preview, AppError> {
        let custom = match draft {
            Some(d) => Some(d),
            None => {
                let state: TenantState = Unit::new(self).load(&streams::tenant(tenant)).await?;
                state.templates.get(kind.as_str()).map(|t| Template {
                    subject: t.subject.clone(),
                    text: t.text.clone(),
                    html: t.html.clone(),
                })
            }
        };
        let template = custom
            .clone()
            .unwrap_or_else(|| templates::default_template(kind));
        let rendered = self.render_sample(template).await?.map_err(|e| {
            crate::domain::DomainError::invalid(e.part, format!("does not render: {}", e.message))
        })?;
        Ok(Preview {
            rendered,
            custom: custom.is_some(),
        })
    }
}
