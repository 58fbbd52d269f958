//! [`AnyDisplay`]: whichever display a spec names, with the options every display has.

use std::time::Duration;

use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;

use super::{Display, Framebuffer, MemoryDisplay, Palette, PngDisplay};
use crate::error::{Error, Result};

pub enum Backend {
    Png(PngDisplay),
    Fb(Framebuffer),
    Memory(MemoryDisplay),
    #[cfg(feature = "window")]
    Window(super::window::WindowDisplay),
    // Boxed: a panel driver's state is large next to the other displays'.
    #[cfg(feature = "spi")]
    Spi(Box<super::linux_io::LinuxSpiPanel>),
    #[cfg(feature = "epaper")]
    Epaper(Box<super::linux_io::LinuxEpaperPanel>),
}

/// Any display a spec can name, with the spec's common options.
pub struct AnyDisplay {
    pub backend: Backend,
    palette: Option<Palette>,
    min_refresh: Duration,
    /// How far the screen is turned clockwise (0, 90, 180, 270), for displays whose driver
    /// cannot turn the picture itself (panels with a `rotate` option do it in their driver).
    rotate: u16,
}

impl AnyDisplay {
    pub fn new(backend: Backend, palette: Option<Palette>, min_refresh: Duration) -> Self {
        AnyDisplay {
            backend,
            palette,
            min_refresh,
            rotate: 0,
        }
    }

    /// The same display on a screen turned `rotate` degrees clockwise: what is drawn upright
    /// at the viewer's (x, y) lands where the turned screen shows it there.
    pub fn rotated(mut self, rotate: u16) -> Self {
        self.rotate = rotate;
        self
    }
}

/// The screen's own pixel for the viewer's `p` on a screen of `native` size turned `rotate`
/// degrees clockwise (the inverse of the e-paper `pack` turn).
fn to_native(rotate: u16, p: Point, native: Size) -> Point {
    let (w, h) = (native.width as i32, native.height as i32);
    match rotate {
        90 => Point::new(p.y, h - 1 - p.x),
        180 => Point::new(w - 1 - p.x, h - 1 - p.y),
        270 => Point::new(w - 1 - p.y, p.x),
        _ => p,
    }
}

macro_rules! each {
    ($self:expr, $d:ident => $e:expr) => {
        match $self {
            Backend::Png($d) => $e,
            Backend::Fb($d) => $e,
            Backend::Memory($d) => $e,
            #[cfg(feature = "window")]
            Backend::Window($d) => $e,
            #[cfg(feature = "spi")]
            Backend::Spi($d) => $e,
            #[cfg(feature = "epaper")]
            Backend::Epaper($d) => $e,
        }
    };
}

impl AnyDisplay {
    fn native_size(&self) -> Size {
        each!(&self.backend, d => d.bounding_box().size)
    }
}

impl OriginDimensions for AnyDisplay {
    fn size(&self) -> Size {
        let s = self.native_size();
        if self.rotate % 180 == 90 {
            Size::new(s.height, s.width)
        } else {
            s
        }
    }
}

impl DrawTarget for AnyDisplay {
    type Color = Rgb888;
    type Error = Error;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<()>
    where
        I: IntoIterator<Item = Pixel<Rgb888>>,
    {
        if self.rotate == 0 {
            return each!(&mut self.backend, d => d.draw_iter(pixels));
        }
        let (rotate, native) = (self.rotate, self.native_size());
        let turned = pixels
            .into_iter()
            .map(move |Pixel(p, c)| Pixel(to_native(rotate, p, native), c));
        each!(&mut self.backend, d => d.draw_iter(turned))
    }

    fn fill_contiguous<I>(&mut self, area: &Rectangle, colors: I) -> Result<()>
    where
        I: IntoIterator<Item = Rgb888>,
    {
        if self.rotate == 0 {
            return each!(&mut self.backend, d => d.fill_contiguous(area, colors));
        }
        let pixels = area.points().zip(colors).map(|(p, c)| Pixel(p, c));
        self.draw_iter(pixels)
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
        if self.rotate != 0 {
            s.push_str(&format!(", turned {}° clockwise", self.rotate));
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

    fn closed(&mut self) -> bool {
        each!(&mut self.backend, d => d.closed())
    }
}
