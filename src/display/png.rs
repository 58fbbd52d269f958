//! `png:DIR` — each shown frame written as a numbered PNG, plus `current.png`, always the
//! latest, replaced atomically (a web server or a picture viewer can serve it at any moment).

use std::path::{Path, PathBuf};

use image::RgbImage;

use super::canvas::draw_into_canvas;
use super::{Canvas, Display};
use crate::error::{Error, Result};
use crate::picture::write_atomic;

pub const CURRENT: &str = "current.png";
const PREFIX: &str = "frame-";

pub struct PngDisplay {
    dir: PathBuf,
    canvas: Canvas,
    /// Numbered frames kept (oldest deleted); `None`: all.
    keep: Option<u64>,
    next: u64,
    bytes: Vec<u8>,
}

fn frame_number(name: &str) -> Option<u64> {
    name.strip_prefix(PREFIX)?
        .strip_suffix(".png")?
        .parse()
        .ok()
}

impl PngDisplay {
    /// Writes into `dir` (which must exist). Numbering continues after frames already there;
    /// temporary files of a killed petal are removed.
    pub fn open(dir: &Path, width: u32, height: u32, keep: Option<u64>) -> Result<Self> {
        if !dir.is_dir() {
            return Err(Error::Invalid(format!(
                "png display: {} is not a directory (create it, or give an existing one: png:DIR)",
                dir.display()
            )));
        }
        crate::atomic_file::remove_stale_temp_files(dir)?;
        let last = std::fs::read_dir(dir)
            .map_err(|e| Error::io(dir, e))?
            .filter_map(|e| e.ok())
            .filter_map(|e| frame_number(&e.file_name().to_string_lossy()))
            .max();
        Ok(PngDisplay {
            dir: dir.to_path_buf(),
            canvas: Canvas::new(width, height),
            keep,
            next: last.map_or(1, |n| n + 1),
            bytes: Vec::new(),
        })
    }

    pub fn frame_path(&self, n: u64) -> PathBuf {
        self.dir.join(format!("{PREFIX}{n:06}.png"))
    }

    /// Writes the encoded frame; on a full disk, deletes the oldest numbered frames until it fits
    /// (the newest picture on the screen matters more than old frames).
    fn write_making_room(&self, path: &Path) -> Result<()> {
        loop {
            match write_atomic(path, &self.bytes) {
                Err(e) if e.is_out_of_space() => {
                    let oldest = std::fs::read_dir(&self.dir)
                        .map_err(|e| Error::io(&self.dir, e))?
                        .filter_map(|e| e.ok())
                        .filter_map(|e| frame_number(&e.file_name().to_string_lossy()))
                        .min();
                    match oldest {
                        Some(n) => match std::fs::remove_file(self.frame_path(n)) {
                            Ok(()) => {}
                            Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                            Err(e) => return Err(Error::io(self.frame_path(n), e)),
                        },
                        None => return Err(e),
                    }
                }
                r => return r,
            }
        }
    }

    /// The image in the off-screen buffer.
    pub fn buffer(&self) -> &RgbImage {
        &self.canvas.image
    }
}

draw_into_canvas!(PngDisplay);

impl Display for PngDisplay {
    fn describe(&self) -> String {
        let (w, h) = self.canvas.image.dimensions();
        format!("png {} {w}x{h}", self.dir.display())
    }

    fn show(&mut self) -> Result<()> {
        use image::codecs::png::{CompressionType, FilterType, PngEncoder};
        self.bytes.clear();
        let enc = PngEncoder::new_with_quality(
            &mut self.bytes,
            CompressionType::Fast,
            FilterType::Adaptive,
        );
        self.canvas
            .image
            .write_with_encoder(enc)
            .map_err(|e| Error::Image(format!("PNG encoding failed: {e}")))?;
        if self.keep != Some(0) {
            let n = self.next;
            self.write_making_room(&self.frame_path(n))?;
            self.next += 1;
            if let Some(keep) = self.keep {
                if n > keep {
                    let old = self.frame_path(n - keep);
                    match std::fs::remove_file(&old) {
                        Ok(()) => {}
                        Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                        Err(e) => return Err(Error::io(old, e)),
                    }
                }
            }
        }
        self.write_making_room(&self.dir.join(CURRENT))
    }
}
