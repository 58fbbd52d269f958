//! From model-space tensors to pictures on disk: value mapping, grids, upscaling, PNG text
//! metadata and atomic writes (a power cut never leaves a half-written picture).

use std::path::Path;

use image::{imageops::FilterType, ImageFormat, RgbImage};

use crate::error::{Error, Result};

/// PNG text key under which the generation parameters are stored as JSON.
pub const METADATA_KEY: &str = "petal";

#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum Filter {
    Nearest,
    Lanczos,
}

impl std::str::FromStr for Filter {
    type Err = Error;
    fn from_str(s: &str) -> Result<Self> {
        match s {
            "nearest" => Ok(Filter::Nearest),
            "lanczos" => Ok(Filter::Lanczos),
            _ => Err(Error::Invalid(format!(
                "unknown filter {s:?} (expected nearest or lanczos)"
            ))),
        }
    }
}

/// Maps one CHW tensor in `range` to 8-bit RGB; values outside the range are clamped.
pub fn tensor_to_rgb(x: &[f32], channels: usize, side: usize, range: [f32; 2]) -> Result<RgbImage> {
    let plane = side * side;
    if channels != 3 || x.len() != channels * plane {
        return Err(Error::Image(format!(
            "cannot make an RGB picture from {} values with {channels} channels at {side} px",
            x.len()
        )));
    }
    let scale = 255.0 / (range[1] - range[0]);
    let px = |v: f32| ((v - range[0]) * scale).round().clamp(0.0, 255.0) as u8;
    Ok(RgbImage::from_fn(side as u32, side as u32, |col, row| {
        let i = row as usize * side + col as usize;
        image::Rgb([px(x[i]), px(x[plane + i]), px(x[2 * plane + i])])
    }))
}

pub fn upscale(img: &RgbImage, size: u32, filter: Filter) -> RgbImage {
    if img.width() == size && img.height() == size {
        return img.clone();
    }
    let f = match filter {
        Filter::Nearest => FilterType::Nearest,
        Filter::Lanczos => FilterType::Lanczos3,
    };
    image::imageops::resize(img, size, size, f)
}

/// Columns of the grid for `n` tiles: as square as possible, wider than tall.
pub fn grid_columns(n: usize) -> usize {
    (n as f64).sqrt().ceil().max(1.0) as usize
}

/// Tiles laid out row by row, `cols` wide, no gaps; empty cells stay black.
pub fn grid(tiles: &[RgbImage], cols: usize) -> RgbImage {
    let (w, h) = tiles
        .first()
        .map(|t| (t.width(), t.height()))
        .unwrap_or((0, 0));
    let cols = cols.max(1);
    let rows = tiles.len().div_ceil(cols);
    let mut out = RgbImage::new(w * cols as u32, h * rows as u32);
    for (i, tile) in tiles.iter().enumerate() {
        let (r, c) = (i / cols, i % cols);
        image::imageops::replace(&mut out, tile, (c as u32 * w) as i64, (r as u32 * h) as i64);
    }
    out
}

/// Writes `img` to `path` (PNG or JPEG by extension) via a temp file in the same directory
/// and a rename. PNGs carry `metadata` as text chunks.
pub fn save_atomic(img: &RgbImage, path: &Path, metadata: &[(&str, String)]) -> Result<()> {
    let mut bytes = Vec::new();
    match output_format(path)? {
        ImageFormat::Png => encode_png(img, metadata, &mut bytes)?,
        _ => {
            let enc = image::codecs::jpeg::JpegEncoder::new_with_quality(&mut bytes, 92);
            img.write_with_encoder(enc)
                .map_err(|e| Error::Image(format!("JPEG encoding failed: {e}")))?;
        }
    }
    write_atomic(path, &bytes)
}

/// The format a picture is written in, from its extension: PNG or JPEG. Checked before any
/// painting, so a wrong name costs no time.
pub fn output_format(path: &Path) -> Result<ImageFormat> {
    match ImageFormat::from_path(path) {
        Ok(f @ (ImageFormat::Png | ImageFormat::Jpeg)) => Ok(f),
        _ => Err(Error::Invalid(format!(
            "output {} must end in .png, .jpg or .jpeg",
            path.display()
        ))),
    }
}

pub use crate::atomic_file::write_atomic;

fn encode_png(img: &RgbImage, metadata: &[(&str, String)], out: &mut Vec<u8>) -> Result<()> {
    let err = |e: png::EncodingError| Error::Image(format!("PNG encoding failed: {e}"));
    let mut enc = png::Encoder::new(out, img.width(), img.height());
    enc.set_color(png::ColorType::Rgb);
    enc.set_depth(png::BitDepth::Eight);
    for (k, v) in metadata {
        enc.add_itxt_chunk(k.to_string(), v.clone()).map_err(err)?;
    }
    let mut writer = enc.write_header().map_err(err)?;
    writer.write_image_data(img.as_raw()).map_err(err)?;
    writer.finish().map_err(err)
}

/// Reads the text chunk `key` from a PNG file.
pub fn read_png_text(path: &Path, key: &str) -> Result<Option<String>> {
    let file = std::fs::File::open(path).map_err(|e| Error::io(path, e))?;
    png_text(
        std::io::BufReader::new(file),
        &path.display().to_string(),
        key,
    )
}

/// The text chunk `key` of the PNG that `reader` holds; `what` names it in errors.
pub fn png_text(
    reader: impl std::io::BufRead + std::io::Seek,
    what: &str,
    key: &str,
) -> Result<Option<String>> {
    let reader = png::Decoder::new(reader)
        .read_info()
        .map_err(|e| {
            Error::Image(format!(
                "{what} is not a readable PNG ({e}); give a picture petal wrote (petal generate, or a frame's gallery)"
            ))
        })?;
    let info = reader.info();
    if let Some(t) = info.utf8_text.iter().find(|t| t.keyword == key) {
        return t
            .get_text()
            .map(Some)
            .map_err(|e| Error::Image(format!("{what}: bad text chunk {key}: {e}")));
    }
    Ok(info
        .uncompressed_latin1_text
        .iter()
        .find(|t| t.keyword == key)
        .map(|t| t.text.clone()))
}
