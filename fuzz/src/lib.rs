//! The fuzz targets' bodies, shared with petal's stable test suite (tests/hostile_input.rs).
pub mod checks;
