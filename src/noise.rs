//! Seeded Gaussian noise and `.npy` tensors, so any result can be reproduced and compared with
//! another implementation.

use std::path::Path;

use ndarray::{Array4, ArrayView4};
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

pub fn gaussian(rng: &mut ChaCha8Rng, n: usize) -> Vec<f32> {
    crate::sampler::standard_normal(rng, n)
}

/// Reads float32 [N,C,H,W] and checks C,H,W (and N when given).
pub fn read_npy(path: &Path, chw: [usize; 3], count: Option<usize>) -> Result<Vec<Vec<f32>>> {
    let arr: Array4<f32> = ndarray_npy::read_npy(path).map_err(|e| {
        Error::Invalid(format!(
            "--init-noise {}: not a float32 4-D .npy file ({e})",
            path.display()
        ))
    })?;
    let s = arr.shape();
    if s[1..] != chw || count.is_some_and(|n| n != s[0]) || s[0] == 0 {
        let want = match count {
            Some(n) => format!("[{n}, {}, {}, {}]", chw[0], chw[1], chw[2]),
            None => format!("[N, {}, {}, {}]", chw[0], chw[1], chw[2]),
        };
        return Err(Error::Invalid(format!(
            "--init-noise {} has shape {:?} but the model needs {want}",
            path.display(),
            s
        )));
    }
    Ok(arr
        .outer_iter()
        .map(|img| img.iter().copied().collect())
        .collect())
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
