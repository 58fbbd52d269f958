//! Home Assistant and other MQTT setups: `petal frame --mqtt mqtt://[USER:PASS@]HOST[:PORT]`
//! publishes the frame's state, takes the same commands as its buttons and its control page,
//! and announces itself through Home Assistant's MQTT discovery, so that it shows up as a
//! device with buttons, a pause switch, an interval field and sensors.
//!
//! Topics, under `petal/<id>` (`<id>`: `--mqtt-id`, default the host name):
//! - `availability`: `online`, or `offline` (also as the broker's last will when petal dies);
//! - `state`: JSON `{seed, painted_at, paused, pictures, every, on_screen}`, retained;
//! - `command` (petal listens): `next`, `paint`, `previous`, `keep`, `pause`;
//! - `paused/set` (listens): `ON` / `OFF`;
//! - `every/set` (listens): an interval such as `10m`, saved into the config as the control
//!   page saves it.
//!
//! The client reconnects by itself (a broker restart, a Wi-Fi drop) and announces everything
//! again on each connection. Its errors are logged once per outage, not once per retry.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::{Arc, Mutex};
use std::thread::JoinHandle;
use std::time::Duration;

use rumqttc::{Client, Connection, Event as MqttEvent, LastWill, MqttOptions, Packet, QoS};
use serde_json::json;

use super::control::{Command, Remote};
use super::settings_edit::{SettingsChange, SettingsSaver};
use super::status::{lock, FrameState};
use crate::error::{Error, Result};

pub const DEFAULT_PORT: u16 = 1883;
pub const TOPIC_PREFIX: &str = "petal";
pub const DISCOVERY_PREFIX: &str = "homeassistant";
/// How often the state is compared with what was last published.
const STATE_POLL: Duration = Duration::from_millis(250);

/// A parsed `--mqtt` URL.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct BrokerUrl {
    pub host: String,
    pub port: u16,
    pub credentials: Option<(String, String)>,
}

impl std::str::FromStr for BrokerUrl {
    type Err = Error;

    fn from_str(s: &str) -> Result<Self> {
        let bad = |why: &str| {
            Error::Invalid(format!(
                "{s:?}: {why} (expected mqtt://[USER:PASS@]HOST[:PORT])"
            ))
        };
        let rest = match s.split_once("://") {
            Some(("mqtt" | "tcp", rest)) => rest,
            Some(("mqtts" | "ssl", _)) => {
                return Err(bad(
                    "TLS is not in this build; use a broker on the LAN, or a local bridge",
                ))
            }
            Some((other, _)) => return Err(bad(&format!("unknown scheme {other:?}"))),
            None => s,
        };
        let rest = rest.trim_end_matches('/');
        if rest.contains('/') {
            return Err(bad("no path is used"));
        }
        let (credentials, hostport) = match rest.rsplit_once('@') {
            Some((cred, hp)) => {
                let (u, p) = cred.split_once(':').unwrap_or((cred, ""));
                (Some((u.to_string(), p.to_string())), hp)
            }
            None => (None, rest),
        };
        let port_of = |p: &str| {
            p.parse::<u16>()
                .map_err(|_| bad(&format!("port {p:?} is not a number")))
        };
        let (host, port) = if let Some(v6) = hostport.strip_prefix('[') {
            // [IPv6]:PORT
            match v6.split_once(']') {
                Some((h, "")) => (h, DEFAULT_PORT),
                Some((h, p)) => match p.strip_prefix(':') {
                    Some(p) => (h, port_of(p)?),
                    None => return Err(bad("text after the ]")),
                },
                None => return Err(bad("no ] after the [")),
            }
        } else {
            match hostport.split_once(':') {
                Some((h, p)) if !p.contains(':') => (h, port_of(p)?),
                Some(_) => return Err(bad("an IPv6 address goes in brackets: [::1]:1883")),
                None => (hostport, DEFAULT_PORT),
            }
        };
        if host.is_empty() {
            return Err(bad("no host"));
        }
        Ok(BrokerUrl {
            host: host.to_string(),
            port,
            credentials,
        })
    }
}

/// A name for topics and Home Assistant ids: lower-case letters, digits, `_` and `-`.
pub fn topic_id(name: &str) -> Result<String> {
    let id: String = name
        .trim()
        .to_ascii_lowercase()
        .chars()
        .map(|c| {
            if c.is_ascii_alphanumeric() || c == '-' {
                c
            } else {
                '_'
            }
        })
        .collect();
    if id.is_empty() || id.len() > 64 {
        return Err(Error::Invalid(format!(
            "mqtt id {name:?}: give 1 to 64 letters, digits or -"
        )));
    }
    Ok(id)
}

/// The machine's host name, for the default id.
pub fn host_name() -> String {
    std::fs::read_to_string("/proc/sys/kernel/hostname")
        .or_else(|_| std::fs::read_to_string("/etc/hostname"))
        .map(|s| s.trim().to_string())
        .ok()
        .filter(|s| !s.is_empty())
        .unwrap_or_else(|| "frame".into())
}

pub struct MqttConfig {
    pub broker: BrokerUrl,
    pub id: String,
}

/// The topics of one frame.
#[derive(Clone)]
struct Topics {
    base: String,
    id: String,
}

impl Topics {
    fn new(id: &str) -> Self {
        Topics {
            base: format!("{TOPIC_PREFIX}/{id}"),
            id: id.to_string(),
        }
    }

    fn at(&self, leaf: &str) -> String {
        format!("{}/{leaf}", self.base)
    }

    /// Home Assistant's discovery messages: (topic, retained JSON config).
    fn discovery(&self) -> Vec<(String, String)> {
        let device = json!({
            "identifiers": [format!("petal_{}", self.id)],
            "name": format!("petal {}", self.id),
            "manufacturer": "petal",
            "model": "diffusion art frame",
            "sw_version": env!("CARGO_PKG_VERSION"),
        });
        let common = |name: &str, key: &str| {
            json!({
                "name": name,
                "unique_id": format!("petal_{}_{key}", self.id),
                "object_id": format!("petal_{}_{key}", self.id),
                "availability_topic": self.at("availability"),
                "device": device,
            })
        };
        let mut out = Vec::new();
        let mut add =
            |component: &str, key: &str, mut cfg: serde_json::Value, extra: serde_json::Value| {
                if let (Some(c), Some(e)) = (cfg.as_object_mut(), extra.as_object()) {
                    c.extend(e.clone());
                }
                out.push((
                    format!(
                        "{DISCOVERY_PREFIX}/{component}/petal_{}/{key}/config",
                        self.id
                    ),
                    cfg.to_string(),
                ));
            };
        for (key, name) in [
            ("next", "Next picture"),
            ("paint", "Paint now"),
            ("previous", "Previous picture"),
            ("keep", "Keep as favourite"),
        ] {
            add(
                "button",
                key,
                common(name, key),
                json!({ "command_topic": self.at("command"), "payload_press": key }),
            );
        }
        add(
            "switch",
            "paused",
            common("Paused", "paused"),
            json!({
                "command_topic": self.at("paused/set"),
                "state_topic": self.at("state"),
                "value_template": "{{ 'ON' if value_json.paused else 'OFF' }}",
            }),
        );
        add(
            "text",
            "every",
            common("Interval", "every"),
            json!({
                "command_topic": self.at("every/set"),
                "state_topic": self.at("state"),
                "value_template": "{{ value_json.every }}",
                "pattern": "^[0-9]+(\\.[0-9]+)?(ms|s|m|h|d)$",
            }),
        );
        add(
            "sensor",
            "seed",
            common("Seed", "seed"),
            json!({ "state_topic": self.at("state"), "value_template": "{{ value_json.seed }}" }),
        );
        add(
            "sensor",
            "painted_at",
            common("Last painted", "painted_at"),
            json!({
                "state_topic": self.at("state"),
                "value_template": "{{ value_json.painted_at }}",
                "device_class": "timestamp",
            }),
        );
        out
    }
}

/// The state message for `s`.
fn state_json(s: &FrameState) -> String {
    json!({
        "seed": s.seed,
        "painted_at": s.painted_at,
        "paused": s.paused,
        "pictures": s.pictures,
        "every": s.settings.as_ref().map(|p| p.every.clone()),
        "on_screen": s.on_screen.as_ref().and_then(|p| p.file_name()).map(|n| n.to_string_lossy().into_owned()),
    })
    .to_string()
}

/// A running MQTT link; announces `offline` and stops when dropped.
pub struct MqttLink {
    client: Client,
    topics: Topics,
    state: Arc<Mutex<FrameState>>,
    done: Arc<AtomicBool>,
    threads: Vec<JoinHandle<()>>,
}

impl MqttLink {
    /// The frame's name in the topics.
    pub fn id(&self) -> &str {
        &self.topics.id
    }
}

impl Drop for MqttLink {
    fn drop(&mut self) {
        self.done.store(true, Ordering::Relaxed);
        // The last state (a short run may end between two polls), then a clean goodbye: the
        // last will is only for deaths.
        let last = state_json(&lock(&self.state));
        let _ = self
            .client
            .publish(self.topics.at("state"), QoS::AtLeastOnce, true, last);
        let _ = self.client.publish(
            self.topics.at("availability"),
            QoS::AtLeastOnce,
            true,
            "offline",
        );
        let _ = self.client.disconnect();
        for t in self.threads.drain(..) {
            let _ = t.join();
        }
    }
}

/// Connects (in the background: a broker that is down now is retried) and starts publishing.
pub fn start(
    cfg: MqttConfig,
    state: Arc<Mutex<FrameState>>,
    remote: Remote,
    saver: SettingsSaver,
) -> Result<MqttLink> {
    let id = topic_id(&cfg.id)?;
    let topics = Topics::new(&id);
    let mut opts = MqttOptions::new(
        format!("petal-{id}"),
        cfg.broker.host.clone(),
        cfg.broker.port,
    );
    opts.set_keep_alive(Duration::from_secs(30));
    opts.set_last_will(LastWill::new(
        topics.at("availability"),
        "offline",
        QoS::AtLeastOnce,
        true,
    ));
    if let Some((u, p)) = &cfg.broker.credentials {
        opts.set_credentials(u.clone(), p.clone());
    }
    let (client, connection) = Client::new(opts, 64);
    let done = Arc::new(AtomicBool::new(false));
    // Set on each new connection: the state is published again then.
    let republish = Arc::new(AtomicBool::new(false));
    let listener = {
        let (client, topics, done, republish) = (
            client.clone(),
            topics.clone(),
            Arc::clone(&done),
            Arc::clone(&republish),
        );
        let state = Arc::clone(&state);
        let broker = format!("{}:{}", cfg.broker.host, cfg.broker.port);
        std::thread::Builder::new()
            .name("petal-mqtt".into())
            .spawn(move || {
                listen(
                    connection, &client, &topics, &done, &republish, &state, &remote, &saver,
                    &broker,
                )
            })
            .map_err(|e| Error::Invalid(format!("cannot start the MQTT thread: {e}")))?
    };
    let publisher = {
        let (client, topics, done) = (client.clone(), topics.clone(), Arc::clone(&done));
        let state = Arc::clone(&state);
        std::thread::Builder::new()
            .name("petal-mqtt-state".into())
            .spawn(move || publish_state(&client, &topics, &done, &republish, &state))
            .map_err(|e| Error::Invalid(format!("cannot start the MQTT thread: {e}")))?
    };
    Ok(MqttLink {
        client,
        topics,
        state: Arc::clone(&state),
        done,
        threads: vec![listener, publisher],
    })
}

/// Publishes the state whenever it changes (and again after each reconnection).
fn publish_state(
    client: &Client,
    topics: &Topics,
    done: &AtomicBool,
    republish: &AtomicBool,
    state: &Mutex<FrameState>,
) {
    let mut last = String::new();
    while !done.load(Ordering::Relaxed) {
        let now = state_json(&lock(state));
        if now != last || republish.swap(false, Ordering::Relaxed) {
            // Queued while disconnected; sent once the broker is back.
            if client
                .try_publish(topics.at("state"), QoS::AtLeastOnce, true, now.clone())
                .is_ok()
            {
                last = now;
            }
        }
        std::thread::sleep(STATE_POLL);
    }
}

#[allow(clippy::too_many_arguments)]
fn listen(
    mut connection: Connection,
    client: &Client,
    topics: &Topics,
    done: &AtomicBool,
    republish: &AtomicBool,
    state: &Mutex<FrameState>,
    remote: &Remote,
    saver: &SettingsSaver,
    broker: &str,
) {
    let mut down_since_logged = false;
    for event in connection.iter() {
        if done.load(Ordering::Relaxed) {
            break;
        }
        match event {
            Ok(MqttEvent::Incoming(Packet::ConnAck(_))) => {
                if down_since_logged {
                    log::warn!("mqtt: connected to {broker} again");
                }
                down_since_logged = false;
                announce(client, topics);
                republish.store(true, Ordering::Relaxed);
            }
            Ok(MqttEvent::Incoming(Packet::Publish(p))) => {
                let payload = String::from_utf8_lossy(&p.payload).trim().to_string();
                let outcome = handle(&p.topic, &payload, topics, state, remote, saver);
                if let Err(e) = outcome {
                    log::warn!("mqtt: {} {payload:?}: {e}", p.topic);
                }
            }
            Ok(_) => {}
            Err(e) => {
                if !down_since_logged {
                    log::warn!("mqtt: {broker}: {e}; retrying every 2 s");
                    down_since_logged = true;
                }
                // The iterator reconnects on the next call; without a pause it would spin.
                for _ in 0..20 {
                    if done.load(Ordering::Relaxed) {
                        return;
                    }
                    std::thread::sleep(Duration::from_millis(100));
                }
            }
        }
    }
}

/// Subscribes and announces: on every connection, since a broker without persistence forgets.
fn announce(client: &Client, topics: &Topics) {
    for leaf in ["command", "paused/set", "every/set"] {
        let _ = client.try_subscribe(topics.at(leaf), QoS::AtLeastOnce);
    }
    for (topic, cfg) in topics.discovery() {
        let _ = client.try_publish(topic, QoS::AtLeastOnce, true, cfg);
    }
    let _ = client.try_publish(topics.at("availability"), QoS::AtLeastOnce, true, "online");
}

/// Does what a message on one of the frame's topics asks.
fn handle(
    topic: &str,
    payload: &str,
    topics: &Topics,
    state: &Mutex<FrameState>,
    remote: &Remote,
    saver: &SettingsSaver,
) -> std::result::Result<(), String> {
    let send = |c: Command| {
        if remote.send(c) {
            Ok(())
        } else {
            Err("the frame is not running".to_string())
        }
    };
    if topic == topics.at("command") {
        let c: Command = payload.parse().map_err(|e: Error| e.to_string())?;
        return match c {
            Command::Next | Command::Paint | Command::Previous | Command::Keep | Command::Pause => {
                send(c)
            }
            // Powering the board off from the network is left to the buttons.
            _ => Err(format!("{} is not taken over MQTT", c.name())),
        };
    }
    if topic == topics.at("paused/set") {
        let want = match payload.to_ascii_uppercase().as_str() {
            "ON" | "TRUE" | "1" => true,
            "OFF" | "FALSE" | "0" => false,
            _ => return Err("expected ON or OFF".into()),
        };
        // Pause toggles; only send it when the state differs.
        return if lock(state).paused != want {
            send(Command::Pause)
        } else {
            Ok(())
        };
    }
    if topic == topics.at("every/set") {
        let change = SettingsChange {
            every: Some(payload.to_string()),
            ..Default::default()
        };
        return saver.save(&change).map(|_| ()).map_err(|e| e.to_string());
    }
    Err("not one of petal's topics".into())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn broker_urls() {
        let u: BrokerUrl = "mqtt://ha:secret@192.168.1.2:1884".parse().unwrap();
        assert_eq!(
            u,
            BrokerUrl {
                host: "192.168.1.2".into(),
                port: 1884,
                credentials: Some(("ha".into(), "secret".into()))
            }
        );
        let u: BrokerUrl = "homeassistant.local".parse().unwrap();
        assert_eq!(
            (u.host.as_str(), u.port, u.credentials),
            ("homeassistant.local", 1883, None)
        );
        let u: BrokerUrl = "mqtt://[::1]:1999/".parse().unwrap();
        assert_eq!((u.host.as_str(), u.port), ("::1", 1999));
        for bad in [
            "mqtts://x",
            "http://x",
            "mqtt://x:port",
            "mqtt://",
            "mqtt://x/petal",
        ] {
            assert!(bad.parse::<BrokerUrl>().is_err(), "{bad}");
        }
    }

    #[test]
    fn ids_are_safe_in_topics() {
        assert_eq!(
            topic_id("Living Room/Frame#1").unwrap(),
            "living_room_frame_1"
        );
        assert_eq!(topic_id("pi-zero").unwrap(), "pi-zero");
        assert!(topic_id("  ").is_err());
    }

    #[test]
    fn discovery_announces_every_entity_of_one_device() {
        let t = Topics::new("hall");
        let d = t.discovery();
        assert_eq!(d.len(), 8);
        for (topic, cfg) in &d {
            assert!(
                topic.starts_with("homeassistant/") && topic.ends_with("/config"),
                "{topic}"
            );
            let v: serde_json::Value = serde_json::from_str(cfg).unwrap();
            assert_eq!(v["device"]["identifiers"][0], "petal_hall");
            assert_eq!(v["availability_topic"], "petal/hall/availability");
            assert!(v["unique_id"].as_str().unwrap().starts_with("petal_hall_"));
        }
    }
}
