//! Display specs: `png:DIR`, `fb:/dev/fbN`, `memory`, `window`, `spi:...`, `epaper:...`, each
//! with `?key=value&...` options.
//!
//! Options for every display: `palette=acep7|mono` (dither to these colours), `saturation=0.5`
//! (see [`super::dither`]), `min-interval=30s` (the panel's shortest time between refreshes;
//! emerging pictures are not shown on such panels).
//! `png:DIR`: `size=WxH` (default 256x256), `keep=N|all` (numbered frames kept, default 1000;
//! 0 writes only `current.png`).
//! `fb:PATH`: `width`, `height`, `bpp` (16, 24, 32), `stride` (bytes per line), `order=bgr`,
//! `sysfs=DIR`; whatever is not given is read from sysfs.
//! `memory`: `size=WxH` (default 256x256).

use std::path::PathBuf;
use std::time::Duration;

use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;

use super::dither::{Palette, DEFAULT_SATURATION};
use super::fb::{FbGeometry, FbOverrides, Framebuffer};
use super::{parse_size, Display, MemoryDisplay, PngDisplay};
use crate::error::{Error, Result};
use crate::frame::when::parse_duration;

pub const DEFAULT_SIZE: (u32, u32) = (256, 256);
pub const DEFAULT_PNG_KEEP: u64 = 1000;

const KINDS: &str = "png:DIR, fb:/dev/fbN, memory, window, spi:..., epaper:...";

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
}

/// A parsed display spec: what to open, not yet opened.
#[derive(Debug, Clone, PartialEq)]
pub struct DisplaySpec {
    pub kind: Kind,
    pub palette: Option<Palette>,
    pub min_refresh: Duration,
    pub text: String,
}

fn invalid(spec: &str, msg: impl std::fmt::Display) -> Error {
    Error::Invalid(format!("display {spec:?}: {msg}"))
}

fn needs_feature(spec: &str, what: &str, feature: &str, through: &str) -> Error {
    invalid(
        spec,
        format!(
            "{what} need petal built with --features {feature} ({through}), which this build does not have"
        ),
    )
}

impl std::str::FromStr for DisplaySpec {
    type Err = Error;

    fn from_str(text: &str) -> Result<Self> {
        let text = text.trim();
        let (head, query) = match text.split_once('?') {
            Some((h, q)) => (h, Some(q)),
            None => (text, None),
        };
        let (kind, target) = match head.split_once(':') {
            Some((k, t)) => (k, Some(t)),
            None => (head, None),
        };
        let mut opts: Vec<(String, String)> = Vec::new();
        for pair in query.unwrap_or("").split('&').filter(|p| !p.is_empty()) {
            let (k, v) = pair
                .split_once('=')
                .ok_or_else(|| invalid(text, format!("option {pair:?} is not key=value")))?;
            if opts.iter().any(|(seen, _)| seen == k) {
                return Err(invalid(text, format!("option {k:?} is given twice")));
            }
            opts.push((k.to_string(), v.to_string()));
        }
        let mut take = |key: &str| -> Option<String> {
            let i = opts.iter().position(|(k, _)| k == key)?;
            Some(opts.remove(i).1)
        };
        let num = |key: &str, v: String| -> Result<u64> {
            v.parse::<u64>()
                .map_err(|_| invalid(text, format!("{key}={v:?} is not a whole number")))
        };
        let size_opt = |v: Option<String>| -> Result<(u32, u32)> {
            match v {
                None => Ok(DEFAULT_SIZE),
                Some(v) => parse_size(&v)
                    .ok_or_else(|| invalid(text, format!("size={v:?} is not WxH (like 800x480)"))),
            }
        };
        let path_of = |t: Option<&str>, what: &str| -> Result<PathBuf> {
            match t {
                Some(t) if !t.is_empty() => Ok(PathBuf::from(t)),
                _ => Err(invalid(
                    text,
                    format!(
                        "{what} needs a path: {kind}:{}",
                        if kind == "png" { "DIR" } else { "/dev/fb0" }
                    ),
                )),
            }
        };
        let kind_parsed = match kind {
            "png" => {
                let dir = path_of(target, "png")?;
                let size = size_opt(take("size"))?;
                let keep = match take("keep").as_deref() {
                    None => Some(DEFAULT_PNG_KEEP),
                    Some("all") => None,
                    Some(v) => Some(num("keep", v.to_string())?),
                };
                Kind::Png { dir, size, keep }
            }
            "fb" => {
                let path = path_of(target, "fb")?;
                let mut o = FbOverrides::default();
                if let Some(v) = take("size") {
                    let (w, h) = size_opt(Some(v))?;
                    o.width = Some(w);
                    o.height = Some(h);
                }
                for key in ["width", "height", "bpp"] {
                    if let Some(v) = take(key) {
                        let n = u32::try_from(num(key, v.clone())?)
                            .ok()
                            .filter(|n| *n > 0)
                            .ok_or_else(|| invalid(text, format!("{key}={v} is out of range")))?;
                        match key {
                            "width" => o.width = Some(n),
                            "height" => o.height = Some(n),
                            _ => o.bpp = Some(n),
                        }
                    }
                }
                if let Some(v) = take("stride") {
                    o.stride = Some(num("stride", v)? as usize);
                }
                match take("order").as_deref() {
                    None | Some("rgb") => {}
                    Some("bgr") => o.bgr = true,
                    Some(v) => {
                        return Err(invalid(text, format!("order={v:?} (expected rgb or bgr)")))
                    }
                }
                o.sysfs = take("sysfs").map(PathBuf::from);
                Kind::Fb { path, overrides: o }
            }
            "memory" => Kind::Memory {
                size: size_opt(take("size").or_else(|| target.map(str::to_string)))?,
            },
            "window" => {
                return Err(needs_feature(
                    text,
                    "window displays",
                    "window",
                    "embedded-graphics-simulator and SDL2",
                ))
            }
            "spi" => {
                return Err(needs_feature(
                    text,
                    "spi displays",
                    "spi",
                    "mipidsi and linux-embedded-hal",
                ))
            }
            "epaper" => {
                return Err(needs_feature(
                    text,
                    "epaper displays",
                    "epaper",
                    "epd-waveshare; to preview e-paper dithering use png:DIR?palette=acep7",
                ))
            }
            _ => {
                return Err(Error::Invalid(format!(
                    "unknown display {text:?} (expected one of {KINDS})"
                )))
            }
        };
        let saturation = match take("saturation") {
            None => DEFAULT_SATURATION,
            Some(v) => v
                .parse::<f32>()
                .ok()
                .filter(|s| (0.0..=1.0).contains(s))
                .ok_or_else(|| {
                    invalid(
                        text,
                        format!("saturation={v:?} must be a number within 0..1"),
                    )
                })?,
        };
        let palette = match take("palette").as_deref() {
            None | Some("none") | Some("full") => None,
            Some(name) => Some(Palette::by_name(name, saturation).map_err(|e| invalid(text, e))?),
        };
        let min_refresh = match take("min-interval").or_else(|| take("min_interval")) {
            None => Duration::ZERO,
            Some(v) => parse_duration(&v).map_err(|e| invalid(text, e))?,
        };
        if let Some((k, _)) = opts.first() {
            return Err(invalid(text, format!("unknown option {k:?}")));
        }
        Ok(DisplaySpec {
            kind: kind_parsed,
            palette,
            min_refresh,
            text: text.to_string(),
        })
    }
}

impl DisplaySpec {
    /// Opens the display (creates a png directory; reads a framebuffer's geometry).
    pub fn open(&self) -> Result<AnyDisplay> {
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
        };
        Ok(AnyDisplay {
            backend,
            palette: self.palette.clone(),
            min_refresh: self.min_refresh,
        })
    }
}

pub enum Backend {
    Png(PngDisplay),
    Fb(Framebuffer),
    Memory(MemoryDisplay),
}

/// Any display a spec can name, with the spec's common options.
pub struct AnyDisplay {
    pub backend: Backend,
    palette: Option<Palette>,
    min_refresh: Duration,
}

macro_rules! each {
    ($self:expr, $d:ident => $e:expr) => {
        match $self {
            Backend::Png($d) => $e,
            Backend::Fb($d) => $e,
            Backend::Memory($d) => $e,
        }
    };
}

impl OriginDimensions for AnyDisplay {
    fn size(&self) -> Size {
        each!(&self.backend, d => d.bounding_box().size)
    }
}

impl DrawTarget for AnyDisplay {
    type Color = Rgb888;
    type Error = Error;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<()>
    where
        I: IntoIterator<Item = Pixel<Rgb888>>,
    {
        each!(&mut self.backend, d => d.draw_iter(pixels))
    }

    fn fill_contiguous<I>(&mut self, area: &Rectangle, colors: I) -> Result<()>
    where
        I: IntoIterator<Item = Rgb888>,
    {
        each!(&mut self.backend, d => d.fill_contiguous(area, colors))
    }
}

impl Display for AnyDisplay {
    fn describe(&self) -> String {
        let mut s = each!(&self.backend, d => d.describe());
        if let Some(p) = &self.palette {
            s.push_str(&format!(
                ", {} palette (saturation {})",
                p.name, p.saturation
            ));
        }
        if !self.min_refresh.is_zero() {
            s.push_str(&format!(", refreshed at most every {:?}", self.min_refresh));
        }
        s
    }

    fn show(&mut self) -> Result<()> {
        each!(&mut self.backend, d => d.show())
    }

    fn min_refresh_interval(&self) -> Duration {
        self.min_refresh
            .max(each!(&self.backend, d => d.min_refresh_interval()))
    }

    fn palette(&self) -> Option<&Palette> {
        self.palette
            .as_ref()
            .or_else(|| each!(&self.backend, d => d.palette()))
    }
}
