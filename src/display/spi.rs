//! `spi:MODEL?dc=N&...` — what a small SPI TFT panel (ST7789, ILI9341) is and how it is wired.
//! Parsed in every build, so a typo is reported the same everywhere; driving the panel needs
//! the `spi` feature ([`super::spi_panel`]).

use std::path::PathBuf;

use super::options::{distinct_gpios, rotated, unknown_model, Options};
use crate::error::Result;

pub const DEFAULT_SPI_DEVICE: &str = "/dev/spidev0.0";
pub const DEFAULT_GPIOCHIP: &str = "/dev/gpiochip0";

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum SpiModel {
    St7789,
    Ili9341,
}

impl SpiModel {
    pub const NAMES: &'static str = "st7789, ili9341";

    fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "st7789" => Some(SpiModel::St7789),
            "ili9341" => Some(SpiModel::Ili9341),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            SpiModel::St7789 => "ST7789",
            SpiModel::Ili9341 => "ILI9341",
        }
    }

    /// The controller's memory, portrait: no panel can be larger.
    pub fn memory(self) -> (u32, u32) {
        (240, 320)
    }

    /// The usual panel: 1.3"/1.54" 240x240 IPS for the ST7789, 2.2"-2.8" 240x320 for the ILI9341.
    fn default_size(self) -> (u32, u32) {
        match self {
            SpiModel::St7789 => (240, 240),
            SpiModel::Ili9341 => (240, 320),
        }
    }

    /// ST7789 IPS panels show a negative unless inverted; ILI9341 panels do not.
    fn default_invert(self) -> bool {
        self == SpiModel::St7789
    }

    /// ILI9341 modules are wired BGR.
    fn default_bgr(self) -> bool {
        self == SpiModel::Ili9341
    }
}

/// An SPI panel as a spec describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct SpiConfig {
    pub model: SpiModel,
    pub device: PathBuf,
    pub gpiochip: PathBuf,
    pub dc: u32,
    pub rst: Option<u32>,
    pub backlight: Option<u32>,
    /// The panel's size in its own (portrait) orientation.
    pub size: (u32, u32),
    /// Where the panel starts in the controller's memory, portrait (240x280 panels: 0,20);
    /// mipidsi moves it along when the panel is rotated.
    pub offset: (u32, u32),
    /// Clockwise, in degrees.
    pub rotate: u16,
    pub invert: bool,
    pub bgr: bool,
    pub hz: u32,
}

impl SpiConfig {
    /// Width and height of what is drawn, after rotation.
    pub fn dimensions(&self) -> (u32, u32) {
        rotated(self.size, self.rotate)
    }

    pub(crate) fn parse(target: Option<&str>, opts: &mut Options) -> Result<Self> {
        let name = target.unwrap_or("");
        let model = SpiModel::parse(name).ok_or_else(|| {
            let example = "spi:st7789?dc=25&rst=27&bl=18";
            unknown_model(opts, "spi", "panel", name, SpiModel::NAMES, example)
        })?;
        let device = opts.path("dev", DEFAULT_SPI_DEVICE)?;
        let gpiochip = opts.path("gpiochip", DEFAULT_GPIOCHIP)?;
        let dc = opts.gpio("dc", None)?.ok_or_else(|| {
            opts.err(format!(
                "the {} needs its data/command GPIO: dc=N (the BCM number, like dc=25)",
                model.name()
            ))
        })?;
        let rst = opts.gpio("rst", None)?;
        let backlight = opts.gpio("bl", None)?;
        distinct_gpios(opts, &[("dc", Some(dc)), ("rst", rst), ("bl", backlight)])?;
        let size = {
            let v = opts.take("size");
            opts.size("size", v, model.default_size())?
        };
        let offset = match opts.take("offset") {
            None => (0, 0),
            Some(v) => v
                .split_once(',')
                .and_then(|(x, y)| Some((x.trim().parse().ok()?, y.trim().parse().ok()?)))
                .ok_or_else(|| opts.err(format!("offset={v:?} is not X,Y (like 0,80)")))?,
        };
        let mem = model.memory();
        if size.0 + offset.0 > mem.0 || size.1 + offset.1 > mem.1 {
            return Err(opts.err(format!(
                "size {}x{} at offset {},{} does not fit the {}'s {}x{} memory (size and offset are portrait, before rotate)",
                size.0, size.1, offset.0, offset.1, model.name(), mem.0, mem.1
            )));
        }
        let rotate = opts.rotation()?;
        let invert = opts.flag("invert", model.default_invert())?;
        let bgr = match opts.take("order").as_deref() {
            None => model.default_bgr(),
            Some("rgb") => false,
            Some("bgr") => true,
            Some(v) => return Err(opts.err(format!("order={v:?} (expected rgb or bgr)"))),
        };
        let hz = opts.ranged("mhz", 1, 125, 32)? as u32 * 1_000_000;
        Ok(SpiConfig {
            model,
            device,
            gpiochip,
            dc,
            rst,
            backlight,
            size,
            offset,
            rotate,
            invert,
            bgr,
            hz,
        })
    }
}
