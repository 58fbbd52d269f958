//! An `RgbImage` as an `embedded-graphics` draw target: the off-screen buffer of the PNG and
//! memory displays, and where frames are composed (picture, letterbox, caption).

use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics::primitives::Rectangle;
use image::{Rgb, RgbImage};

use crate::error::Error;

#[derive(Debug, Clone)]
pub struct Canvas {
    pub image: RgbImage,
}

impl Canvas {
    pub fn new(width: u32, height: u32) -> Self {
        Canvas {
            image: RgbImage::new(width, height),
        }
    }

    pub fn from_image(image: RgbImage) -> Self {
        Canvas { image }
    }

    pub fn into_image(self) -> RgbImage {
        self.image
    }
}

impl OriginDimensions for Canvas {
    fn size(&self) -> Size {
        Size::new(self.image.width(), self.image.height())
    }
}

impl DrawTarget for Canvas {
    type Color = Rgb888;
    type Error = Error;

    fn draw_iter<I>(&mut self, pixels: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = Pixel<Rgb888>>,
    {
        let (w, h) = self.image.dimensions();
        for Pixel(p, c) in pixels {
            if p.x >= 0 && p.y >= 0 && (p.x as u32) < w && (p.y as u32) < h {
                self.image
                    .put_pixel(p.x as u32, p.y as u32, Rgb([c.r(), c.g(), c.b()]));
            }
        }
        Ok(())
    }

    fn fill_contiguous<I>(&mut self, area: &Rectangle, colors: I) -> Result<(), Error>
    where
        I: IntoIterator<Item = Rgb888>,
    {
        // The common case, a whole frame, without per-pixel bounds arithmetic.
        if area.top_left == Point::zero() && area.size == self.size() {
            for (dst, c) in self.image.pixels_mut().zip(colors) {
                *dst = Rgb([c.r(), c.g(), c.b()]);
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

/// Implements `OriginDimensions` and `DrawTarget` for a display that draws into its `canvas`
/// field: every display draws off-screen and puts the whole canvas on the screen in
/// [`Display::show`](super::Display::show), so this part is the same for all of them.
///
/// `draw_into_canvas!(PngDisplay);` or, for a generic display,
/// `draw_into_canvas!(Panel<S, P>, [S, P] where S: Bound, P: Bound);`
macro_rules! draw_into_canvas {
    ($ty:ty) => {
        $crate::display::canvas::draw_into_canvas!(@impl [] $ty;);
    };
    ($ty:ty, [$($g:ident),+] $(where $($bound:tt)+)?) => {
        $crate::display::canvas::draw_into_canvas!(@impl [$($g),+] $ty; $($($bound)+)?);
    };
    (@impl [$($g:ident),*] $ty:ty; $($bound:tt)*) => {
        impl<$($g),*> ::embedded_graphics::geometry::OriginDimensions for $ty
        where
            $($bound)*
        {
            fn size(&self) -> ::embedded_graphics::geometry::Size {
                ::embedded_graphics::geometry::OriginDimensions::size(&self.canvas)
            }
        }

        impl<$($g),*> ::embedded_graphics::draw_target::DrawTarget for $ty
        where
            $($bound)*
        {
            type Color = ::embedded_graphics::pixelcolor::Rgb888;
            type Error = $crate::error::Error;

            fn draw_iter<I>(&mut self, pixels: I) -> ::core::result::Result<(), Self::Error>
            where
                I: IntoIterator<Item = ::embedded_graphics::Pixel<Self::Color>>,
            {
                ::embedded_graphics::draw_target::DrawTarget::draw_iter(&mut self.canvas, pixels)
            }

            fn fill_contiguous<I>(
                &mut self,
                area: &::embedded_graphics::primitives::Rectangle,
                colors: I,
            ) -> ::core::result::Result<(), Self::Error>
            where
                I: IntoIterator<Item = Self::Color>,
            {
                ::embedded_graphics::draw_target::DrawTarget::fill_contiguous(
                    &mut self.canvas,
                    area,
                    colors,
                )
            }
        }
    };
}
pub(crate) use draw_into_canvas;
