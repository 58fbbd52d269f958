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
}

impl AnyDisplay {
    pub fn new(backend: Backend, palette: Option<Palette>, min_refresh: Duration) -> Self {
        AnyDisplay {
            backend,
            palette,
            min_refresh,
        }
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

    fn closed(&mut self) -> bool {
        each!(&mut self.backend, d => d.closed())
    }
}
