//! What each request gets: the checks of the module's security notes first, then the page, the
//! pictures, or the API.

use std::io::Read;
use std::path::Path;
use std::sync::{Arc, Mutex};
use std::time::Instant;

use serde_json::json;
use tiny_http::{Header, Method, Request, Response};

use super::{RateBucket, MAX_BODY, MAX_URL};
use crate::frame::gallery::FAVOURITES;
use crate::frame::settings_edit::{NotSaved, PageSettings, SettingsChange, SettingsSaver};
use crate::frame::status::{lock, FrameState};
use crate::frame::{Command, Remote};

const PAGE: &str = include_str!("assets/index.html");
const SCRIPT: &str = include_str!("assets/app.js");
const STYLE: &str = include_str!("assets/style.css");
/// Pictures listed in the state, newest first (the page shows thumbnails of these).
const LISTED: usize = 48;
const TOKEN_HEADER: &str = "X-Petal-Token";
const TOKEN_COOKIE: &str = "petal_token";

pub(super) struct Site {
    pub token: String,
    pub loopback: bool,
    pub saver: SettingsSaver,
    pub state: Arc<Mutex<FrameState>>,
    pub remote: Remote,
    pub bucket: RateBucket,
    /// Requests without the right token.
    pub failures: RateBucket,
}

/// One response, before it is sent.
struct Reply {
    status: u16,
    kind: &'static str,
    body: Vec<u8>,
    cookie: Option<String>,
}

impl Reply {
    fn json(status: u16, v: serde_json::Value) -> Self {
        Reply {
            status,
            kind: "application/json",
            body: v.to_string().into_bytes(),
            cookie: None,
        }
    }

    fn error(status: u16, msg: impl Into<String>) -> Self {
        Reply::json(status, json!({ "error": msg.into() }))
    }

    fn bytes(kind: &'static str, body: Vec<u8>) -> Self {
        Reply {
            status: 200,
            kind,
            body,
            cookie: None,
        }
    }
}

fn header<'r>(req: &'r Request, name: &str) -> Option<&'r str> {
    req.headers()
        .iter()
        .find(|h| h.field.as_str().as_str().eq_ignore_ascii_case(name))
        .map(|h| h.value.as_str())
}

fn query_param<'u>(url: &'u str, key: &str) -> Option<&'u str> {
    let (_, q) = url.split_once('?')?;
    q.split('&')
        .filter_map(|p| p.split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

fn cookie<'r>(req: &'r Request, key: &str) -> Option<&'r str> {
    header(req, "Cookie")?
        .split(';')
        .filter_map(|c| c.trim().split_once('='))
        .find(|(k, _)| *k == key)
        .map(|(_, v)| v)
}

/// Compares without stopping at the first difference, so timing tells nothing of the token.
fn same(a: &str, b: &str) -> bool {
    a.len() == b.len() && a.bytes().zip(b.bytes()).fold(0u8, |d, (x, y)| d | (x ^ y)) == 0
}

/// Whether a Host header names this machine's loopback (a DNS-rebound name does not).
fn loopback_host(host: &str) -> bool {
    let name = if let Some(rest) = host.strip_prefix('[') {
        rest.split(']').next().unwrap_or("")
    } else {
        host.rsplit_once(':').map_or(host, |(h, _)| h)
    };
    name.eq_ignore_ascii_case("localhost")
        || name
            .parse::<std::net::IpAddr>()
            .is_ok_and(|ip| ip.is_loopback())
}

impl Site {
    pub fn serve(&mut self, mut req: Request) {
        let reply = self.route(&mut req);
        let mut resp = Response::from_data(reply.body).with_status_code(reply.status);
        let mut headers = vec![
            ("Content-Type", reply.kind.to_string()),
            ("Cache-Control", "no-store".to_string()),
            (
                "Content-Security-Policy",
                "default-src 'self'; frame-ancestors 'none'".to_string(),
            ),
            ("X-Content-Type-Options", "nosniff".to_string()),
            ("Referrer-Policy", "no-referrer".to_string()),
        ];
        if reply.status == 429 {
            headers.push(("Retry-After", "1".into()));
        }
        if let Some(c) = reply.cookie {
            headers.push(("Set-Cookie", c));
        }
        for (k, v) in headers {
            if let Ok(h) = Header::from_bytes(k.as_bytes(), v.as_bytes()) {
                resp.add_header(h);
            }
        }
        // A client that went away is not the frame's problem.
        let _ = req.respond(resp);
    }

    fn route(&mut self, req: &mut Request) -> Reply {
        let now = Instant::now();
        if !self.bucket.take(now) {
            return Reply::error(429, "too many requests; slow down");
        }
        if req.url().len() > MAX_URL {
            return Reply::error(414, format!("request target over {MAX_URL} bytes"));
        }
        if self.loopback && !header(req, "Host").is_some_and(loopback_host) {
            return Reply::error(403, "this frame's page answers to localhost only");
        }
        let url = req.url().to_string();
        let path = url.split('?').next().unwrap_or("");
        let post = *req.method() == Method::Post;
        if !post && *req.method() != Method::Get {
            return Reply::error(405, "only GET and POST");
        }
        // POSTs must carry the token in the header; reads from the LAN the header, the
        // query or the cookie the page set.
        let presented = if post {
            header(req, TOKEN_HEADER)
        } else {
            header(req, TOKEN_HEADER)
                .or_else(|| query_param(&url, "token"))
                .or_else(|| cookie(req, TOKEN_COOKIE))
        };
        let needed = post || !self.loopback;
        match presented {
            Some(t) if same(t, &self.token) => {}
            _ if !needed => {}
            _ if !self.failures.take(now) => {
                return Reply::error(429, "too many requests without the right token");
            }
            Some(_) => return Reply::error(403, "wrong token"),
            None => {
                return Reply::error(
                    401,
                    if post {
                        format!("a POST needs the token in the {TOKEN_HEADER} header")
                    } else {
                        "this page needs the token: open it as http://ADDR/?token=TOKEN".into()
                    },
                );
            }
        }
        if post {
            let body = match read_body(req) {
                Ok(b) => b,
                Err(r) => return r,
            };
            return self.post(path, &body);
        }
        match path {
            "/" | "/index.html" => {
                let mut r = Reply::bytes(
                    "text/html; charset=utf-8",
                    PAGE.replace("{{TOKEN}}", &self.token).into_bytes(),
                );
                if query_param(&url, "token").is_some() {
                    r.cookie = Some(format!(
                        "{TOKEN_COOKIE}={}; Path=/; HttpOnly; SameSite=Strict",
                        self.token
                    ));
                }
                r
            }
            "/app.js" => Reply::bytes("text/javascript; charset=utf-8", SCRIPT.into()),
            "/style.css" => Reply::bytes("text/css; charset=utf-8", STYLE.into()),
            "/api/state" => Reply::json(200, self.state_json()),
            "/picture" => self.picture(),
            _ => match path.strip_prefix("/gallery/") {
                Some(name) => self.gallery_file(name),
                None => Reply::error(404, format!("no page {path}")),
            },
        }
    }

    fn post(&mut self, path: &str, body: &[u8]) -> Reply {
        let command = match path {
            "/api/paint" => Command::Paint,
            "/api/next" => Command::Next,
            "/api/previous" => Command::Previous,
            "/api/keep" => Command::Keep,
            "/api/pause" => Command::Pause,
            "/api/settings" => return self.settings(body),
            _ => return Reply::error(404, format!("no action {path}")),
        };
        if self.remote.send(command) {
            Reply::json(202, json!({ "ok": true, "command": command.name() }))
        } else {
            Reply::error(503, "the frame is not running")
        }
    }

    fn settings(&mut self, body: &[u8]) -> Reply {
        let change: SettingsChange = match serde_json::from_slice(body) {
            Ok(c) => c,
            Err(e) => return Reply::error(400, format!("settings: {e}")),
        };
        match self.saver.save(&change) {
            Ok(config) => Reply::json(
                200,
                json!({ "ok": true, "saved": config.display().to_string() }),
            ),
            Err(e) => {
                let status = match e {
                    NotSaved::Refused(_) => 409,
                    NotSaved::Invalid(_) => 400,
                    NotSaved::Io(_) => 500,
                    NotSaved::FrameGone => 503,
                };
                Reply::error(status, e.to_string())
            }
        }
    }

    fn state_json(&self) -> serde_json::Value {
        let s = lock(&self.state).clone();
        let (gallery, favourites) = match &s.gallery {
            Some(g) => {
                let mut pics: Vec<String> = g
                    .pictures()
                    .unwrap_or_default()
                    .iter()
                    .rev()
                    .take(LISTED)
                    .map(|(p, _)| file_name(p))
                    .collect();
                pics.retain(|n| !n.is_empty());
                let favs: Vec<String> = g
                    .favourites()
                    .unwrap_or_default()
                    .into_iter()
                    .take(LISTED)
                    .map(|n| format!("{FAVOURITES}/{n}"))
                    .collect();
                (Some(pics), Some(favs))
            }
            None => (None, None),
        };
        let on_screen = s.on_screen.as_deref().map(|p| {
            let name = file_name(p);
            match p.parent().and_then(Path::file_name) {
                Some(d) if d == FAVOURITES => format!("{FAVOURITES}/{name}"),
                _ => name,
            }
        });
        json!({
            "seed": s.seed,
            "painted_at": s.painted_at,
            "paint_seconds": s.paint_seconds,
            "paused": s.paused,
            "pictures_painted": s.pictures,
            "on_screen": on_screen,
            "gallery": gallery,
            "favourites": favourites,
            "settings": s.settings.as_ref().map(settings_json),
            "fixed": s.fixed,
            "can_save": self.saver.config.is_some(),
        })
    }

    /// The picture on screen: the gallery's file (the frame keeps no other copy).
    fn picture(&self) -> Reply {
        let s = lock(&self.state);
        let path = s.on_screen.clone().or_else(|| {
            let g = s.gallery.as_ref()?;
            g.pictures().ok()?.pop().map(|(p, _)| p)
        });
        drop(s);
        match path {
            Some(p) => send_file(&p),
            None => Reply::error(404, "no picture yet (pictures are served from the gallery)"),
        }
    }

    fn gallery_file(&self, name: &str) -> Reply {
        let g = lock(&self.state).gallery.clone();
        let Some(g) = g else {
            return Reply::error(404, "the frame keeps no gallery");
        };
        match g.resolve_name(name) {
            Some(p) => send_file(&p),
            None => Reply::error(400, "not a gallery picture name"),
        }
    }
}

fn settings_json(p: &PageSettings) -> serde_json::Value {
    serde_json::to_value(p).unwrap_or_default()
}

fn file_name(p: &Path) -> String {
    p.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

fn send_file(p: &Path) -> Reply {
    match std::fs::read(p) {
        Ok(bytes) => Reply::bytes("image/png", bytes),
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {
            Reply::error(404, "no such picture (retention may have removed it)")
        }
        Err(e) => Reply::error(500, format!("cannot read the picture: {e}")),
    }
}

/// The body, refused when it is over [`MAX_BODY`] (said or found while reading).
fn read_body(req: &mut Request) -> Result<Vec<u8>, Reply> {
    let too_big = || Reply::error(413, format!("request body over {MAX_BODY} bytes"));
    if req.body_length().is_some_and(|n| n > MAX_BODY) {
        return Err(too_big());
    }
    let mut body = Vec::new();
    req.as_reader()
        .take(MAX_BODY as u64 + 1)
        .read_to_end(&mut body)
        .map_err(|e| Reply::error(400, format!("cannot read the body: {e}")))?;
    if body.len() > MAX_BODY {
        return Err(too_big());
    }
    Ok(body)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_loopback_names_pass_the_host_check() {
        for ok in [
            "localhost",
            "localhost:8080",
            "127.0.0.1:80",
            "[::1]:9",
            "127.1.2.3",
        ] {
            assert!(loopback_host(ok), "{ok}");
        }
        for bad in [
            "evil.example:8080",
            "192.168.1.5",
            "[fe80::1]:80",
            "localhost.evil.example",
        ] {
            assert!(!loopback_host(bad), "{bad}");
        }
    }

    #[test]
    fn tokens_compare_whole() {
        assert!(same("abc", "abc"));
        assert!(!same("abc", "abd"));
        assert!(!same("abc", "ab"));
    }
}
