//! What a page is made of (fields, rules, problems) and how the pages
//! render one: strings, the form and message templates, the answers every
//! flow shares.

use super::*;

/// A field of a form as the template shows it.
#[derive(serde::Serialize, Default)]
pub(super) struct Field {
    pub(super) name: &'static str,
    pub(super) label: String,
    pub(super) kind: &'static str,
    pub(super) autocomplete: &'static str,
    pub(super) value: String,
    pub(super) readonly: bool,
    pub(super) checked: bool,
    pub(super) error: String,
    /// For a `passkey` field: the ceremony's options, for the script.
    pub(super) data: String,
}

#[derive(serde::Serialize)]
pub(super) struct Rule {
    pub(super) text: String,
    pub(super) check: String,
}

#[derive(serde::Serialize)]
pub(super) struct Problem {
    pub(super) field: &'static str,
    pub(super) message: String,
}

/// A page answer: its status, body and cookies to set.
pub(super) struct Page {
    pub(super) status: StatusCode,
    pub(super) html: String,
    pub(super) cookies: Vec<String>,
    /// Where the page's form may lead besides the pages themselves: the
    /// tenant's portal, which a completed form hands the contact off to.
    pub(super) form_origin: Option<String>,
}

/// The extra origin a page's `form-action` allows, passed to the headers.
#[derive(Clone)]
pub(super) struct FormOrigin(pub(super) String);

/// The origin (`scheme://host[:port]`) of an http(s) URL, if it is one whose
/// characters are safe inside a header.
pub(super) fn origin_of(url: &str) -> Option<String> {
    let (scheme, rest) = url.split_once("://")?;
    if scheme != "https" && scheme != "http" {
        return None;
    }
    let host = rest.split(['/', '?', '#']).next()?;
    let safe = !host.is_empty()
        && host
            .chars()
            .all(|c| c.is_ascii_alphanumeric() || matches!(c, '.' | '-' | ':' | '[' | ']'));
    safe.then(|| format!("{scheme}://{host}"))
}

impl IntoResponse for Page {
    fn into_response(self) -> Response {
        let mut response = (self.status, axum::response::Html(self.html)).into_response();
        if let Some(origin) = self.form_origin {
            response.extensions_mut().insert(FormOrigin(origin));
        }
        for c in self.cookies {
            if let Ok(v) = HeaderValue::from_str(&c) {
                response.headers_mut().append(header::SET_COOKIE, v);
            }
        }
        response
    }
}

impl Pages {
    pub(super) fn t(&self, key: &str) -> String {
        self.strings
            .get(key)
            .cloned()
            .unwrap_or_else(|| key.to_owned())
    }

    /// A string with `{name}` placeholders filled.
    pub(super) fn tf(&self, key: &str, values: &[(&str, &str)]) -> String {
        values
            .iter()
            .fold(self.t(key), |s, (k, v)| s.replace(&format!("{{{k}}}"), v))
    }

    pub(super) fn render(
        &self,
        template: &str,
        status: StatusCode,
        ctx: minijinja::Value,
        cookies: Vec<String>,
    ) -> Page {
        let html = self
            .env
            .get_template(template)
            .and_then(|t| t.render(ctx))
            .unwrap_or_else(|e| {
                tracing::error!(error = %e, "a page did not render");
                "<!doctype html><title>Error</title><p>Something went wrong.</p>".to_owned()
            });
        Page {
            status,
            html,
            cookies,
            form_origin: None,
        }
    }

    /// A page with a title, a paragraph, maybe a button and a link.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn message(
        &self,
        status: StatusCode,
        tenant: Option<(&str, &TenantRow)>,
        title: &str,
        body: String,
        button: Option<(&str, String, String)>,
        after: Option<(String, String)>,
        cookies: Vec<String>,
    ) -> Page {
        let (tenant_id, name, logo) = match tenant {
            Some((id, row)) => (
                id.to_owned(),
                row.name.clone(),
                row.branding.logo_url.clone(),
            ),
            None => (String::new(), String::new(), String::new()),
        };
        let button = button.map(|(action, text, csrf)| {
            minijinja::context! { action => action, text => text, csrf => csrf }
        });
        let csrf = button
            .as_ref()
            .and_then(|b| b.get_attr("csrf").ok())
            .map(|v| v.to_string())
            .unwrap_or_default();
        self.render(
            "message.html",
            status,
            context! {
                t => &self.strings,
                title => self.t(title),
                body => body,
                tenant_id => tenant_id,
                tenant_name => name,
                logo_url => logo,
                button => button,
                csrf => csrf,
                after => after.map(|(href, text)| context! { href => href, text => text }),
            },
            cookies,
        )
    }

    pub(super) fn rules(&self, tenant: &TenantRow) -> Vec<Rule> {
        let p = &tenant.password_policy;
        let words = p.describe();
        let checks = [
            format!("length:{}", p.min_length),
            "letter".into(),
            "digit".into(),
        ];
        let mut rules: Vec<Rule> = words
            .iter()
            .enumerate()
            .map(|(i, text)| Rule {
                text: text.clone(),
                check: checks.get(i).cloned().unwrap_or_default(),
            })
            .collect();
        // "letter and digit" is one line: split its check so each can show.
        if let Some(rule) = rules.get_mut(1) {
            rule.check = "letter".into();
        }
        let mut i = 2;
        if p.require_mixed_case {
            if let Some(rule) = rules.get_mut(i) {
                rule.check = "mixed".into();
            }
            i += 1;
        }
        if p.require_symbol
            && let Some(rule) = rules.get_mut(i)
        {
            rule.check = "symbol".into();
        }
        rules
    }

    /// A password form.
    #[allow(clippy::too_many_arguments)]
    pub(super) fn form(
        &self,
        status: StatusCode,
        (tenant_id, tenant): (&str, &TenantRow),
        title: &str,
        intro: String,
        action: &str,
        fields: Vec<Field>,
        rules: bool,
        submit: &str,
        after: Option<(String, String)>,
        headers: &HeaderMap,
        mut cookies: Vec<String>,
    ) -> Page {
        let (csrf_cookie, set) = self.csrf_cookie(headers);
        cookies.extend(set);
        let errors: Vec<Problem> = fields
            .iter()
            .filter(|f| !f.error.is_empty())
            .map(|f| Problem {
                field: f.name,
                message: f.error.clone(),
            })
            .collect();
        let mut page = self.render(
            "form.html",
            status,
            context! {
                t => &self.strings,
                title => self.t(title),
                intro => intro,
                tenant_id => tenant_id,
                tenant_name => &tenant.name,
                logo_url => &tenant.branding.logo_url,
                action => action,
                csrf => self.csrf(&csrf_cookie, action),
                fields => fields,
                errors => errors,
                rules => if rules { self.rules(tenant) } else { Vec::new() },
                submit => self.t(submit),
                after => after.map(|(href, text)| context! { href => href, text => text }),
            },
            cookies,
        );
        // A completed form leads to the tenant's portal, or to the client
        // that starts sign-ins.
        let initiate = self.app.initiate_login_url(tenant_id).ok().flatten();
        let mut origins: Vec<String> = [
            Some(tenant.branding.portal_url.as_str()),
            initiate.as_deref(),
        ]
        .into_iter()
        .flatten()
        .filter_map(origin_of)
        .collect();
        // A sign-in waiting for this form ends at its client.
        origins.extend(self.pending_client_origin(headers, tenant_id));
        page.form_origin = (!origins.is_empty()).then(|| origins.join(" "));
        page
    }

    pub(super) fn tenant(&self, id: &str) -> Option<TenantRow> {
        self.app.tenant_row(id).ok().flatten()
    }

    pub(super) fn form_expired(&self) -> Page {
        self.message(
            StatusCode::FORBIDDEN,
            None,
            "form_expired_title",
            self.t("form_expired_body"),
            None,
            None,
            Vec::new(),
        )
    }

    pub(super) fn too_many(&self) -> Page {
        self.message(
            StatusCode::TOO_MANY_REQUESTS,
            None,
            "too_many_title",
            self.t("too_many_body"),
            None,
            None,
            Vec::new(),
        )
    }

    /// After a password was set (written at `position`): back to a waiting
    /// sign-in, to the client that starts sign-ins, the portal with a login
    /// code, the approval page, or a page that says it is done.
    pub(super) async fn finished(
        &self,
        headers: &HeaderMap,
        position: u64,
        tenant_id: &str,
        contact_id: &str,
        pending: bool,
        cookies: Vec<String>,
    ) -> Response {
        if let Err(e) = self.app.wait_for(position).await {
            tracing::warn!(error = %e, "the read model is behind a page's write");
        }
        // A sign-in was waiting for this password: back to it, signed in;
        // else a client that starts sign-ins (third-party-initiated login).
        let to = self
            .pending_authorization(headers, tenant_id)
            .or_else(|| self.app.initiate_login_url(tenant_id).ok().flatten());
        if let Some(to) = to.filter(|_| !pending) {
            match self
                .app
                .session_for(tenant_id, contact_id, position, &[])
                .await
            {
                Ok(crate::app::Opened::Session { token, .. }) => {
                    return self.resume_authorization(tenant_id, &token, &to, cookies);
                }
                // The sign-in asks for the second factor when it comes back.
                Ok(crate::app::Opened::PendingApproval | crate::app::Opened::SecondFactor(_)) => {}
                Err(e) => return failure(self, e),
            }
        }
        let Some(tenant) = self.tenant(tenant_id) else {
            return not_found_page(self).into_response();
        };
        let name = tenant.name.clone();
        if pending {
            return self
                .message(
                    StatusCode::OK,
                    Some((tenant_id, &tenant)),
                    "pending_title",
                    self.tf("pending_body", &[("tenant", &name)]),
                    None,
                    None,
                    cookies,
                )
                .into_response();
        }
        match self.app.hand_off_url(tenant_id, contact_id) {
            Ok(Some(url)) => {
                let mut response =
                    (StatusCode::SEE_OTHER, [(header::LOCATION, url)]).into_response();
                for c in cookies {
                    if let Ok(v) = HeaderValue::from_str(&c) {
                        response.headers_mut().append(header::SET_COOKIE, v);
                    }
                }
                response
            }
            _ => self
                .message(
                    StatusCode::OK,
                    Some((tenant_id, &tenant)),
                    "done_title",
                    self.tf("done_body", &[("tenant", &name)]),
                    None,
                    None,
                    cookies,
                )
                .into_response(),
        }
    }
}

pub(super) fn not_found_page(pages: &Pages) -> Page {
    pages.message(
        StatusCode::NOT_FOUND,
        None,
        "not_found_title",
        pages.t("not_found_body"),
        None,
        None,
        Vec::new(),
    )
}
