//! Colour e-paper (7-colour ACeP and 6-colour Spectra 6) without hardware: the packing of dithered frames into the panel's colour
//! indices, the refresh sequence against a recording SPI device and pins, a BUSY line that
//! never answers, and opening devices that are not there.

#![cfg(feature = "epaper")]

mod hal_mock;

use std::time::Duration;

use embedded_graphics::prelude::*;
use hal_mock::{Busy, CountingDelay, NoDelay, Wire};
use image::{Rgb, RgbImage};
use petal::display::compose::compose;
use petal::display::dither::{ACEP7_NOMINAL, SPECTRA6_NOMINAL};
use petal::display::epaper::{EpaperConfig, EpaperModel};
use petal::display::epaper_panel::{pack, EpaperPanel, PanelPins};
use petal::display::inky::{read_eeprom, InkyEeprom};
use petal::display::spec::Kind;
use petal::display::spectra6::MIN_REFRESH_WAIT;
use petal::display::{Display, DisplaySpec};

const F7: EpaperModel = EpaperModel::Epd7in3f;

type Panel = EpaperPanel<hal_mock::Spi, hal_mock::Pin, hal_mock::Pin, NoDelay>;

const DATA_START: u8 = 0x10;
const POWER_ON: u8 = 0x04;
const REFRESH: u8 = 0x12;
const POWER_OFF: u8 = 0x02;
const DEEP_SLEEP: u8 = 0x07;

fn config(spec: &str) -> EpaperConfig {
    match DisplaySpec::parse_any(spec).unwrap().kind {
        Kind::Epaper(c) => c,
        k => panic!("{k:?}"),
    }
}

fn open(spec: &str, wire: &Wire, busy: Busy, limit: Duration) -> petal::Result<Panel> {
    let c = config(spec);
    let pwr = c.pwr.map(|_| wire.pin("pwr"));
    EpaperPanel::new(
        &c,
        wire.spi(),
        PanelPins {
            dc: Some(wire.pin("dc")),
            rst: wire.pin("rst"),
            busy: wire.busy(busy),
            pwr,
            cs: None,
        },
        NoDelay,
        limit,
    )
}

fn colour(i: usize) -> Rgb<u8> {
    let c = ACEP7_NOMINAL[i];
    Rgb([c.r(), c.g(), c.b()])
}

#[test]
fn pack_puts_two_colour_indices_in_a_byte() {
    // 4x2 panel: black white green blue / red yellow orange black.
    let img = RgbImage::from_fn(4, 2, |x, y| colour(((y * 4 + x) % 7) as usize));
    assert_eq!(pack(&img, (4, 2), 0, F7), vec![0x01, 0x23, 0x45, 0x60]);
    // Turned half way: the viewer's last pixel is the panel's first.
    assert_eq!(pack(&img, (4, 2), 180, F7), vec![0x06, 0x54, 0x32, 0x10]);
    // A quarter clockwise: the viewer sees 2x4; the panel's first row is the viewer's right
    // column, top to bottom.
    let tall = RgbImage::from_fn(2, 4, |x, y| colour((y * 2 + x) as usize % 7));
    assert_eq!(pack(&tall, (4, 2), 90, F7), vec![0x13, 0x50, 0x02, 0x46]);
    assert_eq!(pack(&tall, (4, 2), 270, F7), vec![0x64, 0x20, 0x05, 0x31]);
    // Colours that are not the panel's go to the nearest one.
    let off = RgbImage::from_fn(2, 1, |x, _| {
        if x == 0 {
            Rgb([250, 10, 5])
        } else {
            Rgb([20, 20, 30])
        }
    });
    assert_eq!(pack(&off, (2, 1), 0, F7), vec![0x40]);
}

#[test]
fn a_frame_is_sent_refreshed_and_the_panel_put_to_sleep() {
    let wire = Wire::default();
    let mut p = open("epaper:7in3f", &wire, Busy::Idle, Duration::from_secs(5)).unwrap();
    assert_eq!(p.dimensions(), (800, 480));
    assert_eq!(p.min_refresh_interval(), Duration::from_secs(180));
    let palette = p.palette().expect("the panel's colours").clone();
    assert_eq!(palette.name, "acep7");
    assert!(
        !wire.commands().iter().any(|(c, _)| *c == DATA_START),
        "nothing is drawn before the first frame"
    );
    assert_eq!(
        &wire.pins()[..2],
        &[("rst".into(), true), ("rst".into(), false)]
    );

    // A picture as the frame loop makes it for this panel: fitted and dithered.
    let pic = RgbImage::from_fn(32, 32, |x, y| Rgb([(x * 8) as u8, (y * 8) as u8, 120]));
    let frame = compose(&pic, 800, 480, &Default::default(), None, Some(&palette));
    for round in 0..2 {
        wire.clear();
        p.draw_image(&frame).unwrap();
        p.show().unwrap();
        let cmds = wire.commands();
        let order: Vec<u8> = cmds
            .iter()
            .map(|(c, _)| *c)
            .filter(|c| [DATA_START, POWER_ON, REFRESH, POWER_OFF, DEEP_SLEEP].contains(c))
            .collect();
        assert_eq!(
            order,
            [DATA_START, POWER_ON, REFRESH, POWER_OFF, DEEP_SLEEP],
            "round {round}"
        );
        let data = &cmds.iter().find(|(c, _)| *c == DATA_START).unwrap().1;
        assert_eq!(data.len(), 800 * 480 / 2);
        assert_eq!(data, &pack(&frame, (800, 480), 0, F7));
        // Spot checks against the frame, by hand.
        let index = |x: u32, y: u32| {
            let px = frame.get_pixel(x, y);
            (0..7).find(|i| colour(*i) == *px).expect("a panel colour") as u8
        };
        for (x, y) in [(0, 0), (400, 240), (799, 479), (161, 33)] {
            let b = data[(y * 400 + x / 2) as usize];
            let nibble = if x % 2 == 0 { b >> 4 } else { b & 0x0f };
            assert_eq!(nibble, index(x, y), "({x},{y})");
        }
        assert_eq!(cmds.last(), Some(&(DEEP_SLEEP, vec![0xa5])));
        if round == 1 {
            // Woken from deep sleep by a reset before the second frame.
            assert_eq!(
                &wire.pins()[..2],
                &[("rst".into(), true), ("rst".into(), false)]
            );
        }
    }
}

#[test]
fn the_5in65f_and_its_power_pin() {
    let wire = Wire::default();
    let mut p = open(
        "epaper:5in65f?pwr=18&rotate=90",
        &wire,
        Busy::Idle,
        Duration::from_secs(5),
    )
    .unwrap();
    assert_eq!(wire.pins().first(), Some(&("pwr".to_string(), true)));
    assert_eq!(p.dimensions(), (448, 600));
    let frame = RgbImage::from_fn(448, 600, |x, y| colour(((x / 7 + y / 5) % 7) as usize));
    wire.clear();
    p.draw_image(&frame).unwrap();
    p.show().unwrap();
    let cmds = wire.commands();
    let data = &cmds.iter().find(|(c, _)| *c == DATA_START).unwrap().1;
    assert_eq!(data, &pack(&frame, (600, 448), 90, F7));
    assert_eq!(cmds.last(), Some(&(DEEP_SLEEP, vec![0xa5])));
}

#[test]
fn a_busy_line_that_never_answers_is_an_error_not_a_hang() {
    let wire = Wire::default();
    // The 7.3" is busy while BUSY is low.
    let e = match open(
        "epaper:7in3f",
        &wire,
        Busy::Stuck(false),
        Duration::from_millis(50),
    ) {
        Ok(_) => panic!("opened with a dead BUSY line"),
        Err(e) => e.to_string(),
    };
    for part in ["BUSY (GPIO 24)", "is the panel connected", "pwr=18"] {
        assert!(e.contains(part), "{part:?} in {e}");
    }
    assert!(wire.busy_reads() > 1);
}

#[test]
fn missing_spi_device_is_named() {
    let e = match "epaper:7in3f?dev=/nonexistent/spidev0.0"
        .parse::<DisplaySpec>()
        .unwrap()
        .open()
    {
        Ok(_) => panic!("opened"),
        Err(e) => e,
    };
    assert!(matches!(e, petal::Error::Invalid(_)), "{e:?}");
    let e = e.to_string();
    assert!(
        e.contains("/nonexistent/spidev0.0 does not exist") && e.contains("dtparam=spi=on"),
        "{e}"
    );
}

type SpectraPanel = EpaperPanel<hal_mock::Spi, hal_mock::Pin, hal_mock::Pin, CountingDelay>;

fn open_spectra(spec: &str, wire: &Wire, delay: &CountingDelay) -> SpectraPanel {
    let c = config(spec);
    EpaperPanel::new(
        &c,
        wire.spi(),
        PanelPins {
            dc: Some(wire.pin("dc")),
            rst: wire.pin("rst"),
            busy: wire.busy(Busy::Idle),
            pwr: None,
            cs: None,
        },
        delay.clone(),
        Duration::from_secs(5),
    )
    .unwrap()
}

/// A frame using every colour of the Spectra 6 palette, in bands.
fn spectra_bands(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let c = SPECTRA6_NOMINAL[((x / 10 + y / 7) % 6) as usize];
        Rgb([c.r(), c.g(), c.b()])
    })
}

#[test]
fn spectra6_codes_skip_the_orange_slot() {
    // black white yellow red / blue green, and off-palette colours go to the nearest.
    let img = RgbImage::from_fn(4, 2, |x, y| {
        let c = SPECTRA6_NOMINAL[((y * 4 + x) % 6) as usize];
        Rgb([c.r(), c.g(), c.b()])
    });
    let e6 = EpaperModel::Epd7in3e;
    assert_eq!(pack(&img, (4, 2), 0, e6), vec![0x01, 0x23, 0x56, 0x01]);
    let orange = RgbImage::from_pixel(2, 1, Rgb([255, 128, 0]));
    // Orange is code 6 on an ACeP panel but does not exist on Spectra 6 (yellow or red).
    assert_eq!(pack(&orange, (2, 1), 0, F7), vec![0x66]);
    assert!([0x22, 0x33].contains(&pack(&orange, (2, 1), 0, e6)[0]));
}

#[test]
fn spectra6_7in3e_refresh_sequence_and_minimum_wait() {
    let wire = Wire::default();
    let delay = CountingDelay::default();
    let mut p = open_spectra("epaper:7in3e?rotate=270", &wire, &delay);
    assert_eq!(p.dimensions(), (480, 800));
    assert_eq!(p.palette().expect("palette").name, "spectra6");
    assert!(p.describe().contains("Spectra 6"), "{}", p.describe());
    // Waveshare's HAT wiring; initialised after a reset, nothing drawn yet.
    let c = config("epaper:7in3e");
    assert_eq!((c.dc, c.rst, c.busy), (25, 17, 24));
    let cmds = wire.commands();
    assert_eq!(cmds[0], (0xaa, vec![0x49, 0x55, 0x20, 0x08, 0x09, 0x18]));
    assert!(
        cmds.contains(&(0x61, vec![0x03, 0x20, 0x01, 0xe0])),
        "800x480 resolution"
    );
    assert!(!cmds.iter().any(|(c, _)| *c == DATA_START));

    for round in 0..2 {
        wire.clear();
        delay.reset();
        let frame = spectra_bands(480, 800);
        p.draw_image(&frame).unwrap();
        p.show().unwrap();
        let cmds = wire.commands();
        let order: Vec<u8> = cmds.iter().map(|(c, _)| *c).collect();
        let start = order.iter().position(|c| *c == DATA_START).unwrap();
        assert_eq!(
            &order[start..],
            &[DATA_START, POWER_ON, REFRESH, POWER_OFF, DEEP_SLEEP],
            "round {round}"
        );
        if round == 1 {
            // Woken from deep sleep: a reset and the whole initialisation again.
            assert_eq!(
                &wire.pins()[..3],
                &[
                    ("rst".into(), true),
                    ("rst".into(), false),
                    ("rst".into(), true)
                ]
            );
            assert_eq!(order[0], 0xaa);
        }
        let data = &cmds[start].1;
        assert_eq!(data.len(), 800 * 480 / 2);
        assert_eq!(data, &pack(&frame, (800, 480), 270, EpaperModel::Epd7in3e));
        let nibbles: std::collections::BTreeSet<u8> =
            data.iter().flat_map(|b| [b >> 4, b & 0x0f]).collect();
        assert_eq!(
            nibbles.into_iter().collect::<Vec<_>>(),
            vec![0, 1, 2, 3, 5, 6]
        );
        // BUSY here answers at once, as a panel that releases it early does: the refresh still
        // gets its minimum time before power-off.
        assert!(
            delay.total() >= MIN_REFRESH_WAIT,
            "waited {:?}",
            delay.total()
        );
        assert_eq!(cmds.last(), Some(&(DEEP_SLEEP, vec![0xa5])));
    }
}

#[test]
fn inky_impression_7in3_pins_and_pimoroni_sequence() {
    let c = config("epaper:inky-7in3e");
    assert_eq!((c.dc, c.rst, c.busy), (22, 27, 17));
    let wire = Wire::default();
    let delay = CountingDelay::default();
    let mut p = open_spectra("epaper:inky-7in3e", &wire, &delay);
    assert!(p.describe().contains("Inky Impression"), "{}", p.describe());
    // Pimoroni's PLL setting, and the second booster setting just before the refresh.
    assert!(wire.commands().contains(&(0x30, vec![0x08])));
    wire.clear();
    p.draw_image(&spectra_bands(800, 480)).unwrap();
    p.show().unwrap();
    let cmds = wire.commands();
    let at = |cmd: u8| cmds.iter().position(|(c, _)| *c == cmd).unwrap();
    assert_eq!(cmds[at(POWER_ON) + 1], (0x06, vec![0x6f, 0x1f, 0x17, 0x49]));
    assert_eq!(at(POWER_ON) + 2, at(REFRESH));
}

#[test]
fn spectra6_spec_options() {
    let spec: DisplaySpec = "epaper:7in3e?saturation=0.8".parse().unwrap();
    let p = spec.palette.as_ref().expect("default palette");
    assert_eq!((p.name.as_str(), p.saturation), ("spectra6", 0.8));
    assert_eq!(p.nominal.len(), 6);
    // Overriding the palette still works, and a wrong model names the choices.
    let spec: DisplaySpec = "epaper:7in3e?palette=mono".parse().unwrap();
    assert_eq!(spec.palette.unwrap().name, "mono");
    let e = "epaper:7in3x"
        .parse::<DisplaySpec>()
        .unwrap_err()
        .to_string();
    assert!(e.contains("7in3e") && e.contains("inky-7in3e"), "{e}");
}

/// An Inky EEPROM record as Pimoroni writes it (`struct.pack("<HHBBB22p", ...)`).
fn inky_record(w: u16, h: u16, colour: u8, variant: u8) -> Vec<u8> {
    let mut b = Vec::new();
    b.extend(w.to_le_bytes());
    b.extend(h.to_le_bytes());
    b.extend([colour, 12, variant]);
    let when = b"2025-03-04 10:11:12.5";
    b.push(when.len() as u8);
    b.extend(when);
    b.resize(29, 0);
    b
}

/// An I2C bus with one EEPROM on it (or none), recording what is asked of it.
struct Eeprom {
    record: Option<Vec<u8>>,
    asked: Vec<(u8, Vec<u8>, usize)>,
}

impl embedded_hal::i2c::ErrorType for Eeprom {
    type Error = embedded_hal::i2c::ErrorKind;
}

impl embedded_hal::i2c::I2c for Eeprom {
    fn transaction(
        &mut self,
        address: u8,
        ops: &mut [embedded_hal::i2c::Operation<'_>],
    ) -> Result<(), Self::Error> {
        use embedded_hal::i2c::{ErrorKind, NoAcknowledgeSource, Operation};
        let mut wrote = Vec::new();
        for op in ops {
            match op {
                Operation::Write(w) => wrote.extend_from_slice(w),
                Operation::Read(r) => {
                    self.asked.push((address, wrote.clone(), r.len()));
                    let rec = self
                        .record
                        .as_ref()
                        .ok_or(ErrorKind::NoAcknowledge(NoAcknowledgeSource::Address))?;
                    r.copy_from_slice(&rec[..r.len()]);
                }
            }
        }
        Ok(())
    }
}

#[test]
fn inky_eeprom_names_the_panel() {
    let mut bus = Eeprom {
        record: Some(inky_record(800, 480, 6, 22)),
        asked: Vec::new(),
    };
    let e = read_eeprom(&mut bus).unwrap();
    assert_eq!(bus.asked, vec![(0x50, vec![0, 0], 29)]);
    assert_eq!((e.width, e.height, e.display_variant), (800, 480, 22));
    assert_eq!(e.written, "2025-03-04 10:11:12.5");
    assert_eq!(e.variant_name(), "Spectra 6 7.3 800x480 (E673)");
    assert_eq!(e.model().unwrap(), EpaperModel::Inky7in3e);
    // The newer "AC" revision of the same panel too.
    let ac = InkyEeprom::parse(&inky_record(800, 480, 6, 26)).unwrap();
    assert_eq!(ac.model().unwrap(), EpaperModel::Inky7in3e);

    // A 13.3" Spectra 6 is named, with what petal does drive.
    let big = InkyEeprom::parse(&inky_record(1600, 1200, 6, 21)).unwrap();
    let err = big.model().unwrap_err().to_string();
    assert!(err.contains("Spectra 6 13.3 1600x1200 (EL133UF1)"), "{err}");
    assert!(err.contains("epaper:inky-7in3e"), "{err}");
    // A record whose size disagrees with its variant is not trusted.
    let odd = InkyEeprom::parse(&inky_record(640, 400, 6, 22)).unwrap();
    assert!(odd.model().is_err());
    let unknown = InkyEeprom::parse(&inky_record(800, 480, 6, 200)).unwrap();
    assert!(unknown
        .model()
        .unwrap_err()
        .to_string()
        .contains("unknown variant 200"));
    assert!(InkyEeprom::parse(&[1, 2, 3]).is_err());

    // No HAT: nothing answers at 0x50.
    let mut empty = Eeprom {
        record: None,
        asked: Vec::new(),
    };
    let err = read_eeprom(&mut empty).unwrap_err().to_string();
    assert!(
        err.contains("0x50") && err.contains("dtparam=i2c_arm=on"),
        "{err}"
    );
}

#[test]
fn epaper_inky_reads_the_hat_at_open() {
    let c = config("epaper:inky");
    assert_eq!(c.detect_on, Some(std::path::PathBuf::from("/dev/i2c-1")));
    assert_eq!((c.dc, c.rst, c.busy), (22, 27, 17), "the Inky HAT's pins");
    assert_eq!(
        config("epaper:inky?i2c=/dev/i2c-3").detect_on,
        Some("/dev/i2c-3".into())
    );
    // Only `inky` reads a HAT; a named panel takes no bus.
    let e = "epaper:7in3e?i2c=/dev/i2c-1"
        .parse::<DisplaySpec>()
        .unwrap_err()
        .to_string();
    assert!(e.contains("unknown option \"i2c\""), "{e}");
    // Opening looks at the bus first, and names it when it is not there.
    let e = match "epaper:inky?i2c=/nonexistent/i2c-1"
        .parse::<DisplaySpec>()
        .unwrap()
        .open()
    {
        Ok(_) => panic!("opened"),
        Err(e) => e.to_string(),
    };
    assert!(
        e.contains("/nonexistent/i2c-1 does not exist") && e.contains("dtparam=i2c_arm=on"),
        "{e}"
    );
}

/// The 13.3" on a recording wire: its chip selects are pins "cs-m" and "cs-s".
fn open_13in3e(spec: &str, wire: &Wire, delay: &CountingDelay) -> SpectraPanel {
    let c = config(spec);
    EpaperPanel::new(
        &c,
        wire.spi(),
        PanelPins {
            dc: None,
            rst: wire.pin("rst"),
            busy: wire.busy(Busy::Idle),
            pwr: c.pwr.map(|_| wire.pin("pwr")),
            cs: Some((wire.pin("cs-m"), wire.pin("cs-s"))),
        },
        delay.clone(),
        Duration::from_secs(5),
    )
    .unwrap()
}

#[test]
fn spectra6_13in3e_two_controllers_each_get_their_half() {
    let main = || vec!["cs-m".to_string()];
    let both = || vec!["cs-m".to_string(), "cs-s".to_string()];
    let c = config("epaper:13in3e");
    assert_eq!(
        (c.rst, c.busy, c.pwr, c.cs),
        (17, 24, Some(18), Some((8, 7)))
    );
    assert_eq!(c.dimensions(), (1200, 1600));

    let wire = Wire::default();
    let delay = CountingDelay::default();
    let mut p = open_13in3e("epaper:13in3e?rotate=90", &wire, &delay);
    assert_eq!(p.dimensions(), (1600, 1200), "turned to landscape");
    assert_eq!(p.palette().expect("palette").name, "spectra6");
    // Waveshare's initialisation: each command framed by its chip selects, to the main
    // controller or to both; no DC line.
    let frames = wire.frames();
    let expected: Vec<(Vec<String>, Vec<u8>)> = vec![
        (
            main(),
            vec![0x74, 0xc0, 0x1c, 0x1c, 0xcc, 0xcc, 0xcc, 0x15, 0x15, 0x55],
        ),
        (both(), vec![0xf0, 0x49, 0x55, 0x13, 0x5d, 0x05, 0x10]),
        (both(), vec![0x00, 0xdf, 0x69]),
        (both(), vec![0x50, 0xf7]),
        (both(), vec![0x60, 0x03, 0x03]),
        (both(), vec![0x86, 0x10]),
        (both(), vec![0xe3, 0x22]),
        (both(), vec![0xe0, 0x01]),
        (both(), vec![0x61, 0x04, 0xb0, 0x03, 0x20]),
        (main(), vec![0x01, 0x0f, 0x00, 0x28, 0x2c, 0x28, 0x38]),
        (main(), vec![0xb6, 0x07]),
        (main(), vec![0x06, 0xe8, 0x28]),
        (main(), vec![0xb7, 0x01]),
        (main(), vec![0x05, 0xe8, 0x28]),
        (main(), vec![0xb0, 0x01]),
        (main(), vec![0xb1, 0x02]),
    ];
    assert_eq!(frames, expected);
    // The power switch first, then the vendor's double reset.
    let pins = wire.pins();
    assert_eq!(pins[0], ("pwr".into(), true));
    let rst: Vec<bool> = pins
        .iter()
        .filter(|(n, _)| n == "rst")
        .map(|(_, h)| *h)
        .collect();
    assert_eq!(rst, vec![true, false, true, false, true]);

    for round in 0..2 {
        wire.clear();
        delay.reset();
        let frame = spectra_bands(1600, 1200);
        p.draw_image(&frame).unwrap();
        p.show().unwrap();
        let mut frames = wire.frames();
        if round == 1 {
            // Out of deep sleep: reset and the initialisation again first.
            assert_eq!(frames.drain(..expected.len()).collect::<Vec<_>>(), expected);
        }
        let packed = pack(&frame, (1200, 1600), 90, EpaperModel::Epd13in3e);
        assert_eq!(packed.len(), 1200 * 1600 / 2);
        let half = |skip: usize| -> Vec<u8> {
            let mut v = vec![0x10];
            for row in packed.chunks(600) {
                v.extend_from_slice(&row[skip..skip + 300]);
            }
            v
        };
        assert_eq!(frames.len(), 6, "round {round}");
        assert_eq!(
            frames[0],
            (main(), half(0)),
            "left halves to the main controller"
        );
        assert_eq!(
            frames[1],
            (vec!["cs-s".to_string()], half(300)),
            "right halves to the second"
        );
        assert_eq!(
            frames[2..],
            [
                (both(), vec![0x04]),
                (both(), vec![0x12, 0x00]),
                (both(), vec![0x02, 0x00]),
                (both(), vec![0x07, 0xa5]),
            ],
            "power on, refresh, power off, sleep: to both"
        );
        assert!(delay.total() >= MIN_REFRESH_WAIT, "{:?}", delay.total());
    }
}

#[test]
fn spectra6_13in3e_spec_options() {
    let c = config("epaper:13in3e?cs-m=5&cs-s=6&pwr=none");
    assert_eq!((c.cs, c.pwr), (Some((5, 6)), None));
    for (bad, says) in [
        ("epaper:13in3e?dc=25", "dc"),
        ("epaper:13in3e?cs-m=24", "busy and cs-m are both GPIO 24"),
        ("epaper:13in3e?cs-s=none", "cs-s cannot be none"),
        ("epaper:7in3e?cs-m=8", "cs-m"),
    ] {
        let e = DisplaySpec::parse_any(bad).unwrap_err().to_string();
        assert!(e.contains(says), "{bad}: {e}");
    }
}
