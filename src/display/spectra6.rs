//! E Ink Spectra 6 panels with one controller (Waveshare 7.3" E, Pimoroni Inky Impression 7.3"
//! 2025; the 13.3" and its two are in [`super::spectra6_dual`]): the controller's command
//! sequences, over any embedded-hal 1.0 SPI device and pins.
//!
//! epd-waveshare 0.6 has no driver for these panels, so the sequences are written here from the
//! vendors' published drivers (Waveshare's `epd7in3e`, Pimoroni's `inky_e673`): the same
//! controller, initialised slightly differently by each vendor, so each keeps its own table.
//! The methods mirror epd-waveshare's (`wake_up`, `update_and_display_frame`, `sleep`), so
//! [`super::epaper_panel`] drives every panel the same way.
//!
//! BUSY is low while the controller works. Some panels release it before a refresh has
//! finished; a command sent then cuts the refresh short and leaves a faint or streaked picture.
//! So a refresh always takes at least [`MIN_REFRESH_WAIT`], whatever BUSY says.

use std::time::Duration;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};
use embedded_hal::spi::SpiDevice;

/// Shorter than any full Spectra 6 refresh (13-20 s at room temperature by the vendors'
/// figures, longer when cold).
pub const MIN_REFRESH_WAIT: Duration = Duration::from_secs(20);

/// spidev refuses writes larger than its buffer (4096 bytes by default).
const SPI_CHUNK: usize = 4096;

const PANEL_SETTING: u8 = 0x00;
const POWER_OFF: u8 = 0x02;
const POWER_ON: u8 = 0x04;
const BOOSTER_2: u8 = 0x06;
const DEEP_SLEEP: u8 = 0x07;
const DATA_START: u8 = 0x10;
const DISPLAY_REFRESH: u8 = 0x12;

/// Whose initialisation the panel gets.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Vendor {
    Waveshare,
    Pimoroni,
}

type Sequence = &'static [(u8, &'static [u8])];

/// Waveshare's `epd7in3e` initialisation, after the reset.
const WAVESHARE_INIT: Sequence = &[
    (0xaa, &[0x49, 0x55, 0x20, 0x08, 0x09, 0x18]),
    (0x01, &[0x3f]),
    (PANEL_SETTING, &[0x5f, 0x69]),
    (0x03, &[0x00, 0x54, 0x00, 0x44]),
    (0x05, &[0x40, 0x1f, 0x1f, 0x2c]),
    (BOOSTER_2, &[0x6f, 0x1f, 0x17, 0x49]),
    (0x08, &[0x6f, 0x1f, 0x1f, 0x22]),
    (0x30, &[0x03]),
    (0x50, &[0x3f]),
    (0x60, &[0x02, 0x00]),
    (0x61, &[0x03, 0x20, 0x01, 0xe0]),
    (0x84, &[0x01]),
    (0xe3, &[0x2f]),
];

/// Pimoroni's `inky_e673` initialisation: a different PLL and VCOM setting, and the second
/// booster setting only just before each refresh.
const PIMORONI_INIT: Sequence = &[
    (0xaa, &[0x49, 0x55, 0x20, 0x08, 0x09, 0x18]),
    (0x01, &[0x3f]),
    (PANEL_SETTING, &[0x5f, 0x69]),
    (0x05, &[0x40, 0x1f, 0x1f, 0x2c]),
    (0x08, &[0x6f, 0x1f, 0x1f, 0x22]),
    (BOOSTER_2, &[0x6f, 0x1f, 0x17, 0x17]),
    (0x03, &[0x00, 0x54, 0x00, 0x44]),
    (0x60, &[0x02, 0x00]),
    (0x30, &[0x08]),
    (0x50, &[0x3f]),
    (0x61, &[0x03, 0x20, 0x01, 0xe0]),
    (0xe3, &[0x2f]),
    (0x82, &[0x01]),
];

impl Vendor {
    fn init(self) -> Sequence {
        match self {
            Vendor::Waveshare => WAVESHARE_INIT,
            Vendor::Pimoroni => PIMORONI_INIT,
        }
    }

    /// Sent between power-on and the refresh.
    fn before_refresh(self) -> Sequence {
        match self {
            Vendor::Waveshare => &[],
            Vendor::Pimoroni => &[(BOOSTER_2, &[0x6f, 0x1f, 0x17, 0x49])],
        }
    }
}

/// One Spectra 6 panel, 800x480, 4 bits a pixel (codes in [`super::dither::SPECTRA6_CODES`]).
pub struct Spectra6<BUSY, DC, RST> {
    busy: BUSY,
    dc: DC,
    rst: RST,
    vendor: Vendor,
    poll_us: u32,
}

impl<BUSY: InputPin, DC: OutputPin, RST: OutputPin> Spectra6<BUSY, DC, RST> {
    /// Resets and initialises the panel, like epd-waveshare's constructors.
    pub fn new<SPI: SpiDevice, D: DelayNs>(
        spi: &mut SPI,
        busy: BUSY,
        dc: DC,
        rst: RST,
        delay: &mut D,
        vendor: Vendor,
        poll_us: u32,
    ) -> Result<Self, SPI::Error> {
        let mut me = Spectra6 {
            busy,
            dc,
            rst,
            vendor,
            poll_us,
        };
        me.wake_up(spi, delay)?;
        Ok(me)
    }

    /// Out of deep sleep, only a reset wakes the controller; it then needs its settings again.
    pub fn wake_up<SPI: SpiDevice, D: DelayNs>(
        &mut self,
        spi: &mut SPI,
        delay: &mut D,
    ) -> Result<(), SPI::Error> {
        // Pin errors are not SPI errors; like epd-waveshare, a pin that cannot be set shows up
        // as a panel that does not answer (BUSY's time limit), which is reported.
        let _ = self.rst.set_high();
        delay.delay_ms(20);
        let _ = self.rst.set_low();
        delay.delay_ms(2);
        let _ = self.rst.set_high();
        delay.delay_ms(20);
        self.wait_idle(delay);
        delay.delay_ms(30);
        for (cmd, data) in self.vendor.init() {
            self.command(spi, *cmd, data)?;
        }
        Ok(())
    }

    /// Sends a whole frame (`buf`: 800x480 codes, two a byte) and refreshes the panel.
    pub fn update_and_display_frame<SPI: SpiDevice, D: DelayNs>(
        &mut self,
        spi: &mut SPI,
        buf: &[u8],
        delay: &mut D,
    ) -> Result<(), SPI::Error> {
        self.command(spi, DATA_START, buf)?;
        self.command(spi, POWER_ON, &[])?;
        self.wait_idle(delay);
        for (cmd, data) in self.vendor.before_refresh() {
            self.command(spi, *cmd, data)?;
        }
        self.command(spi, DISPLAY_REFRESH, &[0x00])?;
        let waited = self.wait_idle(delay);
        finish_refresh(waited, delay);
        self.command(spi, POWER_OFF, &[0x00])?;
        self.wait_idle(delay);
        Ok(())
    }

    /// Deep sleep: the panel keeps its picture and draws no current; [`Self::wake_up`] ends it.
    pub fn sleep<SPI: SpiDevice, D: DelayNs>(
        &mut self,
        spi: &mut SPI,
        delay: &mut D,
    ) -> Result<(), SPI::Error> {
        self.command(spi, DEEP_SLEEP, &[0xa5])?;
        delay.delay_ms(100);
        Ok(())
    }

    fn command<SPI: SpiDevice>(
        &mut self,
        spi: &mut SPI,
        cmd: u8,
        data: &[u8],
    ) -> Result<(), SPI::Error> {
        let _ = self.dc.set_low();
        spi.write(&[cmd])?;
        if !data.is_empty() {
            let _ = self.dc.set_high();
            for chunk in data.chunks(SPI_CHUNK) {
                spi.write(chunk)?;
            }
        }
        Ok(())
    }

    fn wait_idle<D: DelayNs>(&mut self, delay: &mut D) -> Duration {
        wait_idle(&mut self.busy, delay, self.poll_us)
    }
}

/// Polls BUSY until it is high (idle) and returns how long that was asked to take. A read
/// error ends the wait: the watched BUSY pin gives one when the line is stuck.
pub(super) fn wait_idle<B: InputPin, D: DelayNs>(
    busy: &mut B,
    delay: &mut D,
    poll_us: u32,
) -> Duration {
    let mut waited = Duration::ZERO;
    while matches!(busy.is_high(), Ok(false)) {
        delay.delay_us(poll_us);
        waited += Duration::from_micros(u64::from(poll_us));
    }
    waited
}

/// Waits out what is left of [`MIN_REFRESH_WAIT`] after a refresh BUSY said took `waited`.
pub(super) fn finish_refresh<D: DelayNs>(waited: Duration, delay: &mut D) {
    if let Some(rest) = MIN_REFRESH_WAIT.checked_sub(waited) {
        delay.delay_ms(rest.as_millis() as u32);
    }
}
