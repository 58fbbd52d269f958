//! The library's error type. Every variant names the thing that is wrong so the CLI can print
//! it as one line.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("cannot read {path}: {source}")]
    Io {
        path: PathBuf,
        #[source]
        source: std::io::Error,
    },
    #[error("model card {path}: {msg}")]
    Card { path: PathBuf, msg: String },
    #[error("model {what}: {msg}")]
    Model { what: String, msg: String },
    #[error("board profile {what}: {msg}")]
    Board { what: String, msg: String },
    #[error("invalid setting: {0}")]
    Invalid(String),
    #[error("{0}")]
    Image(String),
    #[error("interrupted")]
    Interrupted,
}

pub type Result<T, E = Error> = std::result::Result<T, E>;

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }
}
