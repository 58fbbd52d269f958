//! Error-diffusion (Floyd–Steinberg) dithering to a panel's few colours, for e-paper.
//!
//! A 7-colour (ACeP) panel is sent pure colours (black, white, green, ...) but shows muted
//! ones. The `saturation` setting, as on other e-paper frames, says which the ditherer should
//! believe: 0 assumes the pure colours, 1 the measured, muted ones (the ditherer then pushes
//! harder towards colour, so pictures come out more saturated). The result always holds only
//! the colours the panel is sent.

use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::RgbColor;
use image::{Rgb, RgbImage};

use crate::error::{Error, Result};

/// A panel's colours: what it is sent (`nominal`) and what it shows (`measured`).
#[derive(Debug, Clone, PartialEq)]
pub struct Palette {
    pub name: String,
    pub nominal: Vec<Rgb888>,
    pub measured: Vec<Rgb888>,
    /// 0..=1, see the module documentation.
    pub saturation: f32,
}

const fn c(r: u8, g: u8, b: u8) -> Rgb888 {
    Rgb888::new(r, g, b)
}

/// The 7 colours of ACeP e-paper (Waveshare 5.65" F and 7.3" F), in the panels' index order.
pub const ACEP7_NOMINAL: [Rgb888; 7] = [
    c(0, 0, 0),
    c(255, 255, 255),
    c(0, 255, 0),
    c(0, 0, 255),
    c(255, 0, 0),
    c(255, 255, 0),
    c(255, 128, 0),
];

/// The same colours as such panels show them (measured values commonly used for dithering).
pub const ACEP7_MEASURED: [Rgb888; 7] = [
    c(57, 48, 57),
    c(255, 255, 255),
    c(58, 91, 70),
    c(61, 59, 94),
    c(156, 72, 75),
    c(208, 190, 71),
    c(177, 106, 73),
];

/// The 6 colours of E Ink Spectra 6 panels (Waveshare 7.3" E, Inky Impression 7.3" 2025), in
/// the order of [`SPECTRA6_CODES`].
pub const SPECTRA6_NOMINAL: [Rgb888; 6] = [
    c(0, 0, 0),
    c(255, 255, 255),
    c(255, 255, 0),
    c(255, 0, 0),
    c(0, 0, 255),
    c(0, 255, 0),
];

/// What the panel shows of each: FrameOS's photographed Spectra 6 values (not measured here;
/// no panel was at hand). The white is a light grey and the red a dark crimson, so with
/// `saturation` near 1 the ditherer spends more white and pushes reds harder.
pub const SPECTRA6_MEASURED: [Rgb888; 6] = [
    c(25, 20, 38),
    c(178, 193, 192),
    c(199, 187, 0),
    c(107, 17, 25),
    c(24, 83, 154),
    c(42, 85, 49),
];

/// The panel's 4-bit code for each colour of [`SPECTRA6_NOMINAL`]: the controller has no
/// colour 4 (the orange of the 7-colour panels).
pub const SPECTRA6_CODES: [u8; 6] = [0, 1, 2, 3, 5, 6];

pub const DEFAULT_SATURATION: f32 = 0.5;

impl Palette {
    fn panel(name: &str, nominal: &[Rgb888], measured: &[Rgb888], saturation: f32) -> Result<Self> {
        check_saturation(saturation)?;
        Ok(Palette {
            name: name.into(),
            nominal: nominal.to_vec(),
            measured: measured.to_vec(),
            saturation,
        })
    }

    pub fn acep7(saturation: f32) -> Result<Self> {
        Palette::panel("acep7", &ACEP7_NOMINAL, &ACEP7_MEASURED, saturation)
    }

    pub fn spectra6(saturation: f32) -> Result<Self> {
        Palette::panel(
            "spectra6",
            &SPECTRA6_NOMINAL,
            &SPECTRA6_MEASURED,
            saturation,
        )
    }

    /// Black and white only.
    pub fn mono() -> Self {
        Palette {
            name: "mono".into(),
            nominal: vec![c(0, 0, 0), c(255, 255, 255)],
            measured: vec![c(0, 0, 0), c(255, 255, 255)],
            saturation: 0.0,
        }
    }

    /// `acep7`, `spectra6` or `mono`.
    pub fn by_name(name: &str, saturation: f32) -> Result<Self> {
        match name {
            "acep7" | "acep" => Palette::acep7(saturation),
            "spectra6" | "e6" => Palette::spectra6(saturation),
            "mono" | "bw" => Ok(Palette::mono()),
            _ => Err(Error::Invalid(format!(
                "unknown palette {name:?} (expected acep7, spectra6 or mono)"
            ))),
        }
    }

    /// The colours the ditherer believes the panel shows.
    pub fn effective(&self) -> Vec<[f32; 3]> {
        let s = self.saturation;
        self.nominal
            .iter()
            .zip(&self.measured)
            .map(|(n, m)| {
                let mix = |a: u8, b: u8| f32::from(a) * (1.0 - s) + f32::from(b) * s;
                [mix(n.r(), m.r()), mix(n.g(), m.g()), mix(n.b(), m.b())]
            })
            .collect()
    }
}

pub fn check_saturation(s: f32) -> Result<()> {
    if !(0.0..=1.0).contains(&s) {
        return Err(Error::Invalid(format!(
            "saturation {s} must be within 0..1"
        )));
    }
    Ok(())
}

fn nearest(colours: &[[f32; 3]], v: [f32; 3]) -> usize {
    let mut best = (0, f32::INFINITY);
    for (i, p) in colours.iter().enumerate() {
        let d = (p[0] - v[0]).powi(2) + (p[1] - v[1]).powi(2) + (p[2] - v[2]).powi(2);
        if d < best.1 {
            best = (i, d);
        }
    }
    best.0
}

/// Floyd–Steinberg dithering of `img` to the palette: the index of each pixel's colour.
pub fn dither_indices(img: &RgbImage, palette: &Palette) -> Vec<u8> {
    let (w, h) = (img.width() as usize, img.height() as usize);
    let colours = palette.effective();
    // Two lines of accumulated error: this one and the next.
    let mut cur = vec![[0f32; 3]; w + 2];
    let mut next = vec![[0f32; 3]; w + 2];
    let mut out = vec![0u8; w * h];
    for y in 0..h {
        for x in 0..w {
            let p = img.get_pixel(x as u32, y as u32);
            let e = cur[x + 1];
            // Clamping the wanted colour keeps error from piling up where the palette
            // cannot follow (large areas of an out-of-gamut colour).
            let v = [0, 1, 2].map(|k| (f32::from(p[k]) + e[k]).clamp(-64.0, 319.0));
            let i = nearest(&colours, v);
            out[y * w + x] = i as u8;
            let q = colours[i];
            let err = [v[0] - q[0], v[1] - q[1], v[2] - q[2]];
            for k in 0..3 {
                cur[x + 2][k] += err[k] * 7.0 / 16.0;
                next[x][k] += err[k] * 3.0 / 16.0;
                next[x + 1][k] += err[k] * 5.0 / 16.0;
                next[x + 2][k] += err[k] * 1.0 / 16.0;
            }
        }
        std::mem::swap(&mut cur, &mut next);
        next.iter_mut().for_each(|e| *e = [0.0; 3]);
    }
    out
}

/// Dithers `img` to the palette and returns it in the colours the panel is sent.
pub fn dither(img: &RgbImage, palette: &Palette) -> RgbImage {
    let idx = dither_indices(img, palette);
    let w = img.width() as usize;
    RgbImage::from_fn(img.width(), img.height(), |x, y| {
        let c = palette.nominal[idx[y as usize * w + x as usize] as usize];
        Rgb([c.r(), c.g(), c.b()])
    })
}
