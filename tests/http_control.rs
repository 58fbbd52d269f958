//! The control page's HTTP API against a running frame (memory display, exact Gaussian
//! denoiser): commands change what is on screen, settings are saved into the config and make
//! the frame reload, and every refused request is refused (no token, wrong token, paths out of
//! the gallery, oversized requests, foreign Host, too many requests).
#![cfg(feature = "http")]

mod frame_kit;

use std::io::{Read, Write};
use std::net::{SocketAddr, TcpStream};
use std::path::{Path, PathBuf};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use frame_kit::{settings, spawn_observed_frame, validator};
use petal::frame::control::channel_pair;
use petal::frame::http::{self, ControlPage, FrameState, HttpConfig, PageSettings};
use petal::frame::{FrameOptions, Report};

struct Reply {
    status: u16,
    head: String,
    body: Vec<u8>,
}

impl Reply {
    fn json(&self) -> serde_json::Value {
        serde_json::from_slice(&self.body)
            .unwrap_or_else(|e| panic!("not JSON ({e}): {}", String::from_utf8_lossy(&self.body)))
    }

    fn text(&self) -> String {
        String::from_utf8_lossy(&self.body).into_owned()
    }
}

/// One HTTP/1.1 request on its own connection.
fn request(
    addr: SocketAddr,
    method: &str,
    target: &str,
    headers: &[(&str, &str)],
    body: &[u8],
) -> Reply {
    let mut s = TcpStream::connect(addr).unwrap();
    s.set_read_timeout(Some(Duration::from_secs(20))).unwrap();
    let mut req = format!("{method} {target} HTTP/1.1\r\nConnection: close\r\n");
    if !headers.iter().any(|(k, _)| k.eq_ignore_ascii_case("host")) {
        req.push_str(&format!("Host: 127.0.0.1:{}\r\n", addr.port()));
    }
    for (k, v) in headers {
        req.push_str(&format!("{k}: {v}\r\n"));
    }
    req.push_str(&format!("Content-Length: {}\r\n\r\n", body.len()));
    s.write_all(req.as_bytes()).unwrap();
    // The server may answer (413) before taking the whole body; that is fine.
    let _ = s.write_all(body);
    let mut raw = Vec::new();
    let _ = s.read_to_end(&mut raw);
    let split = raw
        .windows(4)
        .position(|w| w == b"\r\n\r\n")
        .unwrap_or_else(|| panic!("no response: {}", String::from_utf8_lossy(&raw)));
    let head = String::from_utf8_lossy(&raw[..split]).into_owned();
    let status = head.split(' ').nth(1).and_then(|c| c.parse().ok()).unwrap();
    Reply {
        status,
        head,
        body: raw[split + 4..].to_vec(),
    }
}

fn get(addr: SocketAddr, target: &str) -> Reply {
    request(addr, "GET", target, &[], b"")
}

fn post(addr: SocketAddr, action: &str, token: &str, body: &str) -> Reply {
    request(
        addr,
        "POST",
        action,
        &[("X-Petal-Token", token)],
        body.as_bytes(),
    )
}

/// The token the page carries (as the browser gets it).
fn page_token(addr: SocketAddr) -> String {
    let page = get(addr, "/").text();
    let at = page.find("name=\"petal-token\" content=\"").unwrap() + 28;
    page[at..].split('"').next().unwrap().to_string()
}

/// Calls `request` until it answers 429; how many answers came before that, and the seconds
/// taken. Fails after `max` answers without a 429.
fn until_refused(mut request: impl FnMut() -> u16, max: u32) -> (u32, f64) {
    let t0 = Instant::now();
    for n in 0..max {
        match request() {
            429 => return (n, t0.elapsed().as_secs_f64()),
            s => assert!(s == 200 || s == 403, "unexpected {s}"),
        }
    }
    panic!("no 429 after {max} requests in {:?}", t0.elapsed());
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < Duration::from_secs(30), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A frame with a gallery, its config file in `dir`, and its control page on loopback.
struct Rig {
    addr: SocketAddr,
    config: PathBuf,
    gallery: PathBuf,
    state: Arc<Mutex<FrameState>>,
    frame: Option<std::thread::JoinHandle<petal::Result<Report>>>,
    _page: ControlPage,
}

impl Rig {
    fn start(dir: &Path, extra: &str, http: HttpConfig) -> petal::Result<Rig> {
        let gallery = dir.join("gallery");
        let config = dir.join("frame.toml");
        let toml = format!(
            "# the owner's note\ndisplay = \"memory?size=40x40\"\nevery = \"500ms\"\nemerging = false\nseed = 7\ngallery = \"{}\"\n{extra}",
            gallery.display()
        );
        std::fs::write(&config, &toml).unwrap();
        let s = settings(&toml);
        let state = Arc::new(Mutex::new(FrameState {
            settings: Some(PageSettings::of(
                &FrameOptions::from_toml(&toml, &config).unwrap(),
            )),
            gallery: s.gallery.clone(),
            display: s.display.text.clone(),
            ..Default::default()
        }));
        let (remote, inbox) = channel_pair();
        let validate = validator();
        let http = HttpConfig {
            config: http.config.or(Some(config.clone())),
            ..http
        };
        let page = http::start(http, Arc::clone(&state), remote, validate)?;
        let frame = spawn_observed_frame(s, inbox, Arc::clone(&state));
        Ok(Rig {
            addr: page.addr,
            config,
            gallery,
            state,
            frame: Some(frame),
            _page: page,
        })
    }

    fn on_screen(&self) -> Option<String> {
        get(self.addr, "/api/state").json()["on_screen"]
            .as_str()
            .map(str::to_string)
    }
}

fn loopback() -> HttpConfig {
    HttpConfig {
        addr: "127.0.0.1:0".parse().unwrap(),
        token_file: None,
        config: None,
    }
}

#[test]
fn commands_from_the_api_change_the_picture_on_screen() {
    let dir = tempfile::tempdir().unwrap();
    let rig = Rig::start(dir.path(), "", loopback()).unwrap();
    let token = page_token(rig.addr);
    assert_eq!(token.len(), 32, "a 128-bit token for this run");
    wait_for("three pictures", || rig.state.lock().unwrap().pictures >= 3);
    let r = post(rig.addr, "/api/pause", &token, "");
    assert_eq!(r.status, 202, "{}", r.text());
    wait_for("paused", || {
        get(rig.addr, "/api/state").json()["paused"] == true
    });
    let newest = rig.on_screen().expect("a picture on screen");
    let state = get(rig.addr, "/api/state").json();
    assert_eq!(
        state["gallery"][0],
        newest.as_str(),
        "the gallery lists newest first"
    );

    // Previous puts an older picture up, and the page's picture follows.
    assert_eq!(post(rig.addr, "/api/previous", &token, "").status, 202);
    wait_for("previous", || rig.on_screen().as_deref() != Some(&newest));
    let older = rig.on_screen().unwrap();
    assert!(older < newest, "{older} is older than {newest}");
    let shown = get(rig.addr, "/picture");
    assert_eq!(shown.status, 200);
    assert!(shown.head.contains("image/png"));
    assert_eq!(shown.body, std::fs::read(rig.gallery.join(&older)).unwrap());

    // Keep, then Next goes forward to the newest again without painting.
    assert_eq!(post(rig.addr, "/api/keep", &token, "").status, 202);
    wait_for("favourite", || {
        rig.gallery.join("favourites").join(&older).is_file()
    });
    let painted = rig.state.lock().unwrap().pictures;
    assert_eq!(post(rig.addr, "/api/next", &token, "").status, 202);
    wait_for("next", || rig.on_screen().as_deref() == Some(&newest));
    assert_eq!(
        rig.state.lock().unwrap().pictures,
        painted,
        "next went forward, no paint"
    );
    let state = get(rig.addr, "/api/state").json();
    assert_eq!(
        state["favourites"][0],
        format!("favourites/{older}").as_str()
    );
    let fav = get(rig.addr, &format!("/gallery/favourites/{older}"));
    assert_eq!(fav.status, 200);

    // Paint makes a new one even while paused.
    assert_eq!(post(rig.addr, "/api/paint", &token, "").status, 202);
    wait_for("paint", || {
        rig.state.lock().unwrap().pictures == painted + 1
    });
    wait_for("new on screen", || {
        rig.on_screen().is_some_and(|n| n > newest)
    });
}

#[test]
fn settings_are_saved_into_the_config_and_the_frame_reloads() {
    let dir = tempfile::tempdir().unwrap();
    let mut rig = Rig::start(dir.path(), "keep = 50\n", loopback()).unwrap();
    let token = page_token(rig.addr);
    let before = std::fs::read_to_string(&rig.config).unwrap();
    let state = get(rig.addr, "/api/state").json();
    assert_eq!(state["settings"]["every"], "500ms");
    assert_eq!(state["can_save"], true);

    // A setting that does not parse is refused, naming it, and the file stays as it was.
    let r = post(rig.addr, "/api/settings", &token, r#"{"every": "soon"}"#);
    assert_eq!(r.status, 400, "{}", r.text());
    assert!(
        r.json()["error"].as_str().unwrap().contains("every"),
        "{}",
        r.text()
    );
    for bad in [
        r#"{"colour": 1}"#,
        "not json",
        r#"{"rotate": 45}"#,
        r#"{"saturation": 2}"#,
    ] {
        let r = post(rig.addr, "/api/settings", &token, bad);
        assert_eq!(r.status, 400, "{bad}: {}", r.text());
    }
    assert_eq!(std::fs::read_to_string(&rig.config).unwrap(), before);

    let r = post(
        rig.addr,
        "/api/settings",
        &token,
        r#"{"every": "2m", "quiet_hours": "23:00-06:30", "steps": 4, "rotate": 90, "saturation": 0.7}"#,
    );
    assert_eq!(r.status, 200, "{}", r.text());
    let saved = std::fs::read_to_string(&rig.config).unwrap();
    assert!(saved.starts_with("# the owner's note\n"), "{saved}");
    assert!(saved.contains("every = \"2m\"") && saved.contains("quiet-hours = \"23:00-06:30\""));
    assert!(
        saved.contains("steps = 4") && saved.contains("keep = 50"),
        "{saved}"
    );
    assert!(
        saved.contains("display = \"memory?size=40x40&saturation=0.7&rotate=90\""),
        "{saved}"
    );
    let leftovers: Vec<_> = std::fs::read_dir(dir.path())
        .unwrap()
        .filter_map(|e| e.ok())
        .filter(|e| e.file_name().to_string_lossy().ends_with(".tmp"))
        .collect();
    assert!(leftovers.is_empty(), "no temp file left: {leftovers:?}");
    // The frame heard the reload: its run ends so that the caller reads the file again.
    let report = rig.frame.take().unwrap().join().unwrap().unwrap();
    assert!(report.reload, "{report:?}");
}

#[test]
fn refused_requests_are_refused() {
    let dir = tempfile::tempdir().unwrap();
    let rig = Rig::start(dir.path(), "", loopback()).unwrap();
    let a = rig.addr;
    let token = page_token(a);
    wait_for("a picture", || rig.on_screen().is_some());

    // State changes: POST only, with the token in the header, also on loopback.
    let r = request(a, "POST", "/api/next", &[], b"");
    assert_eq!(r.status, 401, "{}", r.text());
    assert!(r.text().contains("X-Petal-Token"));
    assert_eq!(
        post(a, "/api/next", "0123456789abcdef0123456789abcdef", "").status,
        403
    );
    let cookie = format!("petal_token={token}");
    let r = request(a, "POST", "/api/pause", &[("Cookie", cookie.as_str())], b"");
    assert_eq!(r.status, 401, "a cookie alone does not carry a POST");
    let r = request(a, "POST", &format!("/api/pause?token={token}"), &[], b"");
    assert_eq!(r.status, 401, "nor does the query");
    assert_eq!(get(a, "/api/next").status, 404, "no action by GET");
    assert_eq!(request(a, "DELETE", "/api/state", &[], b"").status, 405);
    assert_eq!(post(a, "/api/reboot", &token, "").status, 404);

    // Gallery paths stay in the gallery.
    for bad in [
        "/gallery/../frame.toml",
        "/gallery/..%2fframe.toml",
        "/gallery/favourites/../../frame.toml",
        "/gallery/petal-..%2f..%2fframe.png",
        "/gallery//etc/passwd",
    ] {
        let r = get(a, bad);
        assert!(
            r.status == 400 || r.status == 404,
            "{bad}: {} {}",
            r.status,
            r.text()
        );
        assert!(!r.text().contains("owner's note"), "{bad}");
    }
    assert_eq!(get(a, "/gallery/petal-n9999999-x-1.png").status, 404);

    // Oversized requests.
    let big = vec![b'x'; 1 << 20];
    let r = request(
        a,
        "POST",
        "/api/settings",
        &[("X-Petal-Token", &token)],
        &big,
    );
    assert_eq!(r.status, 413, "{}", r.text());
    let long = format!("/api/state?{}", "a".repeat(4000));
    assert_eq!(get(a, &long).status, 414);

    // A name that rebinds to 127.0.0.1 is not this frame's page.
    let r = request(a, "GET", "/", &[("Host", "evil.example:80")], b"");
    assert_eq!(r.status, 403);
    assert!(!r.text().contains(&token));

    // Too many requests: the bucket runs dry at the rate it promises (whatever this machine's
    // speed, or qemu's), then refills.
    let (ok, elapsed) = until_refused(|| get(a, "/style.css").status, 3000);
    let allowed = http::RATE_BURST + http::RATE_PER_SECOND * elapsed;
    assert!(
        f64::from(ok) <= allowed + 1.0,
        "{ok} served in {elapsed:.2} s"
    );
    std::thread::sleep(Duration::from_millis(1500));
    assert_eq!(get(a, "/style.css").status, 200);

    // Guessing the token is slowed to one try a second, and does not lock the owner out.
    let mut i = 0;
    let (wrong, elapsed) = until_refused(
        || {
            i += 1;
            post(a, "/api/pause", &format!("guess-number-{i:020}"), "").status
        },
        300,
    );
    let allowed = http::FAILURES_BURST + http::FAILURES_PER_SECOND * elapsed;
    assert!(
        f64::from(wrong) <= allowed + 1.0,
        "{wrong} guesses in {elapsed:.2} s"
    );
    assert_eq!(post(a, "/api/pause", &token, "").status, 202);
}

#[test]
fn a_lan_address_needs_a_token_file_and_every_request_the_token() {
    let dir = tempfile::tempdir().unwrap();
    let lan = HttpConfig {
        addr: "0.0.0.0:0".parse().unwrap(),
        token_file: None,
        config: None,
    };
    let e = Rig::start(dir.path(), "", lan).err().unwrap().to_string();
    assert!(e.contains("token file"), "{e}");

    let token_file = dir.path().join("http-token");
    std::fs::write(&token_file, "s3cret-token-of-the-frame\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&token_file, std::fs::Permissions::from_mode(0o600)).unwrap();
    }
    let lan = HttpConfig {
        addr: "0.0.0.0:0".parse().unwrap(),
        token_file: Some(token_file),
        config: None,
    };
    let rig = Rig::start(dir.path(), "", lan).unwrap();
    let a: SocketAddr = format!("127.0.0.1:{}", rig.addr.port()).parse().unwrap();
    let lan_host = [("Host", "192.168.1.20:8080")];
    assert_eq!(request(a, "GET", "/", &lan_host, b"").status, 401);
    assert_eq!(request(a, "GET", "/api/state", &lan_host, b"").status, 401);
    assert_eq!(
        request(a, "GET", "/?token=guess", &lan_host, b"").status,
        403
    );
    let r = request(
        a,
        "GET",
        "/?token=s3cret-token-of-the-frame",
        &lan_host,
        b"",
    );
    assert_eq!(r.status, 200);
    assert!(
        r.head.contains(
            "Set-Cookie: petal_token=s3cret-token-of-the-frame; Path=/; HttpOnly; SameSite=Strict"
        ),
        "{}",
        r.head
    );
    let cookie = [
        ("Host", "192.168.1.20:8080"),
        ("Cookie", "petal_token=s3cret-token-of-the-frame"),
    ];
    assert_eq!(request(a, "GET", "/api/state", &cookie, b"").status, 200);
    let r = request(
        a,
        "POST",
        "/api/pause",
        &[
            ("Host", "192.168.1.20:8080"),
            ("X-Petal-Token", "s3cret-token-of-the-frame"),
        ],
        b"",
    );
    assert_eq!(r.status, 202, "{}", r.text());
}

#[test]
fn cli_http_errors_are_clear() {
    use assert_cmd::cargo::CommandCargoExt;
    let run = |args: &[&str]| {
        let out = std::process::Command::cargo_bin("petal")
            .unwrap()
            .args(["frame", "--display", "memory", "--cycles", "1"])
            .args(args)
            .output()
            .unwrap();
        assert!(!out.status.success(), "{args:?} succeeded");
        String::from_utf8_lossy(&out.stderr).into_owned()
    };
    let e = run(&["--http", "0.0.0.0:0"]);
    assert!(e.contains("--http-token-file"), "{e}");
    let e = run(&["--http", "the-lan"]);
    assert!(e.contains("--http") && e.contains("not an address"), "{e}");
    let e = run(&["--http-token-file", "/etc/petal/http-token"]);
    assert!(e.contains("needs the control page"), "{e}");
    let dir = tempfile::tempdir().unwrap();
    let loose = dir.path().join("token");
    std::fs::write(&loose, "0123456789abcdef0123456789\n").unwrap();
    #[cfg(unix)]
    {
        use std::os::unix::fs::PermissionsExt;
        std::fs::set_permissions(&loose, std::fs::Permissions::from_mode(0o644)).unwrap();
        let token = loose.to_str().unwrap();
        let e = run(&["--http", "127.0.0.1:0", "--http-token-file", token]);
        assert!(e.contains("chmod 600"), "{e}");
    }
    // A port in use is an error at start, not a silent frame without its page.
    let taken = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let port = taken.local_addr().unwrap().port().to_string();
    let e = run(&["--http", &port]);
    assert!(e.contains("cannot listen"), "{e}");
}
