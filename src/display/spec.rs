//! Display specs: `png:DIR`, `fb:/dev/fbN`, `memory`, `window`, `spi:MODEL`, `epaper:MODEL`,
//! each with `?key=value&...` options.
//!
//! Options for every display: `rotate=0|90|180|270` (the screen turned clockwise),
//! `palette=acep7|spectra6|mono` (dither to these colours), `saturation=0.5`
//! (see [`super::dither`]), `min-interval=30s` (the panel's shortest time between refreshes;
//! emerging and morph pictures are not shown on such panels).
//! `png:DIR`: `size=WxH` (default 256x256), `keep=N|all` (numbered frames kept, default 1000;
//! 0 writes only `current.png`).
//! `fb:PATH`: `width`, `height`, `bpp` (16, 24, 32), `stride` (bytes per line), `order=bgr`,
//! `sysfs=DIR`; whatever is not given is read from sysfs.
//! `memory`: `size=WxH` (default 256x256).
//! `window` / `window:WxH`: `size=WxH` (default 512x512), `scale=N` (each pixel N×N on screen).
//! `spi:MODEL` and `epaper:MODEL`: see [`super::spi`] and [`super::epaper`].
//!
//! Specs of displays this build cannot drive (a cargo feature left out) are still parsed in
//! full, so a mistake in one is reported as such, and then refused, naming the feature.

use std::path::PathBuf;
use std::time::Duration;

use super::dither::{Palette, DEFAULT_SATURATION};
use super::epaper::EpaperConfig;
use super::fb::{FbGeometry, FbOverrides, Framebuffer};
use super::options::{invalid, Options};
use super::spi::SpiConfig;
use super::{AnyDisplay, Backend, MemoryDisplay, PngDisplay};
use crate::error::{Error, Result};
use crate::limits::{MAX_FRAMEBUFFER_BYTES, MAX_SIDE};
use crate::units::parse_duration;

pub const DEFAULT_SIZE: (u32, u32) = (256, 256);
pub const DEFAULT_PNG_KEEP: u64 = 1000;
/// 16 times the 32 px model: whole pixel blocks.
pub const DEFAULT_WINDOW_SIZE: (u32, u32) = (512, 512);

const KINDS: &str = "png:DIR, fb:/dev/fbN, memory, window, spi:MODEL, epaper:MODEL";

#[derive(Debug, Clone, PartialEq)]
pub enum Kind {
    Png {
        dir: PathBuf,
        size: (u32, u32),
        keep: Option<u64>,
    },
    Fb {
        path: PathBuf,
        overrides: FbOverrides,
    },
    Memory {
        size: (u32, u32),
    },
    Window {
        size: (u32, u32),
        scale: u32,
    },
    Spi(SpiConfig),
    Epaper(EpaperConfig),
}

/// A parsed display spec: what to open, not yet opened.
#[derive(Debug, Clone, PartialEq)]
pub struct DisplaySpec {
    pub kind: Kind,
    pub palette: Option<Palette>,
    pub min_refresh: Duration,
    /// `rotate=` of displays that have no driver option for it (png, fb, memory, window).
    pub rotate: u16,
    pub text: String,
}

fn needs_feature(spec: &str, what: &str, feature: &str, through: &str) -> Error {
    invalid(
        spec,
        format!(
            "{what} need petal built with --features {feature} ({through}), which this build does not have"
        ),
    )
}

/// The error for a kind this build cannot open, if it cannot.
fn unbuilt(kind: &Kind, text: &str) -> Option<Error> {
    match kind {
        Kind::Window { .. } if cfg!(not(feature = "window")) => Some(needs_feature(
            text,
            "window displays",
            "window",
            "embedded-graphics-simulator and SDL2",
        )),
        Kind::Spi(_) if cfg!(not(feature = "spi")) => Some(needs_feature(
            text,
            "spi displays",
            "spi",
            "mipidsi and linux-embedded-hal",
        )),
        Kind::Epaper(_) if cfg!(not(feature = "epaper")) => Some(needs_feature(
            text,
            "epaper displays",
            "epaper",
            "epd-waveshare; to preview e-paper dithering use png:DIR?palette=acep7",
        )),
        _ => None,
    }
}

fn parse_fb(target: Option<&str>, o: &mut Options) -> Result<Kind> {
    let path = match target {
        Some(t) if !t.is_empty() => PathBuf::from(t),
        _ => return Err(o.err("fb needs a path: fb:/dev/fb0")),
    };
    let mut ov = FbOverrides::default();
    if let Some(v) = o.take("size") {
        let (w, h) = o.size("size", Some(v), DEFAULT_SIZE)?;
        ov.width = Some(w);
        ov.height = Some(h);
    }
    for key in ["width", "height", "bpp"] {
        if let Some(v) = o.take(key) {
            let most = if key == "bpp" { 32 } else { MAX_SIDE };
            let n = u32::try_from(o.num(key, &v)?)
                .ok()
                .filter(|n| (1..=most).contains(n))
                .ok_or_else(|| o.err(format!("{key}={v} is out of range (1..={most})")))?;
            match key {
                "width" => ov.width = Some(n),
                "height" => ov.height = Some(n),
                _ => ov.bpp = Some(n),
            }
        }
    }
    if let Some(v) = o.take("stride") {
        let stride = usize::try_from(o.num("stride", &v)?)
            .ok()
            .filter(|&s| s as u64 <= MAX_FRAMEBUFFER_BYTES / u64::from(MAX_SIDE))
            .ok_or_else(|| o.err(format!("stride={v} bytes is longer than any screen's line")))?;
        ov.stride = Some(stride);
    }
    match o.take("order").as_deref() {
        None | Some("rgb") => {}
        Some("bgr") => ov.bgr = true,
        Some(v) => return Err(o.err(format!("order={v:?} (expected rgb or bgr)"))),
    }
    ov.sysfs = o.take("sysfs").map(PathBuf::from);
    Ok(Kind::Fb {
        path,
        overrides: ov,
    })
}

impl std::str::FromStr for DisplaySpec {
    type Err = Error;

    /// Parses a spec and refuses displays this build cannot open.
    fn from_str(text: &str) -> Result<Self> {
        let spec = DisplaySpec::parse_any(text)?;
        match unbuilt(&spec.kind, &spec.text) {
            Some(e) => Err(e),
            None => Ok(spec),
        }
    }
}

impl DisplaySpec {
    /// Parses a spec of any display petal knows, also one this build cannot open.
    pub fn parse_any(text: &str) -> Result<Self> {
        let text = text.trim();
        let (head, query) = match text.split_once('?') {
            Some((h, q)) => (h, Some(q)),
            None => (text, None),
        };
        let (kind, target) = match head.split_once(':') {
            Some((k, t)) => (k, Some(t)),
            None => (head, None),
        };
        let mut o = Options::parse(text, query)?;
        // `memory:WxH` and `window:WxH` name their size where others name a path.
        let sized = |o: &mut Options, default| {
            let v = o.take("size").or_else(|| target.map(str::to_string));
            o.size("size", v, default)
        };
        let kind_parsed = match kind {
            "png" => {
                let dir = match target {
                    Some(t) if !t.is_empty() => PathBuf::from(t),
                    _ => return Err(o.err("png needs a path: png:DIR")),
                };
                let v = o.take("size");
                let size = o.size("size", v, DEFAULT_SIZE)?;
                let keep = match o.take("keep").as_deref() {
                    None => Some(DEFAULT_PNG_KEEP),
                    Some("all") => None,
                    Some(v) => Some(o.num("keep", v)?),
                };
                Kind::Png { dir, size, keep }
            }
            "fb" => parse_fb(target, &mut o)?,
            "memory" => Kind::Memory {
                size: sized(&mut o, DEFAULT_SIZE)?,
            },
            "window" => Kind::Window {
                size: sized(&mut o, DEFAULT_WINDOW_SIZE)?,
                scale: o.ranged("scale", 1, 16, 1)? as u32,
            },
            "spi" => Kind::Spi(SpiConfig::parse(target, &mut o)?),
            "epaper" => Kind::Epaper(EpaperConfig::parse(target, &mut o)?),
            _ => {
                return Err(Error::Invalid(format!(
                    "unknown display {text:?} (expected one of {KINDS})"
                )))
            }
        };
        // Panels turn the picture in their drivers and have taken `rotate` already.
        let rotate = o.rotation()?;
        let saturation = match o.take("saturation") {
            None => DEFAULT_SATURATION,
            Some(v) => v
                .parse::<f32>()
                .ok()
                .filter(|s| (0.0..=1.0).contains(s))
                .ok_or_else(|| o.err(format!("saturation={v:?} must be a number within 0..1")))?,
        };
        let palette = match o.take("palette").as_deref() {
            None => match &kind_parsed {
                Kind::Epaper(c) => Some(c.model.palette(saturation)?),
                _ => None,
            },
            Some("none") | Some("full") => None,
            Some(name) => Some(Palette::by_name(name, saturation).map_err(|e| o.err(e))?),
        };
        let min_refresh = match o.take("min-interval").or_else(|| o.take("min_interval")) {
            None => Duration::ZERO,
            Some(v) => parse_duration(&v).map_err(|e| o.err(e))?,
        };
        if let Some(k) = o.leftover() {
            return Err(o.err(format!("unknown option {k:?}")));
        }
        Ok(DisplaySpec {
            kind: kind_parsed,
            palette,
            min_refresh,
            rotate,
            text: text.to_string(),
        })
    }

    /// Opens the display (creates a png directory; reads a framebuffer's geometry; opens a
    /// window or a panel's SPI device and GPIO lines).
    pub fn open(&self) -> Result<AnyDisplay> {
        if let Some(e) = unbuilt(&self.kind, &self.text) {
            return Err(e);
        }
        let backend = match &self.kind {
            Kind::Png { dir, size, keep } => {
                std::fs::create_dir_all(dir).map_err(|e| Error::io(dir, e))?;
                Backend::Png(PngDisplay::open(dir, size.0, size.1, *keep)?)
            }
            Kind::Fb { path, overrides } => {
                let geometry = FbGeometry::resolve(path, overrides)?;
                Backend::Fb(Framebuffer::open(path, geometry)?)
            }
            Kind::Memory { size } => {
                Backend::Memory(MemoryDisplay::new(size.0, size.1).keep_last(8))
            }
            #[cfg(feature = "window")]
            Kind::Window { size, scale } => {
                Backend::Window(super::window::WindowDisplay::open(*size, *scale)?)
            }
            #[cfg(feature = "spi")]
            Kind::Spi(config) => Backend::Spi(Box::new(super::linux_io::open_spi(config)?)),
            #[cfg(feature = "epaper")]
            Kind::Epaper(config) => {
                Backend::Epaper(Box::new(super::linux_io::open_epaper(config)?))
            }
            // Refused by `unbuilt` above.
            #[allow(unreachable_patterns)]
            _ => return Err(invalid(&self.text, "not in this build")),
        };
        Ok(AnyDisplay::new(backend, self.palette.clone(), self.min_refresh).rotated(self.rotate))
    }
}
