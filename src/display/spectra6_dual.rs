//! The Waveshare 13.3" e-Paper (E): an E Ink Spectra 6 panel of 1200x1600 driven by two
//! controllers, each owning one half of every row (the left 600 pixels: the main one, on
//! CS_M; the right 600: the second, on CS_S).
//!
//! Written from Waveshare's published `EPD_13in3e` driver. Unlike the 7.3" panels there is no
//! DC line: a command is the first byte after a chip select falls, its data the bytes after,
//! until chip select rises. Some commands go to both controllers at once (both chip selects
//! low), some to the main one only. The chip selects are therefore GPIO lines petal drives
//! itself, held low across a whole 480,000-byte half frame; the kernel must leave them alone
//! (`dtoverlay=spi0-0cs`, see docs/frame.md), and the SPI device's own chip select goes
//! nowhere.
//!
//! BUSY is low while the controllers work; a refresh gets at least
//! [`super::spectra6::MIN_REFRESH_WAIT`], as on the 7.3" panels.

use std::time::Duration;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{InputPin, OutputPin};
use embedded_hal::spi::SpiDevice;

use super::spectra6::{finish_refresh, wait_idle};

/// Bytes of one controller's half of a row (600 of the 1200 pixels, two a byte).
const HALF_ROW: usize = 300;
/// spidev refuses writes larger than its buffer (4096 bytes by default).
const SPI_CHUNK: usize = 4096;

const POWER_OFF: u8 = 0x02;
const POWER_ON: u8 = 0x04;
const DEEP_SLEEP: u8 = 0x07;
const DATA_START: u8 = 0x10;
const DISPLAY_REFRESH: u8 = 0x12;

/// Which controllers a command goes to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
enum To {
    Main,
    Both,
}

/// Waveshare's initialisation, after the reset, in its order.
const INIT: &[(To, u8, &[u8])] = &[
    (
        To::Main,
        0x74,
        &[0xc0, 0x1c, 0x1c, 0xcc, 0xcc, 0xcc, 0x15, 0x15, 0x55],
    ),
    (To::Both, 0xf0, &[0x49, 0x55, 0x13, 0x5d, 0x05, 0x10]),
    (To::Both, 0x00, &[0xdf, 0x69]),
    (To::Both, 0x50, &[0xf7]),
    (To::Both, 0x60, &[0x03, 0x03]),
    (To::Both, 0x86, &[0x10]),
    (To::Both, 0xe3, &[0x22]),
    (To::Both, 0xe0, &[0x01]),
    (To::Both, 0x61, &[0x04, 0xb0, 0x03, 0x20]),
    (To::Main, 0x01, &[0x0f, 0x00, 0x28, 0x2c, 0x28, 0x38]),
    (To::Main, 0xb6, &[0x07]),
    (To::Main, 0x06, &[0xe8, 0x28]),
    (To::Main, 0xb7, &[0x01]),
    (To::Main, 0x05, &[0xe8, 0x28]),
    (To::Main, 0xb0, &[0x01]),
    (To::Main, 0xb1, &[0x02]),
];

/// The panel: its two chip selects, reset and BUSY.
pub struct Spectra6Dual<BUSY, P> {
    busy: BUSY,
    cs_main: P,
    cs_second: P,
    rst: P,
    poll_us: u32,
}

impl<BUSY: InputPin, P: OutputPin> Spectra6Dual<BUSY, P> {
    /// Resets and initialises both controllers.
    pub fn new<SPI: SpiDevice, D: DelayNs>(
        spi: &mut SPI,
        busy: BUSY,
        cs_main: P,
        cs_second: P,
        rst: P,
        delay: &mut D,
        poll_us: u32,
    ) -> Result<Self, SPI::Error> {
        let mut me = Spectra6Dual {
            busy,
            cs_main,
            cs_second,
            rst,
            poll_us,
        };
        me.deselect();
        me.wake_up(spi, delay)?;
        Ok(me)
    }

    /// Reset (twice, as the vendor does for the pair) and the settings again.
    pub fn wake_up<SPI: SpiDevice, D: DelayNs>(
        &mut self,
        spi: &mut SPI,
        delay: &mut D,
    ) -> Result<(), SPI::Error> {
        // Pin errors show up as a panel that does not answer (BUSY's time limit), which is
        // reported; see super::spectra6.
        for high in [true, false, true, false, true] {
            let _ = if high {
                self.rst.set_high()
            } else {
                self.rst.set_low()
            };
            delay.delay_ms(30);
        }
        self.wait_idle(delay);
        for (to, cmd, data) in INIT {
            self.command(spi, *to, *cmd, data)?;
        }
        Ok(())
    }

    /// Sends a whole frame (`buf`: 1200x1600 codes, two a byte, rows of 600 bytes), each half
    /// of every row to its controller, and refreshes the panel.
    pub fn update_and_display_frame<SPI: SpiDevice, D: DelayNs>(
        &mut self,
        spi: &mut SPI,
        buf: &[u8],
        delay: &mut D,
    ) -> Result<(), SPI::Error> {
        for (to_main, skip) in [(true, 0), (false, HALF_ROW)] {
            let half: Vec<u8> = buf
                .chunks(2 * HALF_ROW)
                .flat_map(|row| row.iter().skip(skip).take(HALF_ROW).copied())
                .collect();
            self.select(to_main, !to_main);
            let sent = self.send(spi, DATA_START, &half);
            self.deselect();
            sent?;
        }
        self.command(spi, To::Both, POWER_ON, &[])?;
        self.wait_idle(delay);
        delay.delay_ms(50);
        self.command(spi, To::Both, DISPLAY_REFRESH, &[0x00])?;
        let waited = self.wait_idle(delay);
        finish_refresh(waited, delay);
        self.command(spi, To::Both, POWER_OFF, &[0x00])?;
        Ok(())
    }

    /// Deep sleep for both; [`Self::wake_up`] ends it.
    pub fn sleep<SPI: SpiDevice, D: DelayNs>(
        &mut self,
        spi: &mut SPI,
        delay: &mut D,
    ) -> Result<(), SPI::Error> {
        self.command(spi, To::Both, DEEP_SLEEP, &[0xa5])?;
        delay.delay_ms(100);
        Ok(())
    }

    fn command<SPI: SpiDevice>(
        &mut self,
        spi: &mut SPI,
        to: To,
        cmd: u8,
        data: &[u8],
    ) -> Result<(), SPI::Error> {
        self.select(true, to == To::Both);
        let sent = self.send(spi, cmd, data);
        self.deselect();
        sent
    }

    /// The command byte and its data, while the chip selects are held.
    fn send<SPI: SpiDevice>(
        &mut self,
        spi: &mut SPI,
        cmd: u8,
        data: &[u8],
    ) -> Result<(), SPI::Error> {
        spi.write(&[cmd])?;
        for chunk in data.chunks(SPI_CHUNK) {
            spi.write(chunk)?;
        }
        Ok(())
    }

    fn select(&mut self, main: bool, second: bool) {
        if main {
            let _ = self.cs_main.set_low();
        }
        if second {
            let _ = self.cs_second.set_low();
        }
    }

    fn deselect(&mut self) {
        let _ = self.cs_main.set_high();
        let _ = self.cs_second.set_high();
    }

    fn wait_idle<D: DelayNs>(&mut self, delay: &mut D) -> Duration {
        wait_idle(&mut self.busy, delay, self.poll_us)
    }
}
