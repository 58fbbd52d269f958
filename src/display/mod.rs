//! Where pictures are shown: petal's displays, all behind one `embedded-graphics` [`DrawTarget`].
//!
//! A display is parsed from a spec string ([`DisplaySpec`]): `png:DIR`, `fb:/dev/fbN`, `memory`
//! (and, in builds with those cargo features, `window`, `spi:MODEL`, `epaper:MODEL`). Everything is drawn
//! into an off-screen buffer first and pushed to the screen at once by [`Display::show`], so a
//! frame never appears half drawn.
//!
//! Pictures are fitted to the screen by [`scale::place`] and, for panels with few colours,
//! dithered by [`dither`]; [`compose`] does both plus the optional caption.

pub mod any;
pub mod canvas;
pub mod compose;
pub mod dither;
pub mod epaper;
#[cfg(feature = "epaper")]
pub mod epaper_panel;
pub mod fb;
pub mod inky;
#[cfg(any(feature = "spi", feature = "epaper", feature = "buttons"))]
pub mod linux_io;
pub mod memory;
mod options;
pub mod png;
pub mod scale;
pub mod spec;
#[cfg(feature = "epaper")]
pub mod spectra6;
#[cfg(feature = "epaper")]
pub mod spectra6_dual;
pub mod spi;
#[cfg(feature = "spi")]
pub mod spi_panel;
#[cfg(feature = "window")]
pub mod window;

use std::time::Duration;

use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;
use image::RgbImage;

use crate::error::Result;

pub use any::{AnyDisplay, Backend};
pub use canvas::Canvas;
pub use dither::Palette;
pub use fb::{FbFormat, FbGeometry, Framebuffer};
pub use memory::{MemoryDisplay, Recording};
pub use png::PngDisplay;
pub use spec::DisplaySpec;

/// A screen petal can paint on. Drawing goes to an off-screen buffer; [`Display::show`] puts
/// the whole buffer on the screen at once.
pub trait Display: DrawTarget<Color = Rgb888, Error = crate::Error> {
    /// What the display is, for messages ("framebuffer /dev/fb0 800x480 RGB565").
    fn describe(&self) -> String;

    /// Puts what has been drawn on the screen.
    fn show(&mut self) -> Result<()>;

    /// The shortest time the panel needs between two refreshes (zero: as often as you like).
    /// E-paper panels take tens of seconds per refresh and wear out when refreshed often.
    fn min_refresh_interval(&self) -> Duration {
        Duration::ZERO
    }

    /// The colours the panel can show, when it cannot show all (pictures are dithered to them).
    fn palette(&self) -> Option<&Palette> {
        None
    }

    /// Whether the viewer has closed the display (a desktop window), which ends the frame.
    /// Called every tick (50 ms) between frames, which also lets a window answer its desktop.
    fn closed(&mut self) -> bool {
        false
    }

    /// Width and height in pixels.
    fn dimensions(&self) -> (u32, u32) {
        let s = self.bounding_box().size;
        (s.width, s.height)
    }

    /// Draws a picture of exactly the display's size into the buffer (not shown yet).
    fn draw_image(&mut self, img: &RgbImage) -> Result<()> {
        let (w, h) = self.dimensions();
        if img.dimensions() != (w, h) {
            return Err(crate::Error::Image(format!(
                "a {}x{} picture cannot be drawn on a {w}x{h} display",
                img.width(),
                img.height()
            )));
        }
        let area = Rectangle::new(Point::zero(), Size::new(w, h));
        self.fill_contiguous(&area, img.pixels().map(|p| Rgb888::new(p[0], p[1], p[2])))
    }
}

/// Parses `WxH` ("800x480").
pub(crate) fn parse_size(s: &str) -> Option<(u32, u32)> {
    let (w, h) = s.split_once(['x', 'X'])?;
    let (w, h) = (w.trim().parse().ok()?, h.trim().parse().ok()?);
    (w > 0 && h > 0).then_some((w, h))
}
