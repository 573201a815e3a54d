//! A plain HTTP agent through the provider's sign-in page, the way a
//! browser without JavaScript goes: it keeps cookies per name, follows no
//! redirect by itself, and fills the form it is shown.

use std::collections::HashMap;

/// A browser-like agent with its own cookies.
pub struct Agent {
    http: reqwest::Client,
    cookies: HashMap<String, String>,
}

/// One answer: status, where it redirects, its body.
pub struct Answer {
    /// The HTTP status.
    pub status: u16,
    /// The `Location` header, if any.
    pub location: Option<String>,
    /// The body.
    pub body: String,
}

impl Default for Agent {
    fn default() -> Self {
        Agent {
            http: reqwest::Client::builder()
                .redirect(reqwest::redirect::Policy::none())
                .build()
                .expect("an HTTP client"),
            cookies: HashMap::new(),
        }
    }
}

impl Agent {
    /// The value of a cookie the agent holds.
    pub fn cookie(&self, name: &str) -> Option<String> {
        self.cookies.get(name).cloned()
    }

    fn cookie_header(&self) -> String {
        self.cookies
            .iter()
            .map(|(k, v)| format!("{k}={v}"))
            .collect::<Vec<_>>()
            .join("; ")
    }

    async fn keep(&mut self, response: reqwest::Response) -> Answer {
        for value in response.headers().get_all("set-cookie") {
            let text = value.to_str().unwrap_or_default();
            let pair = text.split(';').next().unwrap_or_default();
            if let Some((name, value)) = pair.split_once('=') {
                let expired = text.contains("Max-Age=0");
                if expired || value.is_empty() {
                    self.cookies.remove(name);
                } else {
                    self.cookies.insert(name.to_owned(), value.to_owned());
                }
            }
        }
        Answer {
            status: response.status().as_u16(),
            location: response
                .headers()
                .get("location")
                .and_then(|v| v.to_str().ok())
                .map(str::to_owned),
            body: response.text().await.unwrap_or_default(),
        }
    }

    /// GETs `url` with the agent's cookies.
    pub async fn get(&mut self, url: &str) -> Answer {
        let response = self
            .http
            .get(url)
            .header("cookie", self.cookie_header())
            .send()
            .await
            .expect("an answer");
        self.keep(response).await
    }

    /// POSTs a form to `url` with the agent's cookies.
    pub async fn post(&mut self, url: &str, form: &[(&str, &str)]) -> Answer {
        let response = self
            .http
            .post(url)
            .header("cookie", self.cookie_header())
            .form(form)
            .send()
            .await
            .expect("an answer");
        self.keep(response).await
    }

    /// Submits the form of a page at `origin` with `fields` and its CSRF token.
    pub async fn submit(&mut self, origin: &str, page: &Answer, fields: &[(&str, &str)]) -> Answer {
        let action = attribute(&page.body, "action").expect("a form");
        let csrf = hidden_csrf(&page.body).expect("a CSRF token");
        let mut form: Vec<(&str, &str)> = fields.to_vec();
        form.push(("csrf", &csrf));
        self.post(&format!("{origin}{action}"), &form).await
    }

    /// Signs in on the page `authorize_url` shows and returns where the
    /// provider sends the browser after that.
    pub async fn sign_in(&mut self, authorize_url: &str, login: &str, password: &str) -> String {
        let page = self.get(authorize_url).await;
        assert_eq!(page.status, 200, "the sign-in page: {}", page.body);
        let origin = origin_of(authorize_url);
        let done = self
            .submit(&origin, &page, &[("login", login), ("current", password)])
            .await;
        assert_eq!(done.status, 303, "signed in: {}", done.body);
        done.location.expect("a redirect")
    }
}

/// `scheme://host:port` of a URL.
pub fn origin_of(url: &str) -> String {
    let (scheme, rest) = url.split_once("://").expect("an absolute URL");
    format!("{scheme}://{}", rest.split('/').next().unwrap_or_default())
}

/// The first value of `name="..."` in a page, HTML entities undone.
pub fn attribute(html: &str, name: &str) -> Option<String> {
    let start = html.find(&format!("{name}=\""))? + name.len() + 2;
    let end = start + html[start..].find('"')?;
    Some(unescape(&html[start..end]))
}

fn hidden_csrf(html: &str) -> Option<String> {
    let start = html.find("name=\"csrf\" value=\"")? + 19;
    let end = start + html[start..].find('"')?;
    Some(unescape(&html[start..end]))
}

fn unescape(text: &str) -> String {
    text.replace("&amp;", "&")
        .replace("&#x2f;", "/")
        .replace("&#x2F;", "/")
        .replace("&quot;", "\"")
        .replace("&#x27;", "'")
        .replace("&lt;", "<")
        .replace("&gt;", ">")
}

/// A query parameter of a URL.
pub fn query_param(url: &str, name: &str) -> Option<String> {
    openidconnect::url::Url::parse(url)
        .ok()?
        .query_pairs()
        .find(|(k, _)| k == name)
        .map(|(_, v)| v.into_owned())
}
