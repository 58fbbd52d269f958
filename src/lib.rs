//! petal: a small diffusion model that paints pictures on a Raspberry Pi.
//!
//! Data flows one way: model card + ONNX -> [`denoiser::TractDenoiser`] -> a sampler from
//! [`sampler`] -> an image -> a file or a display.

pub mod board;
pub mod error;
pub mod sampler;
pub mod schedule;

pub use error::{Error, Result};
