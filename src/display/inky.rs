//! Pimoroni Inky HATs name themselves: an EEPROM at I2C address 0x50 holds the panel's size,
//! colour and display variant. `epaper:inky` reads it and picks the panel, as Pimoroni's own
//! `inky.auto()` does, so a frame needs no model name.
//!
//! The record is 29 bytes, little-endian: width (u16), height (u16), colour (u8), PCB variant
//! (u8), display variant (u8), and the time it was written (a Pascal string, 22 bytes).

use super::epaper::EpaperModel;
use crate::error::{Error, Result};

pub const EEPROM_ADDRESS: u8 = 0x50;
pub const RECORD_LEN: usize = 29;

/// Display variants, by the number the EEPROM holds (Pimoroni's list).
const VARIANTS: &[&str] = &[
    "",
    "Red pHAT (High-Temp)",
    "Yellow wHAT",
    "Black wHAT",
    "Black pHAT",
    "Yellow pHAT",
    "Red wHAT",
    "Red wHAT (High-Temp)",
    "Red wHAT",
    "",
    "Black pHAT (SSD1608)",
    "Red pHAT (SSD1608)",
    "Yellow pHAT (SSD1608)",
    "",
    "7-Colour (UC8159)",
    "7-Colour 640x400 (UC8159)",
    "7-Colour 640x400 (UC8159)",
    "Black wHAT (SSD1683)",
    "Red wHAT (SSD1683)",
    "Yellow wHAT (SSD1683)",
    "7-Colour 800x480 (AC073TC1A)",
    "Spectra 6 13.3 1600x1200 (EL133UF1)",
    "Spectra 6 7.3 800x480 (E673)",
    "Red/Yellow pHAT (JD79661)",
    "Red/Yellow wHAT (JD79668)",
    "Spectra 6 4.0 600x400 (E640)",
    "Spectra 6 7.3 800x480 (E673) AC",
    "Spectra 6 13.3 1600x1200 (EL133UF1) AC",
];

/// The variants petal drives, and as which panel.
const DRIVEN: &[(u8, EpaperModel)] = &[(22, EpaperModel::Inky7in3e), (26, EpaperModel::Inky7in3e)];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct InkyEeprom {
    pub width: u16,
    pub height: u16,
    pub colour: u8,
    pub pcb_variant: u8,
    pub display_variant: u8,
    pub written: String,
}

impl InkyEeprom {
    pub fn parse(bytes: &[u8]) -> Result<Self> {
        if bytes.len() < RECORD_LEN {
            return Err(Error::Invalid(format!(
                "Inky EEPROM: {} bytes, a record is {RECORD_LEN}",
                bytes.len()
            )));
        }
        let u16_at = |i: usize| u16::from_le_bytes([bytes[i], bytes[i + 1]]);
        let text_len = usize::from(bytes[7]).min(RECORD_LEN - 8);
        let written = String::from_utf8_lossy(&bytes[8..8 + text_len]).into_owned();
        Ok(InkyEeprom {
            width: u16_at(0),
            height: u16_at(2),
            colour: bytes[4],
            pcb_variant: bytes[5],
            display_variant: bytes[6],
            written,
        })
    }

    /// The variant's name, as Pimoroni lists it.
    pub fn variant_name(&self) -> String {
        match VARIANTS.get(usize::from(self.display_variant)) {
            Some(n) if !n.is_empty() => (*n).to_string(),
            _ => format!("unknown variant {}", self.display_variant),
        }
    }

    /// The panel petal drives for this HAT, or an error naming it and what petal drives.
    pub fn model(&self) -> Result<EpaperModel> {
        let found = DRIVEN
            .iter()
            .find(|(v, _)| *v == self.display_variant)
            .map(|(_, m)| *m);
        match found {
            Some(m) if m.size() == (u32::from(self.width), u32::from(self.height)) => Ok(m),
            _ => Err(Error::Invalid(format!(
                "this Inky is a {} ({}x{}), which petal does not drive; it drives the Inky Impression 7.3\" Spectra 6 (epaper:inky-7in3e) and Waveshare's panels (epaper:7in3f, 5in65f, 7in3e)",
                self.variant_name(),
                self.width,
                self.height
            ))),
        }
    }
}

/// Reads the record over any embedded-hal I2C bus: the EEPROM's 16-bit address 0, then 29
/// bytes. No answer means no Inky (or I2C not enabled).
#[cfg(feature = "epaper")]
pub fn read_eeprom<I: embedded_hal::i2c::I2c>(i2c: &mut I) -> Result<InkyEeprom> {
    let mut buf = [0u8; RECORD_LEN];
    i2c.write_read(EEPROM_ADDRESS, &[0, 0], &mut buf)
        .map_err(|e| {
            Error::Invalid(format!(
                "no Inky EEPROM answers at I2C address 0x50 ({e:?}): is the HAT on, and I2C enabled (dtparam=i2c_arm=on)? Or name the panel: epaper:inky-7in3e"
            ))
        })?;
    InkyEeprom::parse(&buf)
}
