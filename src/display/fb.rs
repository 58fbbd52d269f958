//! `fb:/dev/fbN` — the Linux framebuffer (HDMI and DSI screens without a desktop).
//!
//! The geometry comes from sysfs (`/sys/class/graphics/fbN/{virtual_size,bits_per_pixel,
//! stride}`, and `modes` for the visible size), so no ioctl (and no `unsafe`) is needed; each
//! value can be given in the spec instead (`fb:/path?width=800&height=480&bpp=16&stride=1664`),
//! which also lets a plain file stand in for the device. Frames are converted into an
//! off-screen buffer in the device's pixel format and written with one positioned write, so a
//! frame is never seen half drawn or cleared.

use std::fs::{File, OpenOptions};
use std::os::unix::fs::FileExt;
use std::path::{Path, PathBuf};

use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;

use super::Display;
use crate::error::{Error, Result};

/// Pixel layouts petal writes.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum FbFormat {
    /// 16 bpp, little-endian `rrrrrggggggbbbbb`.
    Rgb565,
    /// 16 bpp with red and blue swapped.
    Bgr565,
    /// 24 bpp, bytes B, G, R.
    Rgb888,
    /// 32 bpp, little-endian 0xXXRRGGBB: bytes B, G, R, X (X written as 0xff).
    Xrgb8888,
    /// 32 bpp, bytes R, G, B, X.
    Xbgr8888,
}

impl FbFormat {
    pub fn bytes_per_pixel(self) -> usize {
        match self {
            FbFormat::Rgb565 | FbFormat::Bgr565 => 2,
            FbFormat::Rgb888 => 3,
            FbFormat::Xrgb8888 | FbFormat::Xbgr8888 => 4,
        }
    }

    /// The usual layout for a depth (`bgr`: red and blue swapped).
    pub fn from_bpp(bpp: u32, bgr: bool) -> Result<Self> {
        Ok(match (bpp, bgr) {
            (16, false) => FbFormat::Rgb565,
            (16, true) => FbFormat::Bgr565,
            (24, false) => FbFormat::Rgb888,
            (32, false) => FbFormat::Xrgb8888,
            (32, true) => FbFormat::Xbgr8888,
            _ => {
                return Err(Error::Invalid(format!(
                    "framebuffer: {bpp} bits per pixel{} is not supported (petal writes 16-bit RGB565, 24-bit RGB888 and 32-bit XRGB8888)",
                    if bgr { " with order=bgr" } else { "" }
                )))
            }
        })
    }

    /// Writes one pixel at the start of `out`.
    #[inline]
    pub fn encode(self, c: Rgb888, out: &mut [u8]) {
        let (r, g, b) = (c.r(), c.g(), c.b());
        match self {
            FbFormat::Rgb565 | FbFormat::Bgr565 => {
                let (hi, lo) = if self == FbFormat::Rgb565 {
                    (r, b)
                } else {
                    (b, r)
                };
                let v = (u16::from(hi >> 3) << 11) | (u16::from(g >> 2) << 5) | u16::from(lo >> 3);
                out[..2].copy_from_slice(&v.to_le_bytes());
            }
            FbFormat::Rgb888 => out[..3].copy_from_slice(&[b, g, r]),
            FbFormat::Xrgb8888 => out[..4].copy_from_slice(&[b, g, r, 0xff]),
            FbFormat::Xbgr8888 => out[..4].copy_from_slice(&[r, g, b, 0xff]),
        }
    }

    /// Reads one pixel back (for tests and for checking a device).
    pub fn decode(self, px: &[u8]) -> Rgb888 {
        match self {
            FbFormat::Rgb565 | FbFormat::Bgr565 => {
                let v = u16::from_le_bytes([px[0], px[1]]);
                let hi = ((v >> 11) & 0x1f) as u8;
                let g = ((v >> 5) & 0x3f) as u8;
                let lo = (v & 0x1f) as u8;
                let (hi, g, lo) = (
                    (hi << 3) | (hi >> 2),
                    (g << 2) | (g >> 4),
                    (lo << 3) | (lo >> 2),
                );
                if self == FbFormat::Rgb565 {
                    Rgb888::new(hi, g, lo)
                } else {
                    Rgb888::new(lo, g, hi)
                }
            }
            FbFormat::Rgb888 => Rgb888::new(px[2], px[1], px[0]),
            FbFormat::Xrgb8888 => Rgb888::new(px[2], px[1], px[0]),
            FbFormat::Xbgr8888 => Rgb888::new(px[0], px[1], px[2]),
        }
    }
}

/// What petal needs to know about a framebuffer.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FbGeometry {
    pub width: u32,
    pub height: u32,
    pub format: FbFormat,
    /// Bytes per line (at least `width * bytes_per_pixel`).
    pub stride: usize,
}

/// Geometry values given in the spec; the missing ones are read from sysfs.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct FbOverrides {
    pub width: Option<u32>,
    pub height: Option<u32>,
    pub bpp: Option<u32>,
    pub stride: Option<usize>,
    pub bgr: bool,
    /// The sysfs directory (default: `/sys/class/graphics/<device name>`).
    pub sysfs: Option<PathBuf>,
}

fn read_sysfs(dir: &Path, name: &str) -> Result<String> {
    let p = dir.join(name);
    std::fs::read_to_string(&p)
        .map(|s| s.trim().to_string())
        .map_err(|e| Error::io(p, e))
}

fn parse_num<T: std::str::FromStr>(dir: &Path, name: &str, s: &str) -> Result<T> {
    s.trim().parse().map_err(|_| {
        Error::Invalid(format!(
            "framebuffer: {} holds {s:?}, not a number; give the geometry in the spec: fb:PATH?width=W&height=H&bpp=16|32",
            dir.join(name).display()
        ))
    })
}

/// The visible size from the first line of sysfs `modes` ("U:800x480p-0").
fn mode_size(modes: &str) -> Option<(u32, u32)> {
    let line = modes.lines().next()?;
    let body = line.split_once(':').map_or(line, |(_, b)| b);
    let (w, rest) = body.split_once('x')?;
    let h: String = rest.chars().take_while(char::is_ascii_digit).collect();
    Some((w.parse().ok()?, h.parse().ok()?))
}

impl FbGeometry {
    /// The geometry of `device`: the overrides, then sysfs for whatever they leave open.
    pub fn resolve(device: &Path, o: &FbOverrides) -> Result<Self> {
        let complete = o.width.is_some() && o.height.is_some() && o.bpp.is_some();
        let sysfs = o.sysfs.clone().unwrap_or_else(|| {
            let name = device
                .file_name()
                .map(|n| n.to_string_lossy().into_owned())
                .unwrap_or_default();
            Path::new("/sys/class/graphics").join(name)
        });
        let from_sysfs = |what: &str| -> Result<String> {
            read_sysfs(&sysfs, what).map_err(|e| {
                Error::Invalid(format!(
                    "framebuffer {}: cannot read its {what} ({e}); give the geometry in the spec: fb:{}?width=W&height=H&bpp=16|32",
                    device.display(),
                    device.display()
                ))
            })
        };
        let (mut width, mut height) = (o.width, o.height);
        if width.is_none() || height.is_none() {
            let (vw, vh) = match read_sysfs(&sysfs, "modes")
                .ok()
                .as_deref()
                .and_then(mode_size)
            {
                Some(s) => s,
                None => {
                    let vs = from_sysfs("virtual_size")?;
                    let (w, h) = vs.split_once(',').ok_or_else(|| {
                        Error::Invalid(format!(
                            "framebuffer: {}/virtual_size holds {vs:?}, not W,H",
                            sysfs.display()
                        ))
                    })?;
                    (
                        parse_num(&sysfs, "virtual_size", w)?,
                        parse_num(&sysfs, "virtual_size", h)?,
                    )
                }
            };
            width = width.or(Some(vw));
            height = height.or(Some(vh));
        }
        let bpp = match o.bpp {
            Some(b) => b,
            None => parse_num(&sysfs, "bits_per_pixel", &from_sysfs("bits_per_pixel")?)?,
        };
        let format = FbFormat::from_bpp(bpp, o.bgr)?;
        let (width, height) = (width.unwrap_or(0), height.unwrap_or(0));
        if width == 0 || height == 0 {
            return Err(Error::Invalid(format!(
                "framebuffer {}: size {width}x{height} is empty",
                device.display()
            )));
        }
        if width.max(height) > crate::limits::MAX_SIDE {
            return Err(Error::Invalid(format!(
                "framebuffer {}: size {width}x{height} is larger than petal draws ({} pixels a side at most); give the size in the spec: fb:{}?width=W&height=H",
                device.display(),
                crate::limits::MAX_SIDE,
                device.display()
            )));
        }
        let min_stride = width as usize * format.bytes_per_pixel();
        let stride = match o.stride {
            Some(s) => s,
            // With the whole geometry given, a missing stride means tightly packed lines.
            None if complete => match read_sysfs(&sysfs, "stride") {
                Ok(s) => parse_num(&sysfs, "stride", &s)?,
                Err(_) => min_stride,
            },
            None => parse_num(&sysfs, "stride", &from_sysfs("stride")?)?,
        };
        let bytes = (stride as u64).saturating_mul(u64::from(height));
        if bytes > crate::limits::MAX_FRAMEBUFFER_BYTES {
            return Err(Error::Invalid(format!(
                "framebuffer {}: stride {stride} x {height} lines is {}, larger than any screen petal drives; give the stride in the spec: fb:{}?stride=BYTES",
                device.display(),
                crate::limits::human_bytes(bytes),
                device.display()
            )));
        }
        if stride < min_stride {
            return Err(Error::Invalid(format!(
                "framebuffer {}: stride {stride} bytes is shorter than a line of {width} pixels ({min_stride} bytes)",
                device.display()
            )));
        }
        Ok(FbGeometry {
            width,
            height,
            format,
            stride,
        })
    }
}

fn write_err(path: &Path, e: std::io::Error) -> Error {
    Error::Image(format!("framebuffer: cannot write {}: {e}", path.display()))
}

pub struct Framebuffer {
    path: PathBuf,
    geometry: FbGeometry,
    buf: Vec<u8>,
    file: Option<File>,
}

impl Framebuffer {
    /// Opens `path` for writing (it must exist: a device node, or a file standing in for one).
    pub fn open(path: &Path, geometry: FbGeometry) -> Result<Self> {
        let mut fb = Framebuffer {
            path: path.to_path_buf(),
            geometry,
            buf: vec![0; geometry.stride * geometry.height as usize],
            file: None,
        };
        fb.file()?;
        Ok(fb)
    }

    pub fn geometry(&self) -> FbGeometry {
        self.geometry
    }

    /// The off-screen buffer, in the device's layout.
    pub fn buffer(&self) -> &[u8] {
        &self.buf
    }

    fn file(&mut self) -> Result<()> {
        if self.file.is_none() {
            let f = OpenOptions::new()
                .write(true)
                .open(&self.path)
                .map_err(|e| write_err(&self.path, e))?;
            self.file = Some(f);
        }
        Ok(())
    }

    #[inline]
    fn put(&mut self, x: u32, y: u32, c: Rgb888) {
        let bpp = self.geometry.format.bytes_per_pixel();
        let at = y as usize * self.geometry.stride + x as usize * bpp;
        self.geometry.format.encode(c, &mut self.buf[at..at + bpp]);
    }
}

impl OriginDimensions for Framebuffer {
    fn size(&self) -> Size {
        Size::new(self.geometry.width, self.geometry.height)
    }
}

impl DrawTarget for Framebuffer {
    type Color = Rgb888;
    type Error = Error;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<()>
    where
        I: IntoIterator<Item = Pixel<Rgb888>>,
    {
        let (w, h) = (self.geometry.width, self.geometry.height);
        for Pixel(p, c) in pixels {
            if p.x >= 0 && p.y >= 0 && (p.x as u32) < w && (p.y as u32) < h {
                self.put(p.x as u32, p.y as u32, c);
            }
        }
        Ok(())
    }

    fn fill_contiguous<I>(&mut self, area: &Rectangle, colors: I) -> Result<()>
    where
        I: IntoIterator<Item = Rgb888>,
    {
        if area.top_left == Point::zero() && area.size == self.size() {
            let (w, stride, format) = (
                self.geometry.width as usize,
                self.geometry.stride,
                self.geometry.format,
            );
            let bpp = format.bytes_per_pixel();
            let mut colors = colors.into_iter();
            for line in self.buf.chunks_exact_mut(stride) {
                for px in line[..w * bpp].chunks_exact_mut(bpp) {
                    match colors.next() {
                        Some(c) => format.encode(c, px),
                        None => return Ok(()),
                    }
                }
            }
            return Ok(());
        }
        self.draw_iter(
            area.points()
                .zip(colors)
                .map(|(pos, color)| Pixel(pos, color)),
        )
    }
}

impl Display for Framebuffer {
    fn describe(&self) -> String {
        let g = &self.geometry;
        format!(
            "framebuffer {} {}x{} {:?} stride {}",
            self.path.display(),
            g.width,
            g.height,
            g.format,
            g.stride
        )
    }

    fn show(&mut self) -> Result<()> {
        self.file()?;
        let result = match &self.file {
            Some(f) => f.write_all_at(&self.buf, 0),
            None => Ok(()),
        };
        if let Err(e) = result {
            // Reopen on the next try: the device may have gone away and come back.
            self.file = None;
            return Err(write_err(&self.path, e));
        }
        Ok(())
    }
}
