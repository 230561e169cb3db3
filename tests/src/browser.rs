//! A real browser for the page's tests: Debian's headless Chromium driven over WebDriver
//! by Debian's chromedriver, one at a time, on a profile of its own in a temporary folder.
//! As root Chromium needs `--no-sandbox`; the other flags keep it off the network (the
//! machine's is closed) and off the shared-memory folder a container may lack.

use fantoccini::elements::Element;
use fantoccini::{Client, Locator};
use serde_json::json;
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::time::{Duration, Instant};

use crate::repo_root;

/// One browser at a time in a test binary: two Chromiums on two cores starve each other.
pub static ONE_AT_A_TIME: tokio::sync::Mutex<()> = tokio::sync::Mutex::const_new(());

/// A phone's screen, for the narrow-screen checks.
pub const PHONE: (u32, u32) = (390, 844);
pub const DESKTOP: (u32, u32) = (1280, 900);

pub struct Browser {
    pub driver: Client,
    chromedriver: Child,
    _profile: tempfile::TempDir,
}

fn find(names: &[&str]) -> PathBuf {
    for name in names {
        for dir in ["/usr/bin", "/usr/lib/chromium", "/usr/local/bin"] {
            let path = Path::new(dir).join(name);
            if path.exists() {
                return path;
            }
        }
    }
    panic!("none of {names:?} is installed: `apt-get install chromium chromium-driver` (.ci/run does)")
}

impl Browser {
    /// Starts chromedriver on a free loopback port and a headless Chromium through it.
    pub async fn start() -> Self {
        let chromium = find(&["chromium", "chromium-browser"]);
        let chromedriver_path = find(&["chromedriver"]);
        let port = std::net::TcpListener::bind("127.0.0.1:0").unwrap().local_addr().unwrap().port();
        let mut chromedriver = Command::new(chromedriver_path)
            .arg(format!("--port={port}"))
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("chromedriver starts");
        let status = format!("http://127.0.0.1:{port}/status");
        let deadline = Instant::now() + Duration::from_secs(20);
        while reqwest::get(&status).await.is_err() {
            if Instant::now() > deadline || chromedriver.try_wait().unwrap().is_some() {
                let _ = chromedriver.kill();
                panic!("chromedriver did not answer on port {port}");
            }
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
        let profile = tempfile::tempdir().unwrap();
        let args = [
            "--headless=new".to_owned(),
            "--no-sandbox".into(),
            "--disable-dev-shm-usage".into(),
            "--disable-gpu".into(),
            "--no-first-run".into(),
            "--disable-background-networking".into(),
            "--disable-component-update".into(),
            "--disable-sync".into(),
            "--disable-default-apps".into(),
            "--disable-extensions".into(),
            "--hide-scrollbars".into(),
            format!("--user-data-dir={}", profile.path().display()),
            format!("--window-size={},{}", DESKTOP.0, DESKTOP.1),
        ];
        let capabilities = json!({
            "browserName": "chrome",
            "goog:chromeOptions": {"binary": chromium, "args": args},
        });
        let capabilities = capabilities.as_object().unwrap().clone();
        let connector = hyper_util::client::legacy::connect::HttpConnector::new();
        let url = format!("http://127.0.0.1:{port}");
        let driver =
            Client::with_capabilities_and_connector(&url, &capabilities, connector).await.unwrap_or_else(|error| {
                let _ = chromedriver.kill();
                panic!("Chromium did not start through chromedriver: {error}")
            });
        Self { driver, chromedriver, _profile: profile }
    }

    /// Opens `url`.
    pub async fn open(&self, url: &str) {
        self.driver.goto(url).await.unwrap_or_else(|error| panic!("{url}: {error}"));
    }

    pub async fn element(&self, id: &str) -> Element {
        self.driver.find(Locator::Id(id)).await.unwrap_or_else(|error| panic!("no element #{id}: {error}"))
    }

    pub async fn css(&self, selector: &str) -> Element {
        self.driver.find(Locator::Css(selector)).await.unwrap_or_else(|error| panic!("no element {selector}: {error}"))
    }

    pub async fn click(&self, id: &str) {
        self.element(id).await.click().await.unwrap_or_else(|error| panic!("#{id} not clickable: {error}"));
    }

    /// Types `text` into the field `id`, replacing what it held.
    pub async fn fill(&self, id: &str, text: &str) {
        let field = self.element(id).await;
        field.clear().await.unwrap();
        field.send_keys(text).await.unwrap();
    }

    /// The visible text of the page's main part.
    pub async fn text(&self) -> String {
        self.css("main").await.text().await.unwrap()
    }

    /// Waits up to `limit` for the main text to hold `wanted`; answers it.
    pub async fn wait_for_text(&self, wanted: &str, limit: Duration) -> String {
        let deadline = Instant::now() + limit;
        loop {
            // Between two pages there may be no body yet.
            let text = match self.driver.find(Locator::Css("body")).await {
                Ok(body) => body.text().await.unwrap_or_default(),
                Err(_) => String::new(),
            };
            if text.contains(wanted) {
                return text;
            }
            assert!(Instant::now() < deadline, "the page never said {wanted:?}; it says:\n{text}");
            tokio::time::sleep(Duration::from_millis(100)).await;
        }
    }

    /// Signs in with `token` on the server at `base`.
    pub async fn sign_in(&self, base: &str, token: &str) {
        self.open(&format!("{base}/login")).await;
        self.fill("token", token).await;
        self.click("sign-in").await;
        self.wait_for_text("Sign out", Duration::from_secs(30)).await;
    }

    /// Runs `script` in the page.
    pub async fn script(&self, script: &str) {
        self.driver.execute(script, Vec::new()).await.unwrap_or_else(|error| panic!("{script}: {error}"));
    }

    /// Resizes the window to `(width, height)`.
    pub async fn resize(&self, (width, height): (u32, u32)) {
        self.driver.set_window_size(width, height).await.unwrap();
    }

    /// What is wider than the window (something that does not fit a phone), by tag, id
    /// and width; empty when everything fits.
    pub async fn overflowing(&self) -> Vec<String> {
        let wide = self
            .driver
            .execute(
                "const limit = window.innerWidth + 1; return [...document.querySelectorAll('body *')].filter(e => e.getBoundingClientRect().right > limit).map(e => `${e.tagName}#${e.id}.${e.className} ${Math.round(e.getBoundingClientRect().right)}`).slice(0, 10);",
                Vec::new(),
            )
            .await
            .unwrap();
        serde_json::from_value(wide).unwrap()
    }

    /// Saves the window as `docs/screenshots/NAME.png`.
    pub async fn screenshot(&self, name: &str) -> PathBuf {
        let dir = repo_root().join("docs/screenshots");
        std::fs::create_dir_all(&dir).unwrap();
        let path = dir.join(format!("{name}.png"));
        std::fs::write(&path, self.driver.screenshot().await.unwrap()).unwrap();
        path
    }

    pub async fn quit(mut self) {
        let _ = self.driver.clone().close().await;
        let _ = self.chromedriver.kill();
        let _ = self.chromedriver.wait();
    }
}

impl Drop for Browser {
    fn drop(&mut self) {
        let _ = self.chromedriver.kill();
    }
}

impl Browser {
    /// Whether an element matches `selector` on the page now.
    pub async fn has(&self, selector: &str) -> bool {
        self.driver.find(Locator::Css(selector)).await.is_ok()
    }
}
