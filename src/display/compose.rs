//! One frame for a screen: the picture fitted to it, an optional caption, and dithering when
//! the panel has few colours.

use embedded_graphics::mono_font::{ascii, MonoFont, MonoTextStyle};
use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::{PrimitiveStyle, Rectangle};
use embedded_graphics::text::{Baseline, Text};
use image::RgbImage;

use super::scale::{place, Layout};
use super::{dither, Canvas, Palette};

/// The font for a caption on a screen this wide.
fn font_for(width: u32) -> &'static MonoFont<'static> {
    match width {
        0..=159 => &ascii::FONT_4X6,
        160..=399 => &ascii::FONT_6X10,
        400..=799 => &ascii::FONT_7X13,
        _ => &ascii::FONT_10X20,
    }
}

/// Draws `text` at the bottom left on a dark band, clipped to the canvas.
pub fn draw_caption(canvas: &mut Canvas, text: &str) {
    let (w, h) = canvas.image.dimensions();
    let font = font_for(w);
    let pad = (font.character_size.height / 4).max(1) as i32;
    let chars = text.chars().count() as u32;
    let text_w = chars * (font.character_size.width + font.character_spacing);
    let band_h = font.character_size.height + 2 * pad as u32;
    let top = h as i32 - band_h as i32;
    let band = Rectangle::new(
        Point::new(0, top),
        Size::new((text_w + 2 * pad as u32).min(w), band_h),
    );
    // Drawing into a Canvas cannot fail: it clips and has no I/O.
    let _ = band
        .into_styled(PrimitiveStyle::with_fill(Rgb888::new(16, 16, 16)))
        .draw(canvas);
    let style = MonoTextStyle::new(font, Rgb888::new(235, 235, 235));
    let _ =
        Text::with_baseline(text, Point::new(pad, top + pad), style, Baseline::Top).draw(canvas);
}

/// The frame for a `width` x `height` screen.
pub fn compose(
    picture: &RgbImage,
    width: u32,
    height: u32,
    layout: &Layout,
    caption: Option<&str>,
    palette: Option<&Palette>,
) -> RgbImage {
    let placed = place(picture, width, height, layout);
    let placed = match caption {
        Some(text) if !text.is_empty() => {
            let mut canvas = Canvas::from_image(placed);
            draw_caption(&mut canvas, text);
            canvas.into_image()
        }
        _ => placed,
    };
    match palette {
        Some(p) => dither::dither(&placed, p),
        None => placed,
    }
}
