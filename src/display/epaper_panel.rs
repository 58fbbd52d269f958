//! Driving a colour e-paper panel (Waveshare 7.3" F and 5.65" F through `epd-waveshare`,
//! Spectra 6 panels through [`super::spectra6`]), over any embedded-hal 1.0 SPI device and
//! pins: [`super::linux_io`] gives it spidev and GPIO lines, tests give it recorders.
//!
//! Frames arrive already dithered to the panel's colours (the panel's [`Palette`] makes
//! the frame loop dither them); [`pack`] turns them into the panel's 4-bit colour codes. A
//! refresh takes ~15-35 s: the panel is woken for it and put back to deep sleep after, as
//! Waveshare asks (a panel left powered wears), and the frame loop keeps the panel's
//! [`Display::min_refresh_interval`] between refreshes.

use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::Arc;
use std::time::{Duration, Instant};

use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{ErrorKind, ErrorType, InputPin, OutputPin};
use embedded_hal::spi::SpiDevice;
use epd_waveshare::epd5in65f::Epd5in65f;
use epd_waveshare::epd7in3f::Epd7in3f;
use epd_waveshare::prelude::WaveshareDisplay;
use image::RgbImage;

use super::canvas::draw_into_canvas;
use super::dither::{Palette, ACEP7_NOMINAL, DEFAULT_SATURATION, SPECTRA6_CODES, SPECTRA6_NOMINAL};
use super::epaper::{EpaperConfig, EpaperModel};
use super::spectra6::{Spectra6, Vendor};
use super::spectra6_dual::Spectra6Dual;
use super::{Canvas, Display};
use crate::error::{Error, Result};

/// Longer than any refresh (~35 s for the 7.3"): a BUSY line stuck this long means no panel.
pub const BUSY_LIMIT: Duration = Duration::from_secs(90);
/// Polls of BUSY further apart than this belong to different waits.
const SAME_WAIT: Duration = Duration::from_secs(1);
/// The driver's pause between two polls of BUSY, in µs.
const POLL_US: u32 = 10_000;

/// The BUSY input, watched: epd-waveshare waits for it without a time limit, which would hang
/// the frame forever on an unplugged panel. After [`BUSY_LIMIT`] at one level it reads as an
/// error, which the driver takes as "not busy" (whatever the wait's polarity), and it says so.
pub struct BusyPin<B> {
    pin: B,
    limit: Duration,
    streak: Option<(bool, Instant)>,
    last: Instant,
    stuck: Arc<AtomicBool>,
}

impl<B: InputPin> BusyPin<B> {
    pub fn new(pin: B, limit: Duration) -> (Self, Arc<AtomicBool>) {
        let stuck = Arc::new(AtomicBool::new(false));
        let me = BusyPin {
            pin,
            limit,
            streak: None,
            last: Instant::now(),
            stuck: Arc::clone(&stuck),
        };
        (me, stuck)
    }

    fn level(&mut self) -> Result<bool, ErrorKind> {
        let level = self.pin.is_high().map_err(|_| ErrorKind::Other)?;
        let now = Instant::now();
        match self.streak {
            Some((l, since)) if l == level && now - self.last < SAME_WAIT => {
                if now - since > self.limit {
                    self.stuck.store(true, Ordering::Relaxed);
                    self.last = now;
                    return Err(ErrorKind::Other);
                }
            }
            _ => self.streak = Some((level, now)),
        }
        self.last = now;
        Ok(level)
    }
}

impl<B: InputPin> ErrorType for BusyPin<B> {
    type Error = ErrorKind;
}

impl<B: InputPin> InputPin for BusyPin<B> {
    fn is_high(&mut self) -> Result<bool, ErrorKind> {
        self.level()
    }
    fn is_low(&mut self) -> Result<bool, ErrorKind> {
        self.level().map(|l| !l)
    }
}

/// The colours a panel is sent and the 4-bit code of each.
fn panel_colours(model: EpaperModel) -> (&'static [Rgb888], &'static [u8]) {
    const ACEP7_CODES: [u8; 7] = [0, 1, 2, 3, 4, 5, 6];
    if model.is_spectra6() {
        (&SPECTRA6_NOMINAL, &SPECTRA6_CODES)
    } else {
        (&ACEP7_NOMINAL, &ACEP7_CODES)
    }
}

/// The code of `c` among the panel's colours: exact for dithered frames, nearest otherwise.
fn colour_code(colours: &[Rgb888], codes: &[u8], c: [u8; 3]) -> u8 {
    let d = |n: &Rgb888| {
        let e = |a: u8, b: u8| (i32::from(a) - i32::from(b)).pow(2);
        e(n.r(), c[0]) + e(n.g(), c[1]) + e(n.b(), c[2])
    };
    let mut best = (0, i32::MAX);
    for (i, n) in colours.iter().enumerate() {
        let dist = d(n);
        if dist < best.1 {
            best = (i, dist);
        }
    }
    codes[best.0]
}

/// The panel's frame buffer: rows of its own (landscape, `native`) orientation, two pixels a
/// byte, the left one in the high nibble, each the code of its colour on `model`'s kind of
/// panel. `rotate` is how far the panel is turned clockwise; `img` is what the viewer sees.
pub fn pack(img: &RgbImage, native: (u32, u32), rotate: u16, model: EpaperModel) -> Vec<u8> {
    let (colours, codes) = panel_colours(model);
    let (w, h) = native;
    let at = |x: u32, y: u32| -> u8 {
        let (u, v) = match rotate {
            90 => (h - 1 - y, x),
            180 => (w - 1 - x, h - 1 - y),
            270 => (y, w - 1 - x),
            _ => (x, y),
        };
        colour_code(colours, codes, img.get_pixel(u, v).0)
    };
    let mut out = Vec::with_capacity((w * h).div_ceil(2) as usize);
    for y in 0..h {
        for x in (0..w).step_by(2) {
            let right = if x + 1 < w { at(x + 1, y) } else { 1 };
            out.push((at(x, y) << 4) | right);
        }
    }
    out
}

/// The lines a panel is driven through: `dc` for all but the 13.3", whose two chip selects
/// (`cs`: main, second) petal drives itself.
pub struct PanelPins<P, B> {
    pub dc: Option<P>,
    pub rst: P,
    pub busy: B,
    pub pwr: Option<P>,
    pub cs: Option<(P, P)>,
}

enum Panel<SPI, P, B, D> {
    F7in3(Epd7in3f<SPI, BusyPin<B>, P, P, D>),
    F5in65(Epd5in65f<SPI, BusyPin<B>, P, P, D>),
    Spectra6(Spectra6<BusyPin<B>, P, P>),
    Spectra6Dual(Spectra6Dual<BusyPin<B>, P>),
}

macro_rules! with_panel {
    ($panel:expr, $e:ident => $body:expr) => {
        match $panel {
            Panel::F7in3($e) => $body,
            Panel::F5in65($e) => $body,
            Panel::Spectra6($e) => $body,
            Panel::Spectra6Dual($e) => $body,
        }
    };
}

/// An e-paper panel: an off-screen canvas, packed and sent by [`Display::show`].
pub struct EpaperPanel<SPI, P, B, D> {
    canvas: Canvas,
    panel: Panel<SPI, P, B, D>,
    spi: SPI,
    delay: D,
    config: EpaperConfig,
    palette: Palette,
    stuck: Arc<AtomicBool>,
    asleep: bool,
    what: String,
    /// The HAT's power switch, held on for as long as the panel is open.
    _pwr: Option<P>,
}

impl<SPI, P, B, D> EpaperPanel<SPI, P, B, D>
where
    SPI: SpiDevice,
    SPI::Error: std::fmt::Display,
    P: OutputPin,
    P::Error: std::fmt::Display,
    B: InputPin,
    D: DelayNs,
{
    /// Powers (`pwr`), resets and initialises the panel. Nothing is shown until the first frame.
    pub fn new(
        config: &EpaperConfig,
        mut spi: SPI,
        pins: PanelPins<P, B>,
        mut delay: D,
        busy_limit: Duration,
    ) -> Result<Self> {
        let PanelPins {
            dc,
            rst,
            busy,
            pwr,
            cs,
        } = pins;
        let (w, h) = config.dimensions();
        let what = format!(
            "epaper {} {w}x{h} on {}",
            config.model.name(),
            config.device.display()
        );
        let mut pwr = pwr;
        if let Some(p) = pwr.as_mut() {
            p.set_high()
                .map_err(|e| Error::Image(format!("{what}: power pin: {e}")))?;
        }
        let (busy, stuck) = BusyPin::new(busy, busy_limit);
        let missing = |pin: &str| {
            Error::Invalid(format!(
                "{what}: the {} needs its {pin} line",
                config.model.name()
            ))
        };
        let r = match (config.model, dc, cs) {
            (EpaperModel::Epd13in3e, _, Some((cs_main, cs_second))) => {
                Spectra6Dual::new(&mut spi, busy, cs_main, cs_second, rst, &mut delay, POLL_US)
                    .map(Panel::Spectra6Dual)
            }
            (EpaperModel::Epd13in3e, _, None) => return Err(missing("chip select (cs-m, cs-s)")),
            (EpaperModel::Epd7in3f, Some(dc), _) => {
                Epd7in3f::new(&mut spi, busy, dc, rst, &mut delay, Some(POLL_US)).map(Panel::F7in3)
            }
            (EpaperModel::Epd5in65f, Some(dc), _) => {
                Epd5in65f::new(&mut spi, busy, dc, rst, &mut delay, Some(POLL_US))
                    .map(Panel::F5in65)
            }
            (model @ (EpaperModel::Epd7in3e | EpaperModel::Inky7in3e), Some(dc), _) => {
                let vendor = match model {
                    EpaperModel::Inky7in3e => Vendor::Pimoroni,
                    _ => Vendor::Waveshare,
                };
                Spectra6::new(&mut spi, busy, dc, rst, &mut delay, vendor, POLL_US)
                    .map(Panel::Spectra6)
            }
            (_, None, _) => return Err(missing("DC")),
        };
        let panel = r.map_err(|e| Error::Image(format!("{what}: cannot initialise it: {e}")))?;
        let me = EpaperPanel {
            canvas: Canvas::new(w, h),
            panel,
            spi,
            delay,
            config: config.clone(),
            palette: config.model.palette(DEFAULT_SATURATION)?,
            stuck,
            asleep: false,
            what,
            _pwr: pwr,
        };
        me.check_busy()?;
        Ok(me)
    }

    fn check_busy(&self) -> Result<()> {
        if self.stuck.swap(false, Ordering::Relaxed) {
            return Err(Error::Image(format!(
                "{}: BUSY (GPIO {}) did not change for {} s: is the panel connected and powered{}?",
                self.what,
                self.config.busy,
                BUSY_LIMIT.as_secs(),
                if self.config.pwr.is_none() {
                    " (HATs with a PWR pin need pwr=18)"
                } else {
                    ""
                }
            )));
        }
        Ok(())
    }

    fn refresh(&mut self, buf: &[u8]) -> std::result::Result<(), SPI::Error> {
        let (spi, delay) = (&mut self.spi, &mut self.delay);
        with_panel!(&mut self.panel, p => {
            if self.asleep {
                p.wake_up(spi, delay)?;
                self.asleep = false;
            }
            p.update_and_display_frame(spi, buf, delay)?;
            p.sleep(spi, delay)?;
            self.asleep = true;
            Ok(())
        })
    }
}

draw_into_canvas!(EpaperPanel<SPI, P, B, D>, [SPI, P, B, D]);

impl<SPI, P, B, D> Display for EpaperPanel<SPI, P, B, D>
where
    SPI: SpiDevice,
    SPI::Error: std::fmt::Display,
    P: OutputPin,
    P::Error: std::fmt::Display,
    B: InputPin,
    D: DelayNs,
{
    fn describe(&self) -> String {
        self.what.clone()
    }

    fn show(&mut self) -> Result<()> {
        let model = self.config.model;
        let buf = pack(&self.canvas.image, model.size(), self.config.rotate, model);
        self.refresh(&buf)
            .map_err(|e| Error::Image(format!("{}: cannot send a frame: {e}", self.what)))?;
        self.check_busy()
    }

    fn min_refresh_interval(&self) -> Duration {
        self.config.model.min_refresh()
    }

    fn palette(&self) -> Option<&Palette> {
        Some(&self.palette)
    }
}
