//! Seeded Gaussian noise and `.npy` tensors, so any result can be reproduced and compared with
//! another implementation.

use std::path::Path;

use ndarray::{Array4, ArrayView4};
use ndarray_npy::ReadNpyExt;
use rand::SeedableRng;
use rand_chacha::ChaCha8Rng;

use crate::error::{Error, Result};

/// The starting noise comes from stream 0 of the seed, sampler noise (DDPM, DDIM eta>0) from
/// stream 1, so `--init-noise` with the same seed reproduces the stochastic samplers too.
pub fn rngs(seed: u64) -> (ChaCha8Rng, ChaCha8Rng) {
    let init = ChaCha8Rng::seed_from_u64(seed);
    let mut sampler = ChaCha8Rng::seed_from_u64(seed);
    sampler.set_stream(1);
    (init, sampler)
}

/// Themes for "any" come from stream 2 of the seed: drawing them leaves the start noise and
/// the sampler noise exactly as an unthemed picture's.
pub fn theme_rng(seed: u64) -> ChaCha8Rng {
    let mut rng = ChaCha8Rng::seed_from_u64(seed);
    rng.set_stream(2);
    rng
}

pub fn gaussian(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    crate::sampler::standard_normal(rng, n)
}

/// Reads float32 [N,C,H,W] and checks C,H,W (and N when given).
pub fn read_npy(path: &Path, chw: [usize; 3], count: Option<usize>) -> Result<Vec<Vec<f32>>> {
    let what = format!("--init-noise {}", path.display());
    // A file larger than petal may hold is refused before it is read.
    let len = std::fs::metadata(path)
        .map_err(|e| Error::io(path, e))?
        .len();
    let budget = crate::limits::memory_budget();
    if len > budget {
        return Err(Error::Invalid(format!(
            "{what} is {}, more than petal may use here ({})",
            crate::limits::human_bytes(len),
            crate::limits::human_bytes(budget)
        )));
    }
    let bytes = std::fs::read(path).map_err(|e| Error::io(path, e))?;
    npy_from_bytes(&bytes, &what, chw, count)
}

/// [`read_npy`] of bytes in memory; `what` names them in errors.
pub fn npy_from_bytes(
    bytes: &[u8],
    what: &str,
    chw: [usize; 3],
    count: Option<usize>,
) -> Result<Vec<Vec<f32>>> {
    let not_npy = |e: String| Error::Invalid(format!("{what}: not a float32 4-D .npy file ({e})"));
    // ndarray-npy allocates what the header's shape asks for before it reads the data, so a
    // hostile header could ask for terabytes: the shape must fit in the bytes that follow it.
    let (shape, data_len) = npy_header_shape(bytes).map_err(not_npy)?;
    let fits = shape
        .iter()
        .try_fold(4usize, |acc, &d| acc.checked_mul(d))
        .is_some_and(|n| n <= data_len);
    if !fits {
        return Err(not_npy(format!(
            "its shape {shape:?} needs more data than it holds"
        )));
    }
    let arr = <Array4<f32> as ReadNpyExt>::read_npy(bytes).map_err(|e| not_npy(e.to_string()))?;
    let s = arr.shape();
    if s[1..] != chw || count.is_some_and(|n| n != s[0]) || s[0] == 0 {
        let want = match count {
            Some(n) => format!("[{n}, {}, {}, {}]", chw[0], chw[1], chw[2]),
            None => format!("[N, {}, {}, {}]", chw[0], chw[1], chw[2]),
        };
        return Err(Error::Invalid(format!(
            "{what} has shape {s:?} but the model needs {want}"
        )));
    }
    Ok(arr
        .outer_iter()
        .map(|img| img.iter().copied().collect())
        .collect())
}

/// The `shape` an .npy header declares, and how many bytes follow the header.
fn npy_header_shape(bytes: &[u8]) -> std::result::Result<(Vec<usize>, usize), String> {
    const MAGIC: &[u8] = b"\x93NUMPY";
    let rest = bytes
        .strip_prefix(MAGIC)
        .ok_or("it does not start with the .npy magic")?;
    let (len, header_at) = match rest {
        [1, _, a, b, ..] => (usize::from(u16::from_le_bytes([*a, *b])), MAGIC.len() + 4),
        [2 | 3, _, a, b, c, d, ..] => (
            u32::from_le_bytes([*a, *b, *c, *d]) as usize,
            MAGIC.len() + 6,
        ),
        _ => return Err("unknown .npy version".into()),
    };
    let header = header_at
        .checked_add(len)
        .and_then(|end| bytes.get(header_at..end))
        .ok_or("its header is cut short")?;
    let header = String::from_utf8_lossy(header);
    let shape_at = header.find("'shape'").ok_or("its header has no shape")?;
    let tuple = header[shape_at..]
        .split_once('(')
        .and_then(|(_, t)| t.split_once(')'))
        .map(|(t, _)| t)
        .ok_or("its header's shape is not a tuple")?;
    let shape = tuple
        .split(',')
        .map(str::trim)
        .filter(|d| !d.is_empty())
        .map(|d| d.parse::<usize>().map_err(|_| format!("shape entry {d:?}")))
        .collect::<std::result::Result<Vec<_>, _>>()?;
    Ok((shape, bytes.len() - header_at - len))
}

/// Writes images as float32 [N,C,H,W], atomically.
pub fn write_npy(path: &Path, images: &[Vec<f32>], chw: [usize; 3]) -> Result<()> {
    let flat: Vec<f32> = images.iter().flatten().copied().collect();
    let view = ArrayView4::from_shape((images.len(), chw[0], chw[1], chw[2]), &flat)
        .map_err(|e| Error::Invalid(format!("raw tensor has the wrong size: {e}")))?;
    let mut bytes = Vec::new();
    ndarray_npy::WriteNpyExt::write_npy(&view, &mut bytes)
        .map_err(|e| Error::Invalid(format!("cannot encode .npy: {e}")))?;
    crate::picture::write_atomic(path, &bytes)
}
