//! Specs of the feature-gated displays (`window`, `spi:`, `epaper:`): parsed the same in every
//! build, every option and its errors; refused by name in builds without the feature.

use std::path::PathBuf;
use std::time::Duration;

use petal::display::epaper::{EpaperConfig, EpaperModel};
use petal::display::spec::Kind;
use petal::display::spi::{SpiConfig, SpiModel};
use petal::display::DisplaySpec;

fn parse(s: &str) -> DisplaySpec {
    DisplaySpec::parse_any(s).unwrap_or_else(|e| panic!("{s}: {e}"))
}

fn err(s: &str) -> String {
    match DisplaySpec::parse_any(s) {
        Ok(d) => panic!("{s} parsed as {d:?}"),
        Err(e) => e.to_string(),
    }
}

fn spi(s: &str) -> SpiConfig {
    match parse(s).kind {
        Kind::Spi(c) => c,
        k => panic!("{s}: {k:?}"),
    }
}

fn epaper(s: &str) -> EpaperConfig {
    match parse(s).kind {
        Kind::Epaper(c) => c,
        k => panic!("{s}: {k:?}"),
    }
}

fn has(e: &str, parts: &[&str]) {
    for p in parts {
        assert!(e.contains(p), "{p:?} not in: {e}");
    }
}

#[test]
fn window_size_and_scale() {
    let size = |s: &str| match parse(s).kind {
        Kind::Window { size, scale } => (size, scale),
        k => panic!("{k:?}"),
    };
    assert_eq!(size("window"), ((512, 512), 1));
    assert_eq!(size("window:640x480"), ((640, 480), 1));
    assert_eq!(size("window?size=320x200&scale=3"), ((320, 200), 3));
    has(&err("window:big"), &["size=\"big\"", "WxH"]);
    has(&err("window?scale=0"), &["scale=0", "out of range"]);
    has(&err("window?scale=x"), &["scale=\"x\"", "whole number"]);
    has(&err("window?title=x"), &["unknown option \"title\""]);
}

#[test]
fn spi_defaults_follow_the_model() {
    let c = spi("spi:st7789?dc=25");
    assert_eq!(
        c,
        SpiConfig {
            model: SpiModel::St7789,
            device: PathBuf::from("/dev/spidev0.0"),
            gpiochip: PathBuf::from("/dev/gpiochip0"),
            dc: 25,
            rst: None,
            backlight: None,
            size: (240, 240),
            offset: (0, 0),
            rotate: 0,
            invert: true,
            bgr: false,
            hz: 32_000_000,
        }
    );
    let c = spi("spi:ILI9341?dc=24");
    assert_eq!(c.model, SpiModel::Ili9341);
    assert_eq!((c.size, c.invert, c.bgr), ((240, 320), false, true));
}

#[test]
fn spi_every_option() {
    let c = spi(
        "spi:st7789?dev=/dev/spidev1.2&gpiochip=/dev/gpiochip4&dc=25&rst=27&bl=18\
         &size=240x280&offset=0,20&rotate=90&invert=off&order=bgr&mhz=62",
    );
    assert_eq!(c.device, PathBuf::from("/dev/spidev1.2"));
    assert_eq!(c.gpiochip, PathBuf::from("/dev/gpiochip4"));
    assert_eq!((c.dc, c.rst, c.backlight), (25, Some(27), Some(18)));
    assert_eq!((c.size, c.offset, c.rotate), ((240, 280), (0, 20), 90));
    assert_eq!(c.dimensions(), (280, 240), "rotated a quarter: landscape");
    assert_eq!((c.invert, c.bgr, c.hz), (false, true, 62_000_000));
    let c = spi("spi:st7789?dc=25&rst=none&rotate=180&invert=on&order=rgb");
    assert_eq!((c.rst, c.rotate, c.invert, c.bgr), (None, 180, true, false));
    assert_eq!(c.dimensions(), (240, 240));
}

#[test]
fn spi_bad_values_name_the_problem() {
    has(&err("spi:"), &["no panel model", "st7789, ili9341"]);
    has(
        &err("spi:ssd1306?dc=1"),
        &["unknown panel model \"ssd1306\""],
    );
    has(&err("spi:st7789"), &["dc=N", "data/command"]);
    has(
        &err("spi:st7789?dc=GPIO25"),
        &["dc=\"GPIO25\"", "GPIO line number"],
    );
    has(&err("spi:st7789?dc=25&rst=x"), &["rst=\"x\""]);
    has(&err("spi:st7789?dc=25&bl=-3"), &["bl=\"-3\""]);
    has(
        &err("spi:st7789?dc=25&rst=25"),
        &["dc and rst are both GPIO 25"],
    );
    has(
        &err("spi:st7789?dc=25&bl=25"),
        &["dc and bl are both GPIO 25"],
    );
    has(&err("spi:st7789?dc=25&size=240"), &["size=\"240\"", "WxH"]);
    has(
        &err("spi:st7789?dc=25&size=240x320&offset=0,80"),
        &["does not fit", "320 memory"],
    );
    has(&err("spi:ili9341?dc=25&size=320x240"), &["does not fit"]);
    has(
        &err("spi:st7789?dc=25&offset=80"),
        &["offset=\"80\"", "X,Y"],
    );
    has(
        &err("spi:st7789?dc=25&rotate=45"),
        &["rotate=\"45\"", "0, 90, 180 or 270"],
    );
    has(
        &err("spi:st7789?dc=25&invert=maybe"),
        &["invert=\"maybe\"", "on or off"],
    );
    has(&err("spi:st7789?dc=25&order=grb"), &["order=\"grb\""]);
    has(&err("spi:st7789?dc=25&mhz=0"), &["mhz=0", "out of range"]);
    has(
        &err("spi:st7789?dc=25&mhz=200"),
        &["mhz=200", "out of range"],
    );
    has(&err("spi:st7789?dc=25&dev="), &["dev= needs a path"]);
    has(&err("spi:st7789?dc=25&cs=8"), &["unknown option \"cs\""]);
    has(&err("spi:st7789?dc=25&dc=26"), &["\"dc\" is given twice"]);
}

#[test]
fn epaper_defaults_are_the_waveshare_hat() {
    let d = parse("epaper:7in3f");
    let c = match &d.kind {
        Kind::Epaper(c) => c.clone(),
        k => panic!("{k:?}"),
    };
    assert_eq!(
        c,
        EpaperConfig {
            model: EpaperModel::Epd7in3f,
            device: PathBuf::from("/dev/spidev0.0"),
            gpiochip: PathBuf::from("/dev/gpiochip0"),
            dc: 25,
            rst: 17,
            busy: 24,
            pwr: None,
            cs: None,
            rotate: 0,
            hz: 4_000_000,
            detect_on: None,
        }
    );
    assert_eq!(c.dimensions(), (800, 480));
    assert_eq!(c.model.min_refresh(), Duration::from_secs(180));
    // Dithered to the panel's colours by default, with the default saturation.
    let p = d.palette.expect("an e-paper spec has a palette");
    assert_eq!((p.name.as_str(), p.saturation), ("acep7", 0.5));
    let c = epaper("epaper:5in65f");
    assert_eq!(
        (c.model, c.dimensions()),
        (EpaperModel::Epd5in65f, (600, 448))
    );
}

#[test]
fn epaper_every_option() {
    let d = parse(
        "epaper:5in65f?dev=/dev/spidev0.1&gpiochip=/dev/gpiochip4&dc=5&rst=6&busy=13&pwr=18\
         &rotate=270&mhz=2&saturation=0.8&min-interval=10m",
    );
    let Kind::Epaper(c) = &d.kind else {
        panic!("{d:?}")
    };
    assert_eq!(c.device, PathBuf::from("/dev/spidev0.1"));
    assert_eq!(c.gpiochip, PathBuf::from("/dev/gpiochip4"));
    assert_eq!((c.dc, c.rst, c.busy, c.pwr), (5, 6, 13, Some(18)));
    assert_eq!(
        (c.rotate, c.dimensions(), c.hz),
        (270, (448, 600), 2_000_000)
    );
    assert_eq!(d.palette.as_ref().map(|p| p.saturation), Some(0.8));
    assert_eq!(d.min_refresh, Duration::from_secs(600));
    let d = parse("epaper:7in3f?palette=mono");
    assert_eq!(d.palette.map(|p| p.name), Some("mono".to_string()));
}

#[test]
fn epaper_bad_values_name_the_problem() {
    has(&err("epaper"), &["no panel model", "7in3f, 5in65f"]);
    has(
        &err("epaper:7in5?dc=1"),
        &["unknown e-paper model \"7in5\""],
    );
    has(&err("epaper:7in3f?busy=none"), &["busy cannot be none"]);
    has(&err("epaper:7in3f?busy=x"), &["busy=\"x\""]);
    has(
        &err("epaper:7in3f?busy=25"),
        &["dc and busy are both GPIO 25"],
    );
    has(
        &err("epaper:7in3f?pwr=17"),
        &["rst and pwr are both GPIO 17"],
    );
    has(&err("epaper:7in3f?rotate=1"), &["rotate=\"1\""]);
    has(&err("epaper:7in3f?mhz=40"), &["mhz=40", "out of range"]);
    has(&err("epaper:7in3f?saturation=1.5"), &["within 0..1"]);
    has(&err("epaper:7in3f?bl=18"), &["unknown option \"bl\""]);
}

/// Builds without a feature refuse its displays by name, after checking the spec.
#[test]
fn displays_this_build_lacks_are_refused_naming_the_feature() {
    let refused = |s: &str, feature: &str, built: bool| {
        let r = s.parse::<DisplaySpec>();
        if built {
            assert!(r.is_ok(), "{s}: {:?}", r.err());
        } else {
            let e = r.err().map(|e| e.to_string()).unwrap_or_default();
            has(&e, &[&format!("--features {feature}")]);
        }
    };
    refused("window:320x240", "window", cfg!(feature = "window"));
    refused("spi:st7789?dc=25", "spi", cfg!(feature = "spi"));
    refused("epaper:7in3f", "epaper", cfg!(feature = "epaper"));
    // A bad spec is reported as such in every build.
    let e = "spi:st7789?dc=x"
        .parse::<DisplaySpec>()
        .unwrap_err()
        .to_string();
    has(&e, &["dc=\"x\""]);
}
