//! petal: a small diffusion model that paints pictures on a Raspberry Pi.
//!
//! Data flows one way: model card + ONNX ([`model`], [`card`]) -> [`denoiser::TractDenoiser`]
//! -> a sampler from [`sampler`] ([`generate`]) -> tensors -> pictures ([`picture`]).
//! Samplers know nothing of tract: they see a [`sampler::Denoiser`], so they can be tested
//! against exact, analytic denoisers.

pub mod atomic_file;
pub mod board;
pub mod card;
pub mod denoiser;
pub mod display;
pub mod error;
pub mod frame;
pub mod generate;
pub mod limits;
pub mod model;
pub mod noise;
pub mod picture;
pub mod sampler;
pub mod schedule;
pub mod units;

pub use error::{Error, Result};
