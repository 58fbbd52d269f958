//! SPI TFT panels without hardware: the driver against a recording SPI device and pins (what
//! reaches the panel, byte for byte), and opening devices that are not there.

#![cfg(feature = "spi")]

mod hal_mock;

use hal_mock::{NoDelay, Wire};
use image::{Rgb, RgbImage};
use petal::display::spec::Kind;
use petal::display::spi::SpiConfig;
use petal::display::spi_panel::SpiPanel;
use petal::display::{Display, DisplaySpec};

const CASET: u8 = 0x2a;
const RASET: u8 = 0x2b;
const RAMWR: u8 = 0x2c;

fn config(spec: &str) -> SpiConfig {
    match DisplaySpec::parse_any(spec).unwrap().kind {
        Kind::Spi(c) => c,
        k => panic!("{k:?}"),
    }
}

fn panel(spec: &str, wire: &Wire) -> SpiPanel<hal_mock::Spi, hal_mock::Pin> {
    let c = config(spec);
    let rst = c.rst.map(|_| wire.pin("rst"));
    let bl = c.backlight.map(|_| wire.pin("bl"));
    SpiPanel::new(&c, wire.spi(), wire.pin("dc"), rst, bl, &mut NoDelay).unwrap()
}

/// RGB565, big-endian, computed here rather than by the code under test.
fn rgb565_be(p: &Rgb<u8>) -> [u8; 2] {
    let v = (u16::from(p[0] >> 3) << 11) | (u16::from(p[1] >> 2) << 5) | u16::from(p[2] >> 3);
    v.to_be_bytes()
}

/// The last frame written: its column and row windows and its pixel bytes.
fn last_frame(wire: &Wire) -> ([u8; 4], [u8; 4], Vec<u8>) {
    let cmds = wire.commands();
    let i = cmds
        .iter()
        .rposition(|(c, _)| *c == RAMWR)
        .expect("a memory write");
    let window = |cmd: u8| -> [u8; 4] {
        let (_, d) = cmds[..i]
            .iter()
            .rev()
            .find(|(c, _)| *c == cmd)
            .expect("an address window");
        d.as_slice().try_into().expect("4 bytes")
    };
    (window(CASET), window(RASET), cmds[i].1.clone())
}

#[test]
fn st7789_gets_every_pixel_as_rgb565() {
    let wire = Wire::default();
    let mut p = panel("spi:st7789?dc=25&rst=27&bl=18", &wire);
    assert_eq!(p.dimensions(), (240, 240));
    let cmds: Vec<u8> = wire.commands().iter().map(|(c, _)| *c).collect();
    // Reset by its pin, out of sleep, inverted (IPS), 16-bit pixels, on.
    assert_eq!(
        &wire.pins()[..2],
        &[("rst".into(), false), ("rst".into(), true)]
    );
    for c in [0x11, 0x21, 0x29] {
        assert!(cmds.contains(&c), "command {c:#04x} in {cmds:02x?}");
    }
    assert!(wire.commands().contains(&(0x3a, vec![0x55])), "RGB565");
    // Cleared to black before the backlight is lit, so the noise in its memory is never seen.
    let (_, _, black) = last_frame(&wire);
    assert!(black.len() == 240 * 240 * 2 && black.iter().all(|b| *b == 0));
    assert_eq!(wire.pins().last(), Some(&("bl".to_string(), true)));

    wire.clear();
    let img = RgbImage::from_fn(240, 240, |x, y| {
        Rgb([(x * 7 + y) as u8, (y * 3 + x * 11) as u8, (x ^ y) as u8])
    });
    p.draw_image(&img).unwrap();
    assert!(wire.sent().is_empty(), "nothing is sent before show");
    p.show().unwrap();
    let (cols, rows, data) = last_frame(&wire);
    assert_eq!(cols, [0, 0, 0, 239]);
    assert_eq!(rows, [0, 0, 0, 239]);
    let want: Vec<u8> = img.pixels().flat_map(rgb565_be).collect();
    assert_eq!(data.len(), want.len());
    assert!(
        data == want,
        "the pixels sent are the picture's, row by row"
    );
}

#[test]
fn ili9341_rotated_fill() {
    let wire = Wire::default();
    let mut p = panel("spi:ili9341?dc=25&rotate=90&invert=off", &wire);
    assert_eq!(p.dimensions(), (320, 240), "a quarter turn: landscape");
    let cmds: Vec<u8> = wire.commands().iter().map(|(c, _)| *c).collect();
    assert_eq!(cmds[0], 0x01, "no reset pin: reset by command");
    assert!(
        cmds.contains(&0x20) && !cmds.contains(&0x21),
        "not inverted"
    );
    wire.clear();
    let red = Rgb([255, 0, 0]);
    p.draw_image(&RgbImage::from_pixel(320, 240, red)).unwrap();
    p.show().unwrap();
    let (cols, rows, data) = last_frame(&wire);
    assert_eq!(cols, [0, 0, 0x01, 0x3f], "columns 0..=319");
    assert_eq!(rows, [0, 0, 0, 0xef], "rows 0..=239");
    assert_eq!(data.len(), 320 * 240 * 2);
    assert!(data.chunks(2).all(|px| px == [0xf8, 0x00]), "pure red");
}

#[test]
fn a_failing_bus_is_an_error_naming_the_panel() {
    let wire = Wire::default();
    let mut p = panel("spi:st7789?dc=25&dev=/dev/spidev1.0", &wire);
    wire.fail_spi();
    let e = p.show().unwrap_err().to_string();
    for part in ["ST7789", "/dev/spidev1.0", "cannot send a frame"] {
        assert!(e.contains(part), "{part:?} in {e}");
    }
}

fn open_err(spec: &str) -> petal::Error {
    match spec.parse::<DisplaySpec>().unwrap().open() {
        Ok(_) => panic!("{spec} opened"),
        Err(e) => e,
    }
}

#[test]
fn missing_devices_are_named() {
    let e = open_err("spi:st7789?dc=25&dev=/nonexistent/spidev9.9");
    assert!(
        matches!(e, petal::Error::Invalid(_)),
        "stops at start: {e:?}"
    );
    let e = e.to_string();
    for part in ["/nonexistent/spidev9.9 does not exist", "dtparam=spi=on"] {
        assert!(e.contains(part), "{part:?} in {e}");
    }
    let dir = tempfile::tempdir().unwrap();
    let fake = dir.path().join("spidev0.0");
    std::fs::write(&fake, b"").unwrap();
    let e = open_err(&format!(
        "spi:st7789?dc=25&dev={}&gpiochip=/nonexistent/gpiochip7",
        fake.display()
    ))
    .to_string();
    assert!(e.contains("/nonexistent/gpiochip7 does not exist"), "{e}");
    // A file that is not a GPIO chip.
    let e = open_err(&format!(
        "spi:st7789?dc=25&dev={}&gpiochip={}",
        fake.display(),
        fake.display()
    ))
    .to_string();
    assert!(e.contains("is not a GPIO chip"), "{e}");
}
