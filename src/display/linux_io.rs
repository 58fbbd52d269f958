//! Opening a panel's SPI device (spidev) and GPIO lines (the GPIO character device) on Linux,
//! with errors that say which file or line is wrong and what usually fixes it.
//!
//! A missing device or a permission problem is [`Error::Invalid`] (the panel cannot work as
//! configured: `petal frame` stops at start); anything else is an I/O error the frame loop
//! retries.
//!
//! Also the frame's push buttons ([`open_buttons`]), which are GPIO lines too.

// A build with only `buttons` uses the GPIO half of this module.
#![cfg_attr(not(any(feature = "spi", feature = "epaper")), allow(dead_code))]

use std::io::ErrorKind;
use std::path::Path;

use linux_embedded_hal::gpio_cdev::{Chip, LineRequestFlags};
use linux_embedded_hal::spidev::{SpiModeFlags, SpidevOptions};
use linux_embedded_hal::{CdevPin, SpidevDevice};

use crate::error::{Error, Result};

fn open_error(what: &str, path: &Path, e: &std::io::Error, hint: &str) -> Error {
    match e.kind() {
        ErrorKind::NotFound => {
            Error::Invalid(format!("{what}: {} does not exist{hint}", path.display()))
        }
        ErrorKind::PermissionDenied => Error::Invalid(format!(
            "{what}: no permission to open {} (add the user to its group: spi, gpio)",
            path.display()
        )),
        _ => Error::Image(format!("{what}: cannot open {}: {e}", path.display())),
    }
}

const SPI_HINT: &str =
    " (enable SPI: dtparam=spi=on in /boot/firmware/config.txt, or name the device: dev=/dev/spidevB.C)";
const GPIO_HINT: &str = " (name the GPIO chip: gpiochip=/dev/gpiochipN; `gpiodetect` lists them)";

/// Both device files are looked for before either is opened, so a missing one is named first,
/// whichever it is.
fn must_exist(what: &str, path: &Path, hint: &str) -> Result<()> {
    if path.exists() {
        return Ok(());
    }
    Err(Error::Invalid(format!(
        "{what}: {} does not exist{hint}",
        path.display()
    )))
}

/// The SPI device, at `hz`, mode 0.
pub fn open_spi_device(what: &str, path: &Path, hz: u32) -> Result<SpidevDevice> {
    let mut spi =
        SpidevDevice::open(path).map_err(|e| open_error(what, path, e.inner(), SPI_HINT))?;
    let options = SpidevOptions::new()
        .bits_per_word(8)
        .max_speed_hz(hz)
        .mode(SpiModeFlags::SPI_MODE_0)
        .build();
    spi.configure(&options).map_err(|e| {
        Error::Invalid(format!(
            "{what}: {} is not an SPI device that takes {} MHz, mode 0: {e}",
            path.display(),
            hz / 1_000_000
        ))
    })?;
    Ok(spi)
}

/// The GPIO lines of one chip, requested under the name "petal".
pub struct Gpio {
    chip: Chip,
    what: String,
}

impl Gpio {
    pub fn open(what: &str, path: &Path) -> Result<Self> {
        // gpio-cdev's error does not tell "cannot open" from "not a chip"; opening it again does.
        let chip = Chip::new(path).map_err(|e| {
            match std::fs::OpenOptions::new()
                .read(true)
                .write(true)
                .open(path)
            {
                Err(io) => open_error(what, path, &io, GPIO_HINT),
                Ok(_) => Error::Invalid(format!(
                    "{what}: {} is not a GPIO chip: {e}",
                    path.display()
                )),
            }
        })?;
        Ok(Gpio {
            chip,
            what: format!("{what}: GPIO chip {}", path.display()),
        })
    }

    fn line(&mut self, name: &str, n: u32, flags: LineRequestFlags, level: u8) -> Result<CdevPin> {
        let what = &self.what;
        let line = self
            .chip
            .get_line(n)
            .map_err(|e| Error::Invalid(format!("{what} has no line {n} for {name}: {e}")))?;
        let handle = line.request(flags, level, "petal").map_err(|e| {
            Error::Image(format!(
                "{what}: cannot use line {n} for {name} (busy? another program or a kernel driver may hold it): {e}"
            ))
        })?;
        CdevPin::new(handle).map_err(|e| Error::Image(format!("{what}: line {n} for {name}: {e}")))
    }

    pub fn output(&mut self, name: &str, n: u32, high: bool) -> Result<CdevPin> {
        self.line(name, n, LineRequestFlags::OUTPUT, u8::from(high))
    }

    pub fn input(&mut self, name: &str, n: u32) -> Result<CdevPin> {
        self.line(name, n, LineRequestFlags::INPUT, 0)
    }
}

/// The buttons' lines on `gpiochip`, as inputs; the returned reader gives their levels in
/// order (high: released). Their pull-ups come from the board (see docs/frame.md): the GPIO
/// character device of this kernel interface cannot set them.
#[cfg(feature = "buttons")]
pub fn open_buttons(
    gpiochip: &Path,
    gpios: &[u32],
) -> Result<impl FnMut() -> Result<Vec<bool>> + Send + 'static> {
    use embedded_hal::digital::InputPin;
    let what = "buttons";
    must_exist(what, gpiochip, GPIO_HINT)?;
    let mut gpio = Gpio::open(what, gpiochip)?;
    let mut lines = Vec::new();
    for &n in gpios {
        lines.push((n, gpio.input(&format!("button on GPIO {n}"), n)?));
    }
    Ok(move || {
        lines
            .iter_mut()
            .map(|(n, pin)| {
                pin.is_high()
                    .map_err(|e| Error::Image(format!("buttons: cannot read GPIO {n}: {e:?}")))
            })
            .collect()
    })
}

/// `c` with the panel an Inky HAT's EEPROM on `bus` names.
#[cfg(feature = "epaper")]
fn detect_inky(c: &super::epaper::EpaperConfig, bus: &Path) -> Result<super::epaper::EpaperConfig> {
    let what = "epaper inky";
    must_exist(
        what,
        bus,
        " (enable I2C: dtparam=i2c_arm=on in /boot/firmware/config.txt; or name the panel: epaper:inky-7in3e)",
    )?;
    let mut i2c = linux_embedded_hal::I2cdev::new(bus).map_err(|e| {
        // i2cdev's error hides the kind; opening the file again tells "no permission" apart.
        match std::fs::OpenOptions::new().read(true).write(true).open(bus) {
            Err(io) => open_error(what, bus, &io, ""),
            Ok(_) => Error::Image(format!("{what}: cannot use {}: {e}", bus.display())),
        }
    })?;
    let eeprom = super::inky::read_eeprom(&mut i2c)?;
    let mut c = c.clone();
    c.model = eeprom.model()?;
    c.detect_on = None;
    Ok(c)
}

#[cfg(feature = "spi")]
pub type LinuxSpiPanel = super::spi_panel::SpiPanel<SpidevDevice, CdevPin>;

#[cfg(feature = "spi")]
pub fn open_spi(c: &super::spi::SpiConfig) -> Result<LinuxSpiPanel> {
    let what = format!("spi {} on {}", c.model.name(), c.device.display());
    must_exist(&what, &c.device, SPI_HINT)?;
    must_exist(&what, &c.gpiochip, GPIO_HINT)?;
    let mut gpio = Gpio::open(&what, &c.gpiochip)?;
    let spi = open_spi_device(&what, &c.device, c.hz)?;
    let dc = gpio.output("dc", c.dc, false)?;
    let rst = c.rst.map(|n| gpio.output("rst", n, true)).transpose()?;
    // Dark until the first frame is on the panel.
    let bl = c
        .backlight
        .map(|n| gpio.output("bl", n, false))
        .transpose()?;
    super::spi_panel::SpiPanel::new(c, spi, dc, rst, bl, &mut linux_embedded_hal::Delay)
}

#[cfg(feature = "epaper")]
pub type LinuxEpaperPanel =
    super::epaper_panel::EpaperPanel<SpidevDevice, CdevPin, CdevPin, linux_embedded_hal::Delay>;

#[cfg(feature = "epaper")]
pub fn open_epaper(c: &super::epaper::EpaperConfig) -> Result<LinuxEpaperPanel> {
    let detected;
    let c = match &c.detect_on {
        Some(bus) => {
            detected = detect_inky(c, bus)?;
            &detected
        }
        None => c,
    };
    let what = format!("epaper {} on {}", c.model.name(), c.device.display());
    must_exist(&what, &c.device, SPI_HINT)?;
    must_exist(&what, &c.gpiochip, GPIO_HINT)?;
    let mut gpio = Gpio::open(&what, &c.gpiochip)?;
    let spi = open_spi_device(&what, &c.device, c.hz)?;
    let pins = super::epaper_panel::PanelPins {
        dc: (!c.model.is_dual())
            .then(|| gpio.output("dc", c.dc, false))
            .transpose()?,
        rst: gpio.output("rst", c.rst, true)?,
        busy: gpio.input("busy", c.busy)?,
        pwr: c.pwr.map(|n| gpio.output("pwr", n, false)).transpose()?,
        // Deselected (high) from the start; the kernel must not drive them too
        // (dtoverlay=spi0-0cs), or the request fails as busy.
        cs: match c.cs {
            Some((m, s)) => Some((gpio.output("cs-m", m, true)?, gpio.output("cs-s", s, true)?)),
            None => None,
        },
    };
    super::epaper_panel::EpaperPanel::new(
        c,
        spi,
        pins,
        linux_embedded_hal::Delay,
        super::epaper_panel::BUSY_LIMIT,
    )
}
