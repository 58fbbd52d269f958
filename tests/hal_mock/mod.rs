//! Recording stand-ins for embedded-hal 1.0 SPI devices, pins and delays: what a panel driver
//! sends, in order, split into commands and their data by the data/command line's level, or,
//! for panels without one, into frames by the chip-select pins (named `cs-...`) held low.

#![allow(dead_code)]

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, MutexGuard};
use std::time::Duration;

use embedded_hal::delay::DelayNs;
use embedded_hal::digital::{self, InputPin, OutputPin};
use embedded_hal::spi::{self, Operation, SpiDevice};

#[derive(Debug, Clone, PartialEq)]
pub enum Sent {
    Command(u8),
    /// Consecutive data writes, joined.
    Data(Vec<u8>),
}

#[derive(Debug, Default)]
struct Log {
    dc_high: bool,
    sent: Vec<Sent>,
    /// Output pins' changes, by name, in order.
    pins: Vec<(String, bool)>,
    spi_fails: bool,
    busy_reads: u64,
    /// Chip-select pins now low, and the bytes written while any was, one entry per frame
    /// (from the first write after some went low until all are high again).
    selected: Vec<String>,
    frame_open: bool,
    frames: Vec<(Vec<String>, Vec<u8>)>,
}

/// Everything the driver does, shared by the SPI device and pins made from it.
#[derive(Clone, Default)]
pub struct Wire(Arc<Mutex<Log>>);

impl Wire {
    fn log(&self) -> MutexGuard<'_, Log> {
        self.0.lock().unwrap_or_else(|e| e.into_inner())
    }

    pub fn spi(&self) -> Spi {
        Spi(self.clone())
    }

    /// An output pin; the one named "dc" is the data/command line.
    pub fn pin(&self, name: &str) -> Pin {
        Pin {
            wire: self.clone(),
            name: name.to_string(),
            busy: Busy::Idle,
        }
    }

    /// A BUSY input.
    pub fn busy(&self, busy: Busy) -> Pin {
        Pin {
            wire: self.clone(),
            name: "busy".into(),
            busy,
        }
    }

    /// What was written while chip selects were low: the selected pins (sorted) and the bytes.
    pub fn frames(&self) -> Vec<(Vec<String>, Vec<u8>)> {
        self.log().frames.clone()
    }

    pub fn sent(&self) -> Vec<Sent> {
        self.log().sent.clone()
    }

    /// Each command with the data sent after it.
    pub fn commands(&self) -> Vec<(u8, Vec<u8>)> {
        let mut out: Vec<(u8, Vec<u8>)> = Vec::new();
        for s in self.sent() {
            match s {
                Sent::Command(c) => out.push((c, Vec::new())),
                Sent::Data(d) => match out.last_mut() {
                    Some(last) => last.1.extend(d),
                    None => panic!("data before any command: {} bytes", d.len()),
                },
            }
        }
        out
    }

    pub fn pins(&self) -> Vec<(String, bool)> {
        self.log().pins.clone()
    }

    pub fn clear(&self) {
        let mut l = self.log();
        l.sent.clear();
        l.pins.clear();
        l.frames.clear();
    }

    /// Every SPI write fails from now on, like a device that went away.
    pub fn fail_spi(&self) {
        self.log().spi_fails = true;
    }

    pub fn busy_reads(&self) -> u64 {
        self.log().busy_reads
    }
}

pub struct Spi(Wire);

impl spi::ErrorType for Spi {
    type Error = spi::ErrorKind;
}

impl SpiDevice for Spi {
    fn transaction(&mut self, ops: &mut [Operation<'_, u8>]) -> Result<(), spi::ErrorKind> {
        let mut log = self.0.log();
        if log.spi_fails {
            return Err(spi::ErrorKind::Other);
        }
        for op in ops {
            match op {
                Operation::Write(bytes) => {
                    if !log.selected.is_empty() {
                        if log.frame_open {
                            if let Some(f) = log.frames.last_mut() {
                                f.1.extend_from_slice(bytes);
                            }
                        } else {
                            let mut who = log.selected.clone();
                            who.sort();
                            log.frames.push((who, bytes.to_vec()));
                            log.frame_open = true;
                        }
                    }
                    if log.dc_high {
                        match log.sent.last_mut() {
                            Some(Sent::Data(d)) => d.extend_from_slice(bytes),
                            _ => log.sent.push(Sent::Data(bytes.to_vec())),
                        }
                    } else {
                        log.sent.extend(bytes.iter().map(|b| Sent::Command(*b)));
                    }
                }
                Operation::Read(buf) | Operation::TransferInPlace(buf) => buf.fill(0),
                Operation::Transfer(read, _) => read.fill(0),
                Operation::DelayNs(_) => {}
            }
        }
        Ok(())
    }
}

/// How a BUSY input behaves.
#[derive(Debug, Clone, Copy, PartialEq)]
pub enum Busy {
    /// A panel that answers: the level flips on every read, so a wait for either level ends
    /// within two reads.
    Idle,
    /// A line that never changes (no panel): always this level.
    Stuck(bool),
}

pub struct Pin {
    wire: Wire,
    name: String,
    busy: Busy,
}

impl digital::ErrorType for Pin {
    type Error = digital::ErrorKind;
}

impl Pin {
    fn set(&mut self, high: bool) {
        let mut log = self.wire.log();
        if self.name == "dc" {
            log.dc_high = high;
        } else {
            if self.name.starts_with("cs-") {
                log.selected.retain(|n| n != &self.name);
                if !high {
                    log.selected.push(self.name.clone());
                } else if log.selected.is_empty() {
                    log.frame_open = false;
                }
            }
            log.pins.push((self.name.clone(), high));
        }
    }
}

impl OutputPin for Pin {
    fn set_low(&mut self) -> Result<(), digital::ErrorKind> {
        self.set(false);
        Ok(())
    }
    fn set_high(&mut self) -> Result<(), digital::ErrorKind> {
        self.set(true);
        Ok(())
    }
}

impl InputPin for Pin {
    fn is_high(&mut self) -> Result<bool, digital::ErrorKind> {
        let mut log = self.wire.log();
        log.busy_reads += 1;
        Ok(match self.busy {
            Busy::Idle => log.busy_reads.is_multiple_of(2),
            Busy::Stuck(level) => level,
        })
    }
    fn is_low(&mut self) -> Result<bool, digital::ErrorKind> {
        self.is_high().map(|h| !h)
    }
}

/// Waits nothing: the drivers' delays would make the tests take seconds.
pub struct NoDelay;

impl DelayNs for NoDelay {
    fn delay_ns(&mut self, _ns: u32) {}
}

/// Waits nothing but adds up what it was asked to wait.
#[derive(Clone, Default)]
pub struct CountingDelay(Arc<AtomicU64>);

impl CountingDelay {
    pub fn total(&self) -> Duration {
        Duration::from_nanos(self.0.load(Ordering::Relaxed))
    }

    pub fn reset(&self) {
        self.0.store(0, Ordering::Relaxed);
    }
}

impl DelayNs for CountingDelay {
    fn delay_ns(&mut self, ns: u32) {
        self.0.fetch_add(u64::from(ns), Ordering::Relaxed);
    }
}
