//! Fitting a small picture to a screen: `fit` (whole picture, letterboxed with a background
//! colour) or `fill` (screen covered, picture cropped), `nearest` (crisp pixel art: each model
//! pixel becomes a square block of the same size, so the scale is a whole number) or `smooth`
//! (Catmull-Rom, to exactly the largest size that fits or the smallest that fills).

use image::imageops::FilterType;
use image::{Rgb, RgbImage};

use crate::error::{Error, Result};

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Fit {
    /// The whole picture, centred, with bars of the background colour.
    Fit,
    /// The whole screen, centred, the picture's overhang cropped.
    Fill,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Smoothing {
    /// Whole-number pixel blocks: crisp pixel art.
    Nearest,
    /// Interpolated.
    Smooth,
}

impl std::str::FromStr for Fit {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "fit" | "letterbox" => Ok(Fit::Fit),
            "fill" | "crop" => Ok(Fit::Fill),
            _ => Err(Error::Invalid(format!(
                "unknown fit {s:?} (expected fit or fill)"
            ))),
        }
    }
}

impl std::str::FromStr for Smoothing {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "nearest" | "pixel" => Ok(Smoothing::Nearest),
            "smooth" | "lanczos" | "bicubic" => Ok(Smoothing::Smooth),
            _ => Err(Error::Invalid(format!(
                "unknown scaling filter {s:?} (expected nearest or smooth)"
            ))),
        }
    }
}

/// How a picture is put on a screen.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct Layout {
    pub fit: Fit,
    pub smoothing: Smoothing,
    pub background: [u8; 3],
}

impl Default for Layout {
    fn default() -> Self {
        Layout {
            fit: Fit::Fit,
            smoothing: Smoothing::Nearest,
            background: [0, 0, 0],
        }
    }
}

/// Parses `#rrggbb`, `rrggbb` or a few colour names.
pub fn parse_colour(s: &str) -> Result<[u8; 3]> {
    let named = match s.to_ascii_lowercase().as_str() {
        "black" => Some([0, 0, 0]),
        "white" => Some([255, 255, 255]),
        "grey" | "gray" => Some([128, 128, 128]),
        _ => None,
    };
    if let Some(c) = named {
        return Ok(c);
    }
    let hex = s.strip_prefix('#').unwrap_or(s);
    let bad = || {
        Error::Invalid(format!(
            "colour {s:?} is not #rrggbb (or black, white, grey)"
        ))
    };
    if hex.len() != 6 || !hex.is_ascii() {
        return Err(bad());
    }
    let byte = |i: usize| u8::from_str_radix(&hex[i..i + 2], 16).map_err(|_| bad());
    Ok([byte(0)?, byte(2)?, byte(4)?])
}

/// The size the picture is scaled to, before centring and cropping.
pub fn scaled_size(src: (u32, u32), screen: (u32, u32), layout: &Layout) -> (u32, u32) {
    let (sw, sh) = (src.0.max(1) as f64, src.1.max(1) as f64);
    let (w, h) = (screen.0 as f64, screen.1 as f64);
    let s = match layout.fit {
        Fit::Fit => (w / sw).min(h / sh),
        Fit::Fill => (w / sw).max(h / sh),
    };
    let s = match (layout.smoothing, layout.fit) {
        // Whole-number blocks when the picture is enlarged; below 1x there is no crisp choice.
        (Smoothing::Nearest, Fit::Fit) if s >= 1.0 => s.floor(),
        (Smoothing::Nearest, Fit::Fill) if s >= 1.0 => s.ceil(),
        _ => s,
    };
    let size = |v: f64| (v * s).round().max(1.0) as u32;
    (size(sw), size(sh))
}

/// `src` scaled and placed on a `width` x `height` screen.
pub fn place(src: &RgbImage, width: u32, height: u32, layout: &Layout) -> RgbImage {
    let (tw, th) = scaled_size(src.dimensions(), (width, height), layout);
    let scaled;
    let scaled_ref = if (tw, th) == src.dimensions() {
        src
    } else {
        let filter = match layout.smoothing {
            Smoothing::Nearest => FilterType::Nearest,
            Smoothing::Smooth => FilterType::CatmullRom,
        };
        scaled = image::imageops::resize(src, tw, th, filter);
        &scaled
    };
    let mut out = RgbImage::from_pixel(width, height, Rgb(layout.background));
    // Centred; negative offsets crop.
    let dx = (i64::from(width) - i64::from(tw)) / 2;
    let dy = (i64::from(height) - i64::from(th)) / 2;
    image::imageops::replace(&mut out, scaled_ref, dx, dy);
    out
}
