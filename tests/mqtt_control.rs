//! MQTT against a real broker: mosquitto (Debian's package), started here on a free port and
//! stopped after. A running frame (memory display, exact Gaussian denoiser) announces itself
//! to Home Assistant, publishes its state, and takes commands and an interval; it survives a
//! broker restart and says goodbye when it stops.
//!
//! Without mosquitto the tests say so and pass, unless PETAL_REQUIRE_MOSQUITTO is set (as
//! .ci/run sets it, after installing mosquitto): then they fail.
#![cfg(feature = "mqtt")]

mod frame_kit;

use std::collections::HashMap;
use std::net::TcpStream;
use std::path::{Path, PathBuf};
use std::process::{Child, Command as Process, Stdio};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use frame_kit::{settings, spawn_observed_frame, validator};
use petal::frame::control::channel_pair;
use petal::frame::mqtt::{self, BrokerUrl, MqttConfig, MqttLink};
use petal::frame::settings_edit::{PageSettings, SettingsSaver};
use petal::frame::status::FrameState;
use petal::frame::{FrameOptions, Report};
use rumqttc::{Client, Event as MqttEvent, MqttOptions, Packet, QoS};

fn mosquitto_binary() -> Option<PathBuf> {
    [
        "/usr/sbin/mosquitto",
        "/usr/bin/mosquitto",
        "/usr/local/sbin/mosquitto",
    ]
    .iter()
    .map(PathBuf::from)
    .find(|p| p.is_file())
}

/// A mosquitto of its own, on a free loopback port, killed when dropped.
struct Broker {
    child: Child,
    port: u16,
    conf: PathBuf,
}

impl Broker {
    /// `None` (and a message) where mosquitto is not installed and not required.
    fn start(dir: &Path) -> Option<Broker> {
        let Some(bin) = mosquitto_binary() else {
            if std::env::var_os("PETAL_REQUIRE_MOSQUITTO").is_some() {
                panic!("mosquitto is required here (apt install mosquitto)");
            }
            eprintln!("SKIPPED: no mosquitto (apt install mosquitto) to test MQTT against");
            return None;
        };
        let port = std::net::TcpListener::bind("127.0.0.1:0")
            .unwrap()
            .local_addr()
            .unwrap()
            .port();
        let conf = dir.join("mosquitto.conf");
        std::fs::write(
            &conf,
            format!("listener {port} 127.0.0.1\nallow_anonymous true\npersistence false\n"),
        )
        .unwrap();
        let child = Self::spawn(&bin, &conf, port);
        Some(Broker { child, port, conf })
    }

    fn spawn(bin: &Path, conf: &Path, port: u16) -> Child {
        let child = Process::new(bin)
            .arg("-c")
            .arg(conf)
            .stdout(Stdio::null())
            .stderr(Stdio::null())
            .spawn()
            .expect("mosquitto starts");
        let t0 = Instant::now();
        while TcpStream::connect(("127.0.0.1", port)).is_err() {
            assert!(
                t0.elapsed() < Duration::from_secs(20),
                "mosquitto did not listen"
            );
            std::thread::sleep(Duration::from_millis(50));
        }
        child
    }

    fn restart(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
        std::thread::sleep(Duration::from_millis(500));
        self.child = Self::spawn(&mosquitto_binary().unwrap(), &self.conf, self.port);
    }
}

impl Drop for Broker {
    fn drop(&mut self) {
        let _ = self.child.kill();
        let _ = self.child.wait();
    }
}

/// A watcher subscribed to everything: the newest payload per topic, and every payload seen.
struct Watcher {
    client: Client,
    latest: Arc<Mutex<HashMap<String, String>>>,
    seen: Arc<Mutex<Vec<(String, String)>>>,
}

impl Watcher {
    fn connect(port: u16, name: &str) -> Watcher {
        let mut opts = MqttOptions::new(name, "127.0.0.1", port);
        opts.set_keep_alive(Duration::from_secs(5));
        let (client, mut conn) = Client::new(opts, 64);
        client
            .subscribe("homeassistant/#", QoS::AtLeastOnce)
            .unwrap();
        client.subscribe("petal/#", QoS::AtLeastOnce).unwrap();
        let latest = Arc::new(Mutex::new(HashMap::new()));
        let seen = Arc::new(Mutex::new(Vec::new()));
        let (l, s) = (Arc::clone(&latest), Arc::clone(&seen));
        std::thread::spawn(move || {
            for e in conn.iter() {
                match e {
                    Ok(MqttEvent::Incoming(Packet::Publish(p))) => {
                        let body = String::from_utf8_lossy(&p.payload).into_owned();
                        l.lock().unwrap().insert(p.topic.clone(), body.clone());
                        s.lock().unwrap().push((p.topic, body));
                    }
                    Ok(_) => {}
                    Err(_) => std::thread::sleep(Duration::from_millis(200)),
                }
            }
        });
        Watcher {
            client,
            latest,
            seen,
        }
    }

    fn get(&self, topic: &str) -> Option<String> {
        self.latest.lock().unwrap().get(topic).cloned()
    }

    fn state(&self) -> serde_json::Value {
        self.get("petal/hall/state")
            .map(|s| serde_json::from_str(&s).unwrap())
            .unwrap_or_default()
    }

    fn send(&self, topic: &str, payload: &str) {
        self.client
            .publish(topic, QoS::AtLeastOnce, false, payload)
            .unwrap();
    }
}

fn wait_for(what: &str, mut cond: impl FnMut() -> bool) {
    let t0 = Instant::now();
    while !cond() {
        assert!(t0.elapsed() < Duration::from_secs(30), "timed out: {what}");
        std::thread::sleep(Duration::from_millis(20));
    }
}

/// A frame with a gallery and config in `dir`, linked to the broker as "hall".
fn start_frame(
    dir: &Path,
    port: u16,
) -> (
    MqttLink,
    Arc<Mutex<FrameState>>,
    PathBuf,
    std::thread::JoinHandle<petal::Result<Report>>,
) {
    let config = dir.join("frame.toml");
    let toml = format!(
        "# hall frame\ndisplay = \"memory?size=40x40\"\nevery = \"1h\"\nemerging = false\nseed = 5\ngallery = \"{}\"\n",
        dir.join("gallery").display()
    );
    std::fs::write(&config, &toml).unwrap();
    let s = settings(&toml);
    let state = Arc::new(Mutex::new(FrameState {
        settings: Some(PageSettings::of(
            &FrameOptions::from_toml(&toml, &config).unwrap(),
        )),
        display: s.display.text.clone(),
        ..Default::default()
    }));
    let (remote, inbox) = channel_pair();
    let validate = validator();
    let saver = SettingsSaver {
        config: Some(config.clone()),
        state: Arc::clone(&state),
        remote: remote.clone(),
        validate,
    };
    let broker = BrokerUrl {
        host: "127.0.0.1".into(),
        port,
        credentials: None,
    };
    let link = mqtt::start(
        MqttConfig {
            broker,
            id: "hall".into(),
        },
        Arc::clone(&state),
        remote,
        saver,
    )
    .unwrap();
    let frame = spawn_observed_frame(s, inbox, Arc::clone(&state));
    (link, state, config, frame)
}

#[test]
fn a_frame_shows_up_in_home_assistant_and_takes_commands() {
    let dir = tempfile::tempdir().unwrap();
    let Some(mut broker) = Broker::start(dir.path()) else {
        return;
    };
    let watcher = Watcher::connect(broker.port, "watcher");
    let (link, state, config, frame) = start_frame(dir.path(), broker.port);

    // Discovery: one device with its buttons, switch, text and sensors, retained.
    wait_for("discovery", || {
        watcher
            .get("homeassistant/sensor/petal_hall/painted_at/config")
            .is_some()
    });
    for key in ["next", "paint", "previous", "keep"] {
        let topic = format!("homeassistant/button/petal_hall/{key}/config");
        let cfg: serde_json::Value = serde_json::from_str(&watcher.get(&topic).unwrap()).unwrap();
        assert_eq!(cfg["command_topic"], "petal/hall/command");
        assert_eq!(cfg["payload_press"], key);
        assert_eq!(cfg["device"]["identifiers"][0], "petal_hall");
    }
    let switch: serde_json::Value = serde_json::from_str(
        &watcher
            .get("homeassistant/switch/petal_hall/paused/config")
            .unwrap(),
    )
    .unwrap();
    assert_eq!(switch["command_topic"], "petal/hall/paused/set");
    wait_for("online", || {
        watcher.get("petal/hall/availability").as_deref() == Some("online")
    });

    // State: the first picture's seed, a timestamp Home Assistant parses, the interval.
    wait_for("state with a seed", || watcher.state()["seed"] == 5);
    let s = watcher.state();
    assert_eq!(
        (s["paused"].as_bool(), s["every"].as_str()),
        (Some(false), Some("1h"))
    );
    let at = s["painted_at"].as_str().unwrap();
    chrono::DateTime::parse_from_rfc3339(at).unwrap_or_else(|e| panic!("{at}: {e}"));

    // Commands: paint paints the next seed; the switch pauses; a wrong command is ignored.
    watcher.send("petal/hall/command", "paint");
    wait_for("second picture", || watcher.state()["seed"] == 6);
    watcher.send("petal/hall/paused/set", "ON");
    wait_for("paused", || watcher.state()["paused"] == true);
    watcher.send("petal/hall/paused/set", "ON");
    watcher.send("petal/hall/command", "shutdown");
    watcher.send("petal/hall/command", "dance");
    std::thread::sleep(Duration::from_millis(800));
    assert_eq!(watcher.state()["paused"], true, "ON twice stays paused");
    assert!(state.lock().unwrap().on_screen.is_some());

    // The broker restarts (without persistence: it forgets everything): petal reconnects and
    // announces itself again.
    broker.restart();
    let watcher = Watcher::connect(broker.port, "watcher-2");
    wait_for("announced again", || {
        watcher.get("petal/hall/availability").as_deref() == Some("online")
            && watcher.state()["seed"] == 6
            && watcher
                .get("homeassistant/button/petal_hall/next/config")
                .is_some()
    });

    // An interval from Home Assistant's text field goes into the config; the frame reloads.
    watcher.send("petal/hall/every/set", "forever");
    std::thread::sleep(Duration::from_millis(500));
    assert!(std::fs::read_to_string(&config)
        .unwrap()
        .contains("every = \"1h\""));
    watcher.send("petal/hall/every/set", "20m");
    let report = frame.join().unwrap().unwrap();
    assert!(report.reload, "{report:?}");
    let saved = std::fs::read_to_string(&config).unwrap();
    assert!(
        saved.starts_with("# hall frame\n") && saved.contains("every = \"20m\""),
        "{saved}"
    );

    // A clean stop says offline (the last will covers a crash).
    drop(link);
    wait_for("offline", || {
        watcher.get("petal/hall/availability").as_deref() == Some("offline")
    });
    let seen = watcher.seen.lock().unwrap();
    assert!(seen.iter().any(|(t, _)| t == "petal/hall/state"));
}

#[test]
fn petal_frame_mqtt_from_the_command_line() {
    use assert_cmd::cargo::CommandCargoExt;
    if std::env::var_os("PETAL_TEST_EMULATED").is_some() {
        // Six runs of petal as a process, each loading the model under qemu: 200 s of the ARM
        // suites for what is the same code on every target (like tests/cli.rs, which
        // .ci/cross leaves out); the library test above runs there.
        eprintln!("SKIPPED under emulation: petal frame --mqtt as a process (runs natively)");
        return;
    }
    let run = |args: &[&str]| {
        Process::cargo_bin("petal")
            .unwrap()
            .args(["--quiet", "frame", "--display", "memory", "--cycles", "1"])
            .args(args)
            .output()
            .unwrap()
    };
    for (args, says) in [
        (&["--mqtt", "mqtts://broker"][..], "TLS"),
        (&["--mqtt", "mqtt://broker:http"][..], "port"),
        (&["--mqtt-id", "hall"][..], "needs a broker"),
        (&["--mqtt", "broker", "--mqtt-id", "   "][..], "mqtt-id"),
    ] {
        let out = run(args);
        let e = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success() && e.contains(says), "{args:?}: {e}");
    }

    let dir = tempfile::tempdir().unwrap();
    let Some(broker) = Broker::start(dir.path()) else {
        return;
    };
    let url = format!("mqtt://127.0.0.1:{}", broker.port);
    let out = run(&["--mqtt", &url, "--mqtt-id", "Kitchen Frame", "--seed", "77"]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
    // What it left retained: its last state and a clean goodbye.
    let watcher = Watcher::connect(broker.port, "after");
    wait_for("retained state", || {
        watcher.get("petal/kitchen_frame/availability").as_deref() == Some("offline")
            && watcher.get("petal/kitchen_frame/state").is_some()
    });
    let state: serde_json::Value =
        serde_json::from_str(&watcher.get("petal/kitchen_frame/state").unwrap()).unwrap();
    assert_eq!(state["seed"], 77);
    assert!(watcher
        .get("homeassistant/button/petal_kitchen_frame/paint/config")
        .is_some());

    // A broker that is not there: the frame paints anyway and says why MQTT is down.
    drop(broker);
    let out = run(&["--mqtt", &url]);
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );
}
