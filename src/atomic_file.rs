//! Whole files or none: every file petal writes goes through a temporary file in the same
//! directory, is synced, renamed over the target, and the directory is synced so the rename
//! itself survives a power cut.
//!
//! A process killed between creating and renaming its temporary file leaves it behind. Temporary
//! names carry the writer's process id (`.petal-<pid>-XXXXXX.tmp`), so at start petal removes the
//! ones whose writer is gone, and never a file another running petal is still writing.

use std::fs;
use std::io::Write;
use std::path::{Path, PathBuf};
use std::time::{Duration, SystemTime};

use crate::error::{Error, Result};

const TEMP_PREFIX: &str = ".petal-";
const TEMP_SUFFIX: &str = ".tmp";
/// Temporary files from before names carried a pid: removed once this old (a write takes
/// milliseconds).
const UNNAMED_TEMP_MAX_AGE: Duration = Duration::from_secs(600);

/// Writes `bytes` to `path` atomically and durably.
pub fn write_atomic(path: &Path, bytes: &[u8]) -> Result<()> {
    let dir = parent_dir(path);
    let write_err = |e: std::io::Error| Error::Io {
        path: path.to_path_buf(),
        source: e,
    };
    let prefix = format!("{TEMP_PREFIX}{}-", std::process::id());
    let mut builder = tempfile::Builder::new();
    builder.prefix(&prefix).suffix(TEMP_SUFFIX);
    // Temp files are created 0600; a picture should get the usual 0666-minus-umask (a web
    // server or another user on a kiosk reads the frames). open(2) applies the umask.
    #[cfg(unix)]
    builder.permissions(std::os::unix::fs::PermissionsExt::from_mode(0o666));
    let mut tmp = builder.tempfile_in(dir).map_err(write_err)?;
    tmp.write_all(bytes).map_err(write_err)?;
    tmp.as_file().sync_all().map_err(write_err)?;
    tmp.persist(path).map_err(|e| write_err(e.error))?;
    sync_dir(dir).map_err(write_err)
}

fn parent_dir(path: &Path) -> &Path {
    match path.parent() {
        Some(p) if !p.as_os_str().is_empty() => p,
        _ => Path::new("."),
    }
}

/// Makes a rename in `dir` durable. Only Unix can open a directory to sync it; elsewhere the
/// rename is as durable as the platform makes it.
fn sync_dir(dir: &Path) -> std::io::Result<()> {
    #[cfg(unix)]
    fs::File::open(dir)?.sync_all()?;
    #[cfg(not(unix))]
    let _ = dir;
    Ok(())
}

/// Checks that `dir` takes new files, with a temporary file that is removed again (and, named
/// like the others, cleaned up at the next start if petal is killed in between).
pub fn probe_writable(dir: &Path) -> std::io::Result<()> {
    tempfile::Builder::new()
        .prefix(&format!("{TEMP_PREFIX}{}-probe-", std::process::id()))
        .suffix(TEMP_SUFFIX)
        .tempfile_in(dir)
        .map(drop)
}

/// The writer's pid in a temporary file name, `None` for a name without one.
fn writer_pid(name: &str) -> Option<u32> {
    let rest = name.strip_prefix(TEMP_PREFIX)?.strip_suffix(TEMP_SUFFIX)?;
    rest.split_once('-')?.0.parse().ok()
}

fn is_temp_name(name: &str) -> bool {
    name.starts_with(TEMP_PREFIX) && name.ends_with(TEMP_SUFFIX)
}

fn process_alive(pid: u32) -> bool {
    if pid == std::process::id() {
        return true;
    }
    let proc_root = Path::new("/proc");
    // Without procfs nothing can be known: keep the file (it is retried at the next start).
    !proc_root.is_dir() || proc_root.join(pid.to_string()).exists()
}

/// Removes the temporary files that dead petal processes left in `dir`; returns their paths.
/// Anything else in the directory, including other programs' files, is left alone. A missing
/// directory has nothing to clean.
pub fn remove_stale_temp_files(dir: &Path) -> Result<Vec<PathBuf>> {
    let entries = match fs::read_dir(dir) {
        Ok(e) => e,
        Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(vec![]),
        Err(e) => return Err(Error::io(dir, e)),
    };
    let now = SystemTime::now();
    let mut removed = vec![];
    for entry in entries.filter_map(|e| e.ok()) {
        let name = entry.file_name().to_string_lossy().into_owned();
        if !is_temp_name(&name) || !entry.file_type().is_ok_and(|t| t.is_file()) {
            continue;
        }
        let stale = match writer_pid(&name) {
            Some(pid) => !process_alive(pid),
            None => entry
                .metadata()
                .and_then(|m| m.modified())
                .ok()
                .and_then(|m| now.duration_since(m).ok())
                .is_some_and(|age| age > UNNAMED_TEMP_MAX_AGE),
        };
        if stale {
            let path = entry.path();
            match fs::remove_file(&path) {
                Ok(()) => removed.push(path),
                // Another petal cleaning the same directory got there first.
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(&path, e)),
            }
        }
    }
    if !removed.is_empty() {
        sync_dir(dir).map_err(|e| Error::io(dir, e))?;
    }
    Ok(removed)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn temp_names_carry_the_writer() {
        assert_eq!(writer_pid(".petal-1234-AbC9x.tmp"), Some(1234));
        assert_eq!(writer_pid(".petal-AbC9x.tmp"), None);
        assert_eq!(writer_pid("petal-1234-x.tmp"), None);
        assert!(is_temp_name(".petal-AbC9x.tmp"));
        assert!(!is_temp_name(".petal-probe-x"));
    }
}
