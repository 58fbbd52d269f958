//! Gliding between pictures: the start noise of each in-between picture is the spherical
//! interpolation (slerp) of the two pictures' noises, and a deterministic sampler carries it
//! to a picture. Slerp keeps the noise's norm (a straight mix would shrink it and wash the
//! in-between pictures out), and at the ends it returns the two noises exactly, so the end
//! frames are the stand-alone pictures.

/// Spherical interpolation from `a` (t = 0) to `b` (t = 1).
pub fn slerp(a: &[f32], b: &[f32], t: f32) -> Vec<f32> {
    assert_eq!(a.len(), b.len(), "slerp of vectors of different lengths");
    if t <= 0.0 {
        return a.to_vec();
    }
    if t >= 1.0 {
        return b.to_vec();
    }
    let (mut dot, mut na, mut nb) = (0f64, 0f64, 0f64);
    for (x, y) in a.iter().zip(b) {
        let (x, y) = (f64::from(*x), f64::from(*y));
        dot += x * y;
        na += x * x;
        nb += y * y;
    }
    let t = f64::from(t);
    let cos = if na > 0.0 && nb > 0.0 {
        (dot / (na.sqrt() * nb.sqrt())).clamp(-1.0, 1.0)
    } else {
        1.0
    };
    let theta = cos.acos();
    let (wa, wb) = if theta.abs() < 1e-4 {
        (1.0 - t, t)
    } else {
        let s = theta.sin();
        (((1.0 - t) * theta).sin() / s, (t * theta).sin() / s)
    };
    a.iter()
        .zip(b)
        .map(|(x, y)| (wa * f64::from(*x) + wb * f64::from(*y)) as f32)
        .collect()
}

/// Where in-between picture `k` of `n` (1..=n) sits between the two ends.
pub fn position(k: usize, n: usize) -> f32 {
    k as f32 / (n + 1) as f32
}
