//! The library's error type. Every variant names the thing that is wrong so the CLI can print
//! it as one line.

use std::path::PathBuf;

#[derive(Debug, thiserror::Error)]
pub enum Error {
    #[error("{path}: {source}{hint}", hint = io_hint(.source))]
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

/// What to do about an I/O error, where the OS message alone does not say.
fn io_hint(e: &std::io::Error) -> &'static str {
    use std::io::ErrorKind;
    match e.kind() {
        ErrorKind::PermissionDenied => {
            " (the user petal runs as may not use it: check its owner and mode, or the groups in boards/install.sh)"
        }
        ErrorKind::StorageFull | ErrorKind::QuotaExceeded => {
            " (the disk is full: free space, or keep fewer pictures with --keep / --keep-bytes)"
        }
        ErrorKind::ReadOnlyFilesystem => " (the filesystem is read-only: choose a writable path)",
        _ => "",
    }
}

impl Error {
    pub fn io(path: impl Into<PathBuf>, source: std::io::Error) -> Self {
        Error::Io {
            path: path.into(),
            source,
        }
    }

    /// A write that failed for lack of space (a full SD card, a quota): deleting old pictures
    /// can make room for it.
    pub fn is_out_of_space(&self) -> bool {
        use std::io::ErrorKind;
        matches!(self, Error::Io { source, .. }
            if matches!(source.kind(), ErrorKind::StorageFull | ErrorKind::QuotaExceeded))
    }
}
