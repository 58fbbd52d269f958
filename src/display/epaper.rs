//! `epaper:MODEL?...` — which colour e-paper panel, and how it is wired (by default as the
//! Waveshare e-Paper HAT wires it, or for `inky-7in3e` as the Pimoroni Inky Impression does).
//! Parsed in every build; driving the panel needs the
//! `epaper` feature ([`super::epaper_panel`]).

use std::path::PathBuf;
use std::time::Duration;

use super::dither::Palette;
use super::options::{distinct_gpios, rotated, unknown_model, Options};
use super::spi::{DEFAULT_GPIOCHIP, DEFAULT_SPI_DEVICE};
use crate::error::Result;

#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum EpaperModel {
    /// Waveshare 7.3" e-Paper (F), 800x480, 7 colours.
    Epd7in3f,
    /// Waveshare 5.65" e-Paper (F), 600x448, 7 colours.
    Epd5in65f,
    /// Waveshare 7.3" e-Paper (E), 800x480, E Ink Spectra 6.
    Epd7in3e,
    /// Pimoroni Inky Impression 7.3" (2025), the same Spectra 6 panel on Pimoroni's HAT.
    Inky7in3e,
    /// Waveshare 13.3" e-Paper (E), 1200x1600, Spectra 6, two controllers on two chip selects.
    Epd13in3e,
}

impl EpaperModel {
    pub const NAMES: &'static str =
        "7in3f, 5in65f, 7in3e, 13in3e, inky-7in3e, or inky (read from the HAT)";

    fn parse(s: &str) -> Option<Self> {
        match s.to_ascii_lowercase().as_str() {
            "7in3f" | "7in3" | "7.3f" => Some(EpaperModel::Epd7in3f),
            "5in65f" | "5in65" | "5.65f" => Some(EpaperModel::Epd5in65f),
            "7in3e" | "7.3e" => Some(EpaperModel::Epd7in3e),
            "13in3e" | "13.3e" => Some(EpaperModel::Epd13in3e),
            "inky-7in3e" | "inky7in3e" | "inky-impression-7in3" => Some(EpaperModel::Inky7in3e),
            _ => None,
        }
    }

    pub fn name(self) -> &'static str {
        match self {
            EpaperModel::Epd7in3f => "Waveshare 7.3\" e-Paper (F)",
            EpaperModel::Epd5in65f => "Waveshare 5.65\" e-Paper (F)",
            EpaperModel::Epd7in3e => "Waveshare 7.3\" e-Paper (E), Spectra 6",
            EpaperModel::Inky7in3e => "Inky Impression 7.3\" (2025), Spectra 6",
            EpaperModel::Epd13in3e => "Waveshare 13.3\" e-Paper (E), Spectra 6",
        }
    }

    /// Native width and height, as the controller's rows run (the 13.3" is portrait).
    pub fn size(self) -> (u32, u32) {
        match self {
            EpaperModel::Epd7in3f | EpaperModel::Epd7in3e | EpaperModel::Inky7in3e => (800, 480),
            EpaperModel::Epd5in65f => (600, 448),
            EpaperModel::Epd13in3e => (1200, 1600),
        }
    }

    /// E Ink Spectra 6 (6 colours) rather than ACeP (7).
    pub fn is_spectra6(self) -> bool {
        matches!(
            self,
            EpaperModel::Epd7in3e | EpaperModel::Inky7in3e | EpaperModel::Epd13in3e
        )
    }

    /// Two controllers, each on its own chip select, and no DC line.
    pub fn is_dual(self) -> bool {
        self == EpaperModel::Epd13in3e
    }

    /// The colours the panel shows, for dithering.
    pub fn palette(self, saturation: f32) -> Result<Palette> {
        if self.is_spectra6() {
            Palette::spectra6(saturation)
        } else {
            Palette::acep7(saturation)
        }
    }

    /// Default (dc, rst, busy) GPIOs: the HAT this panel comes on.
    fn default_pins(self) -> (u32, u32, u32) {
        match self {
            EpaperModel::Inky7in3e => (22, 27, 17),
            _ => (25, 17, 24),
        }
    }

    /// Waveshare asks for at least 180 s between refreshes of these panels (Spectra 6 too).
    pub fn min_refresh(self) -> Duration {
        Duration::from_secs(180)
    }
}

/// The I2C bus of the Pi's header (pins 3 and 5), where HATs' EEPROMs answer.
pub const DEFAULT_I2C: &str = "/dev/i2c-1";

/// An e-paper panel as a spec describes it.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct EpaperConfig {
    pub model: EpaperModel,
    pub device: PathBuf,
    pub gpiochip: PathBuf,
    /// The data/command line (not used by the 13.3", whose protocol has none).
    pub dc: u32,
    pub rst: u32,
    pub busy: u32,
    /// The power switch of newer HATs (GPIO 18), driven high while petal runs.
    pub pwr: Option<u32>,
    /// The 13.3": chip selects of its main and second controller, driven by petal.
    pub cs: Option<(u32, u32)>,
    /// Clockwise, in degrees: 90 and 270 make the panel portrait.
    pub rotate: u16,
    pub hz: u32,
    /// `epaper:inky`: the panel is whatever the Inky HAT's EEPROM on this I2C bus says
    /// (`model` is a stand-in until the panel is opened).
    pub detect_on: Option<PathBuf>,
}

impl EpaperConfig {
    /// Width and height of what is drawn, after rotation.
    pub fn dimensions(&self) -> (u32, u32) {
        rotated(self.model.size(), self.rotate)
    }

    pub(crate) fn parse(target: Option<&str>, opts: &mut Options) -> Result<Self> {
        let name = target.unwrap_or("");
        let detect = name.eq_ignore_ascii_case("inky");
        let detect_on = if detect {
            Some(opts.path("i2c", DEFAULT_I2C)?)
        } else {
            None
        };
        let parsed = if detect {
            Some(EpaperModel::Inky7in3e)
        } else {
            EpaperModel::parse(name)
        };
        let model = parsed.ok_or_else(|| {
            unknown_model(
                opts,
                "epaper",
                "e-paper",
                name,
                EpaperModel::NAMES,
                "epaper:7in3f",
            )
        })?;
        let device = opts.path("dev", DEFAULT_SPI_DEVICE)?;
        let gpiochip = opts.path("gpiochip", DEFAULT_GPIOCHIP)?;
        let need = |o: &mut Options, key: &str, default: u32| -> Result<u32> {
            o.gpio(key, Some(default))?
                .ok_or_else(|| o.err(format!("{key} cannot be none: the panel needs it")))
        };
        let (dc, rst, busy) = model.default_pins();
        // The 13.3" has no DC line (a `dc=` is then left over, and refused as unknown) but
        // two chip selects; its HAT+ needs its power switch on.
        let (dc, cs, pwr) = if model.is_dual() {
            let m = need(opts, "cs-m", 8)?;
            let s = need(opts, "cs-s", 7)?;
            (dc, Some((m, s)), opts.gpio("pwr", Some(18))?)
        } else {
            (need(opts, "dc", dc)?, None, opts.gpio("pwr", None)?)
        };
        let rst = need(opts, "rst", rst)?;
        let busy = need(opts, "busy", busy)?;
        distinct_gpios(
            opts,
            &[
                ("dc", Some(dc).filter(|_| !model.is_dual())),
                ("rst", Some(rst)),
                ("busy", Some(busy)),
                ("pwr", pwr),
                ("cs-m", cs.map(|c| c.0)),
                ("cs-s", cs.map(|c| c.1)),
            ],
        )?;
        let rotate = opts.rotation()?;
        let hz = opts.ranged("mhz", 1, 20, 4)? as u32 * 1_000_000;
        Ok(EpaperConfig {
            model,
            device,
            gpiochip,
            dc,
            rst,
            busy,
            pwr,
            cs,
            rotate,
            hz,
            detect_on,
        })
    }
}
