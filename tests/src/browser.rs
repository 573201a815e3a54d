//! Headless Chromium driven through chromedriver (WebDriver), for the pages.

use fantoccini::{Client, ClientBuilder, Locator};
use std::path::PathBuf;
use std::process::Stdio;
use std::time::Duration;
use tokio::process::{Child, Command};

/// A chromedriver process and one browser session on it.
pub struct Browser {
    /// The WebDriver client.
    pub client: Client,
    _driver: Child,
    /// Chromium's profile and scratch files, removed with the browser
    /// (a killed Chromium leaves its temporary directories behind).
    _scratch: tempfile::TempDir,
}

/// Where the screenshots of a test run go: `target/screenshots/`.
pub fn screenshots_dir() -> PathBuf {
    let exe = std::env::current_exe().expect("test executable path");
    let target = exe
        .ancestors()
        .nth(3)
        .map(PathBuf::from)
        .unwrap_or_else(|| PathBuf::from("target"));
    let dir = target.join("screenshots");
    std::fs::create_dir_all(&dir).expect("screenshots dir");
    dir
}

impl Browser {
    /// Starts chromedriver on a free port and opens a headless Chromium,
    /// with JavaScript on or off.
    pub async fn start(javascript: bool) -> Browser {
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .and_then(|l| l.local_addr())
            .expect("a free port")
            .port();
        let scratch = tempfile::tempdir().expect("a scratch directory");
        let driver =
            Command::new(std::env::var("CHROMEDRIVER").unwrap_or_else(|_| "chromedriver".into()))
                .arg(format!("--port={port}"))
                .env("TMPDIR", scratch.path())
                .stdout(Stdio::null())
                .stderr(Stdio::null())
                // Its own process group, so that the Chromium it starts goes
                // with it (see Drop).
                .process_group(0)
                .kill_on_drop(true)
                .spawn()
                .expect("chromedriver runs (the test command installs chromium-driver)");
        let mut caps = serde_json::Map::new();
        let mut prefs = serde_json::Map::new();
        if !javascript {
            prefs.insert(
                "profile.managed_default_content_settings.javascript".into(),
                serde_json::json!(2),
            );
        }
        caps.insert(
            "goog:chromeOptions".into(),
            serde_json::json!({
                "args": ["--headless=new", "--no-sandbox", "--disable-gpu", "--disable-dev-shm-usage", "--window-size=1280,900"],
                "prefs": prefs,
            }),
        );
        let url = format!("http://127.0.0.1:{port}");
        let mut last = None;
        for _ in 0..100 {
            let connector = hyper_util::client::legacy::connect::HttpConnector::new();
            match ClientBuilder::new(connector)
                .capabilities(caps.clone())
                .connect(&url)
                .await
            {
                Ok(client) => {
                    return Browser {
                        client,
                        _driver: driver,
                        _scratch: scratch,
                    };
                }
                Err(e) => last = Some(e),
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("chromedriver did not start: {last:?}");
    }

    /// Saves a screenshot of the page as `target/screenshots/<name>.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let png = self.client.screenshot().await.expect("screenshot");
        let path = screenshots_dir().join(format!("{name}.png"));
        std::fs::write(&path, png).expect("write screenshot");
        path
    }

    /// Sets the window to a width and height in CSS pixels.
    pub async fn size(&self, width: u32, height: u32) {
        self.client
            .set_window_size(width, height)
            .await
            .expect("window size");
    }
}

impl Browser {
    /// Types `text` into the field with id `field`, replacing what it held.
    pub async fn type_into(&self, field: &str, text: &str) {
        let input = self.client.find(Locator::Id(field)).await.expect("field");
        input.clear().await.expect("clear");
        input.send_keys(text).await.expect("type");
    }

    /// Presses the form's submit button.
    pub async fn submit(&self) {
        self.client
            .find(Locator::Css("form button[type=submit]"))
            .await
            .expect("button")
            .click()
            .await
            .expect("click");
    }

    /// The page's text; a page being replaced by a navigation is read again.
    pub async fn text(&self) -> String {
        for _ in 0..50 {
            if let Ok(body) = self.client.find(Locator::Css("body")).await
                && let Ok(text) = body.text().await
            {
                return text;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the page never settled");
    }

    /// The page's text once it says `needle` (after a form was sent).
    pub async fn text_with(&self, needle: &str) -> String {
        let mut last = String::new();
        for _ in 0..50 {
            last = self.text().await;
            if last.contains(needle) {
                return last;
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        panic!("the page never said {needle:?}: {last}");
    }
}

/// A command of WebDriver's WebAuthn extension (virtual authenticators),
/// which chromedriver implements.
#[derive(Debug)]
struct WebAuthn {
    method: http::Method,
    path: String,
    body: Option<serde_json::Value>,
}

impl fantoccini::wd::WebDriverCompatibleCommand for WebAuthn {
    fn endpoint(
        &self,
        base_url: &url::Url,
        session_id: Option<&str>,
    ) -> Result<url::Url, url::ParseError> {
        let session = session_id.unwrap_or_default();
        base_url.join(&format!("session/{session}/webauthn/{}", self.path))
    }

    fn method_and_body(&self, _: &url::Url) -> (http::Method, Option<String>) {
        (
            self.method.clone(),
            self.body.as_ref().map(|b| b.to_string()),
        )
    }
}

impl Browser {
    async fn webauthn(
        &self,
        method: http::Method,
        path: String,
        body: Option<serde_json::Value>,
    ) -> serde_json::Value {
        let cmd = WebAuthn { method, path, body };
        self.client
            .issue_cmd(cmd)
            .await
            .expect("a WebAuthn command of chromedriver")
    }

    /// Adds a virtual authenticator to the browser: a platform one (CTAP2)
    /// that keeps discoverable credentials and verifies its user. Its id.
    pub async fn add_authenticator(&self) -> String {
        let options = serde_json::json!({
            "protocol": "ctap2",
            "transport": "internal",
            "hasResidentKey": true,
            "hasUserVerification": true,
            "isUserConsenting": true,
            "isUserVerified": true,
        });
        let id = self
            .webauthn(http::Method::POST, "authenticator".into(), Some(options))
            .await;
        id.as_str().expect("an authenticator id").to_owned()
    }

    /// Removes a virtual authenticator (the device is gone).
    pub async fn remove_authenticator(&self, id: &str) {
        self.webauthn(http::Method::DELETE, format!("authenticator/{id}"), None)
            .await;
    }

    /// Whether the authenticator's user verification (a fingerprint, a
    /// PIN) succeeds from now on.
    pub async fn set_user_verified(&self, id: &str, verified: bool) {
        let body = serde_json::json!({ "isUserVerified": verified });
        self.webauthn(
            http::Method::POST,
            format!("authenticator/{id}/uv"),
            Some(body),
        )
        .await;
    }

    /// The credentials the authenticator holds.
    pub async fn credentials(&self, id: &str) -> Vec<serde_json::Value> {
        let all = self
            .webauthn(
                http::Method::GET,
                format!("authenticator/{id}/credentials"),
                None,
            )
            .await;
        all.as_array().cloned().unwrap_or_default()
    }

    /// Presses the button of the page's passkey block.
    pub async fn press_passkey(&self) {
        self.client
            .find(Locator::Css("div[data-passkey] button"))
            .await
            .expect("the passkey button")
            .click()
            .await
            .expect("click");
    }
}
