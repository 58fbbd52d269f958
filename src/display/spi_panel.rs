//! Driving an SPI TFT panel (ST7789, ILI9341) through `mipidsi`, over any embedded-hal 1.0 SPI
//! device and pins: [`super::linux_io`] gives it spidev and GPIO lines, tests give it recorders.
//!
//! Frames are drawn off-screen and sent whole as RGB565 when shown (153 kB for 240x320: ~40 ms
//! at 32 MHz), so a frame is never seen half drawn.

use embedded_graphics::pixelcolor::{Rgb565, Rgb888};
use embedded_graphics::prelude::*;
use embedded_hal::delay::DelayNs;
use embedded_hal::digital::OutputPin;
use embedded_hal::spi::SpiDevice;
use mipidsi::interface::{Interface, InterfaceKind};
use mipidsi::models::{ILI9341Rgb565, Model, ST7789};
use mipidsi::options::{ColorInversion, ColorOrder, Orientation, Rotation};
use mipidsi::InitError;

use super::canvas::draw_into_canvas;
use super::spi::{SpiConfig, SpiModel};
use super::{Canvas, Display};
use crate::error::{Error, Result};

/// Bytes per SPI write: Linux spidev's default transfer limit.
const CHUNK: usize = 4096;
const SOFT_RESET: u8 = 0x01;

/// mipidsi's command and pixel interface: a data/command pin and an SPI device, with a buffer of
/// its own (mipidsi's interface borrows one, which a display reopened for months could only
/// get by leaking).
pub struct Bus<SPI, P> {
    spi: SPI,
    dc: P,
    buf: Vec<u8>,
}

#[derive(Debug)]
pub struct BusError(String);

impl std::fmt::Display for BusError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.write_str(&self.0)
    }
}

impl<SPI, P> Bus<SPI, P>
where
    SPI: SpiDevice,
    SPI::Error: std::fmt::Display,
    P: OutputPin,
    P::Error: std::fmt::Display,
{
    fn write(&mut self, bytes: &[u8]) -> Result<(), BusError> {
        for chunk in bytes.chunks(CHUNK) {
            self.spi
                .write(chunk)
                .map_err(|e| BusError(format!("SPI write failed: {e}")))?;
        }
        Ok(())
    }

    fn set_dc(&mut self, data: bool) -> Result<(), BusError> {
        let r = if data {
            self.dc.set_high()
        } else {
            self.dc.set_low()
        };
        r.map_err(|e| BusError(format!("data/command pin: {e}")))
    }
}

impl<SPI, P> Interface for Bus<SPI, P>
where
    SPI: SpiDevice,
    SPI::Error: std::fmt::Display,
    P: OutputPin,
    P::Error: std::fmt::Display,
{
    type Word = u8;
    type Error = BusError;
    const KIND: InterfaceKind = InterfaceKind::Serial4Line;

    fn send_command(&mut self, command: u8, args: &[u8]) -> Result<(), BusError> {
        self.set_dc(false)?;
        self.write(&[command])?;
        self.set_dc(true)?;
        self.write(args)
    }

    fn send_pixels<const N: usize>(
        &mut self,
        pixels: impl IntoIterator<Item = [u8; N]>,
    ) -> Result<(), BusError> {
        let mut buf = std::mem::take(&mut self.buf);
        buf.clear();
        let mut result = Ok(());
        for px in pixels {
            buf.extend_from_slice(&px);
            if buf.len() + N > CHUNK {
                result = self.write(&buf);
                buf.clear();
                if result.is_err() {
                    break;
                }
            }
        }
        if result.is_ok() && !buf.is_empty() {
            result = self.write(&buf);
        }
        self.buf = buf;
        result
    }

    fn send_repeated_pixel<const N: usize>(
        &mut self,
        pixel: [u8; N],
        count: u32,
    ) -> Result<(), BusError> {
        self.send_pixels(std::iter::repeat_n(pixel, count as usize))
    }
}

/// A reset pin that may not be wired (the panel is then reset by command).
pub struct MaybePin<P>(Option<P>);

impl<P: OutputPin> embedded_hal::digital::ErrorType for MaybePin<P> {
    type Error = P::Error;
}

impl<P: OutputPin> OutputPin for MaybePin<P> {
    fn set_low(&mut self) -> Result<(), P::Error> {
        self.0.as_mut().map_or(Ok(()), |p| p.set_low())
    }
    fn set_high(&mut self) -> Result<(), P::Error> {
        self.0.as_mut().map_or(Ok(()), |p| p.set_high())
    }
}

type Driver<SPI, P, M> = mipidsi::Display<Bus<SPI, P>, M, MaybePin<P>>;

enum Panel<SPI, P>
where
    SPI: SpiDevice,
    SPI::Error: std::fmt::Display,
    P: OutputPin,
    P::Error: std::fmt::Display,
{
    St7789(Driver<SPI, P, ST7789>),
    Ili9341(Driver<SPI, P, ILI9341Rgb565>),
}

/// An SPI panel: an off-screen canvas sent whole to the panel by [`Display::show`].
pub struct SpiPanel<SPI, P>
where
    SPI: SpiDevice,
    SPI::Error: std::fmt::Display,
    P: OutputPin,
    P::Error: std::fmt::Display,
{
    canvas: Canvas,
    panel: Panel<SPI, P>,
    what: String,
    /// Held (lit) for as long as the panel is open.
    _backlight: Option<P>,
}

fn init_error<E: std::fmt::Display>(what: &str, e: InitError<BusError, E>) -> Error {
    match e {
        InitError::Interface(e) => Error::Image(format!("{what}: cannot initialise it: {e}")),
        InitError::ResetPin(e) => Error::Image(format!("{what}: reset pin: {e}")),
        InitError::InvalidConfiguration(c) => {
            Error::Invalid(format!("{what}: mipidsi refuses the configuration: {c:?}"))
        }
    }
}

fn build<SPI, P, M, D>(
    model: M,
    mut bus: Bus<SPI, P>,
    rst: Option<P>,
    c: &SpiConfig,
    delay: &mut D,
    what: &str,
) -> Result<Driver<SPI, P, M>>
where
    SPI: SpiDevice,
    SPI::Error: std::fmt::Display,
    P: OutputPin,
    P::Error: std::fmt::Display,
    M: Model<ColorFormat = Rgb565>,
    D: DelayNs,
{
    if rst.is_none() {
        bus.send_command(SOFT_RESET, &[])
            .map_err(|e| Error::Image(format!("{what}: cannot reset it: {e}")))?;
        // Both controllers want 120 ms after a reset before leaving sleep.
        delay.delay_ms(150);
    }
    let rotation = match c.rotate {
        90 => Rotation::Deg90,
        180 => Rotation::Deg180,
        270 => Rotation::Deg270,
        _ => Rotation::Deg0,
    };
    mipidsi::Builder::new(model, bus)
        .reset_pin(MaybePin(rst))
        .display_size(c.size.0 as u16, c.size.1 as u16)
        .display_offset(c.offset.0 as u16, c.offset.1 as u16)
        .orientation(Orientation::new().rotate(rotation))
        .invert_colors(if c.invert {
            ColorInversion::Inverted
        } else {
            ColorInversion::Normal
        })
        .color_order(if c.bgr {
            ColorOrder::Bgr
        } else {
            ColorOrder::Rgb
        })
        .init(delay)
        .map_err(|e| init_error(what, e))
}

impl<SPI, P> SpiPanel<SPI, P>
where
    SPI: SpiDevice,
    SPI::Error: std::fmt::Display,
    P: OutputPin,
    P::Error: std::fmt::Display,
{
    /// Resets and initialises the panel, clears it to black, then lights the backlight.
    pub fn new(
        c: &SpiConfig,
        spi: SPI,
        dc: P,
        rst: Option<P>,
        backlight: Option<P>,
        delay: &mut impl DelayNs,
    ) -> Result<Self> {
        let (w, h) = c.dimensions();
        let what = format!("spi {} {w}x{h} on {}", c.model.name(), c.device.display());
        let bus = Bus {
            spi,
            dc,
            buf: Vec::with_capacity(CHUNK),
        };
        let panel = match c.model {
            SpiModel::St7789 => Panel::St7789(build(ST7789, bus, rst, c, delay, &what)?),
            SpiModel::Ili9341 => Panel::Ili9341(build(ILI9341Rgb565, bus, rst, c, delay, &what)?),
        };
        let mut me = SpiPanel {
            canvas: Canvas::new(w, h),
            panel,
            what,
            _backlight: None,
        };
        // The panel's memory holds noise after power-up: black first, then light.
        me.show()?;
        if let Some(mut bl) = backlight {
            bl.set_high()
                .map_err(|e| Error::Image(format!("{}: backlight pin: {e}", me.what)))?;
            me._backlight = Some(bl);
        }
        Ok(me)
    }
}

/// RGB565 as the framebuffer display makes it (top bits), so both show a picture alike.
fn rgb565(c: Rgb888) -> Rgb565 {
    Rgb565::new(c.r() >> 3, c.g() >> 2, c.b() >> 3)
}

draw_into_canvas!(
    SpiPanel<SPI, P>,
    [SPI, P] where
        SPI: SpiDevice,
        SPI::Error: std::fmt::Display,
        P: OutputPin,
        P::Error: std::fmt::Display,
);

impl<SPI, P> Display for SpiPanel<SPI, P>
where
    SPI: SpiDevice,
    SPI::Error: std::fmt::Display,
    P: OutputPin,
    P::Error: std::fmt::Display,
{
    fn describe(&self) -> String {
        self.what.clone()
    }

    fn show(&mut self) -> Result<()> {
        let (w, h) = self.canvas.image.dimensions();
        let (ex, ey) = (w as u16 - 1, h as u16 - 1);
        let pixels = self
            .canvas
            .image
            .pixels()
            .map(|p| rgb565(Rgb888::new(p[0], p[1], p[2])));
        let r = match &mut self.panel {
            Panel::St7789(d) => d.set_pixels(0, 0, ex, ey, pixels),
            Panel::Ili9341(d) => d.set_pixels(0, 0, ex, ey, pixels),
        };
        r.map_err(|e| Error::Image(format!("{}: cannot send a frame: {e}", self.what)))
    }
}
