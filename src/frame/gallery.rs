//! The gallery: every finished picture as a PNG with petal's metadata (so `petal generate
//! --from` paints it again), written atomically, oldest deleted past a count or byte limit.
//!
//! Pictures are named `petal-n<sequence>-<UTC time>-<seed>.png`. Their order comes from the
//! sequence number, not the time: a clock that jumps back (NTP after a boot without a real-time
//! clock) must not make retention delete the newest pictures. Names from before the sequence
//! number (`petal-<time>-<seed>.png`) count as older than any numbered one.

use std::path::{Path, PathBuf};

use chrono::{DateTime, Local};
use image::RgbImage;

use crate::error::{Error, Result};
use crate::generate::GenerateParams;
use crate::picture::{save_atomic, upscale, METADATA_KEY};

pub const PREFIX: &str = "petal-";
/// Where kept pictures go, inside the gallery; retention only looks at the gallery itself.
pub const FAVOURITES: &str = "favourites";

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Gallery {
    pub dir: PathBuf,
    /// Pictures kept at most.
    pub keep: Option<usize>,
    /// Bytes kept at most (the newest picture is always kept).
    pub keep_bytes: Option<u64>,
    /// Pictures upscaled to this many pixels square (default: as `params.size` says).
    pub size: Option<u32>,
}

fn is_picture(name: &str) -> bool {
    name.starts_with(PREFIX) && name.ends_with(".png")
}

/// The sequence number in a picture's name; 0 for names from before it had one.
fn sequence(name: &str) -> u64 {
    name.strip_prefix(PREFIX)
        .and_then(|rest| rest.strip_prefix('n'))
        .and_then(|rest| rest.split('-').next())
        .and_then(|digits| digits.parse().ok())
        .unwrap_or(0)
}

impl Gallery {
    /// Creates the directory when needed and checks it can be written, so a wrong path is an
    /// error at start, not hours later; removes what a killed petal left half-written there.
    pub fn prepare(&self) -> Result<()> {
        std::fs::create_dir_all(&self.dir).map_err(|e| {
            Error::Invalid(format!(
                "gallery {}: cannot create it: {e}; give a directory petal's user may write (--gallery DIR)",
                self.dir.display()
            ))
        })?;
        crate::atomic_file::probe_writable(&self.dir).map_err(|e| {
            Error::Invalid(format!(
                "gallery {}: cannot write there: {e}; give a directory petal's user may write (--gallery DIR)",
                self.dir.display()
            ))
        })?;
        crate::atomic_file::remove_stale_temp_files(&self.dir)?;
        let favourites = self.dir.join(FAVOURITES);
        if favourites.is_dir() {
            crate::atomic_file::remove_stale_temp_files(&favourites)?;
        }
        Ok(())
    }

    /// Saves one picture (`picture`: model resolution; upscaled as `params` says) and prunes.
    /// `now` only labels the file for people.
    pub fn save(
        &self,
        picture: &RgbImage,
        params: &GenerateParams,
        now: &DateTime<Local>,
    ) -> Result<PathBuf> {
        let mut params = params.clone();
        params.size = self.size.or(params.size);
        let params = &params;
        let img = match params.size {
            Some(s) => upscale(picture, s, params.filter),
            None => picture.clone(),
        };
        let stamp = crate::frame::when::utc_file_stamp(now);
        let seq = self
            .pictures()?
            .last()
            .map_or(0, |(p, _)| sequence(&file_name(p)))
            + 1;
        let path = self
            .dir
            .join(format!("{PREFIX}n{seq:07}-{stamp}-{}.png", params.seed));
        let meta = serde_json::to_string(params)
            .map_err(|e| Error::Image(format!("cannot describe the picture: {e}")))?;
        let metadata = [
            (METADATA_KEY, meta),
            ("Software", format!("petal {}", env!("CARGO_PKG_VERSION"))),
        ];
        // On a full disk, the oldest pictures make room for the newest (retention, early).
        loop {
            match save_atomic(&img, &path, &metadata) {
                Err(e) if e.is_out_of_space() => {
                    if !self.remove_oldest()? {
                        return Err(e);
                    }
                }
                r => break r?,
            }
        }
        self.prune(&path)?;
        Ok(path)
    }

    /// The seed of the newest picture, from its metadata (`None`: no picture, or unreadable).
    pub fn newest_seed(&self) -> Option<u64> {
        let (path, _) = self.pictures().ok()?.pop()?;
        let text = crate::picture::read_png_text(&path, METADATA_KEY).ok()??;
        serde_json::from_str::<GenerateParams>(&text)
            .ok()
            .map(|p| p.seed)
    }

    /// The gallery's pictures, oldest first, with their sizes.
    pub fn pictures(&self) -> Result<Vec<(PathBuf, u64)>> {
        let mut out = Vec::new();
        for e in std::fs::read_dir(&self.dir).map_err(|e| Error::io(&self.dir, e))? {
            let e = e.map_err(|e| Error::io(&self.dir, e))?;
            let name = e.file_name();
            if !is_picture(&name.to_string_lossy()) {
                continue;
            }
            let len = e.metadata().map(|m| m.len()).unwrap_or(0);
            out.push((e.path(), len));
        }
        out.sort_by_key(|(p, _)| {
            let name = file_name(p);
            (sequence(&name), name)
        });
        Ok(out)
    }

    /// The picture before `current` (the newest when `current` is `None` or gone).
    pub fn before(&self, current: Option<&Path>) -> Result<Option<PathBuf>> {
        let pics = self.pictures()?;
        let at = current.and_then(|c| pics.iter().position(|(p, _)| p == c));
        Ok(match at {
            Some(0) => None,
            Some(i) => Some(pics[i - 1].0.clone()),
            None => pics.last().map(|(p, _)| p.clone()),
        })
    }

    /// The picture after `current`; `None` when `current` is the newest, gone, or `None`.
    pub fn after(&self, current: Option<&Path>) -> Result<Option<PathBuf>> {
        let pics = self.pictures()?;
        let at = current.and_then(|c| pics.iter().position(|(p, _)| p == c));
        Ok(at.and_then(|i| pics.get(i + 1)).map(|(p, _)| p.clone()))
    }

    /// The names of the kept favourites, newest first.
    pub fn favourites(&self) -> Result<Vec<String>> {
        let dir = self.dir.join(FAVOURITES);
        let mut names = Vec::new();
        let entries = match std::fs::read_dir(&dir) {
            Ok(e) => e,
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => return Ok(names),
            Err(e) => return Err(Error::io(&dir, e)),
        };
        for e in entries {
            let name = e.map_err(|e| Error::io(&dir, e))?.file_name();
            let name = name.to_string_lossy();
            if is_picture(&name) {
                names.push(name.into_owned());
            }
        }
        names.sort_by_key(|n| std::cmp::Reverse((sequence(n), n.clone())));
        Ok(names)
    }

    /// The file of a gallery picture (`NAME`) or a favourite (`favourites/NAME`) named by
    /// someone outside petal (the control page), or `None` when the name is not one of petal's
    /// picture names: no separator but that one `favourites/`, no `..`, nothing outside the
    /// gallery.
    pub fn resolve_name(&self, name: &str) -> Option<PathBuf> {
        let (dir, file) = match name
            .strip_prefix(FAVOURITES)
            .and_then(|r| r.strip_prefix('/'))
        {
            Some(file) => (self.dir.join(FAVOURITES), file),
            None => (self.dir.clone(), name),
        };
        let plain = file
            .bytes()
            .all(|b| b.is_ascii_alphanumeric() || b == b'-' || b == b'_' || b == b'.');
        (plain && is_picture(file) && !file.contains("..")).then(|| dir.join(file))
    }

    /// Keeps `picture` (one of the gallery's) in [`FAVOURITES`], where retention never deletes
    /// it: a hard link where the filesystem has them (no second copy on the SD card), else an
    /// atomic copy. Keeping a picture twice is fine.
    pub fn keep_favourite(&self, picture: &Path) -> Result<PathBuf> {
        let name = picture
            .file_name()
            .filter(|n| is_picture(&n.to_string_lossy()))
            .ok_or_else(|| {
                Error::Invalid(format!("{} is not a gallery picture", picture.display()))
            })?;
        let dir = self.dir.join(FAVOURITES);
        std::fs::create_dir_all(&dir).map_err(|e| Error::io(&dir, e))?;
        let kept = dir.join(name);
        if kept.exists() {
            return Ok(kept);
        }
        if std::fs::hard_link(picture, &kept).is_err() {
            let bytes = std::fs::read(picture).map_err(|e| Error::io(picture, e))?;
            crate::atomic_file::write_atomic(&kept, &bytes)?;
        }
        Ok(kept)
    }

    /// Deletes the oldest picture; false when there is none.
    fn remove_oldest(&self) -> Result<bool> {
        let Some((oldest, _)) = self.pictures()?.into_iter().next() else {
            return Ok(false);
        };
        match std::fs::remove_file(&oldest) {
            Ok(()) => Ok(true),
            Err(e) if e.kind() == std::io::ErrorKind::NotFound => Ok(true),
            Err(e) => Err(Error::io(oldest, e)),
        }
    }

    fn prune(&self, newest: &Path) -> Result<()> {
        if self.keep.is_none() && self.keep_bytes.is_none() {
            return Ok(());
        }
        let pics = self.pictures()?;
        let mut count = pics.len();
        let mut total: u64 = pics.iter().map(|p| p.1).sum();
        for (path, len) in pics.iter().filter(|(p, _)| p != newest) {
            let over_count = self.keep.is_some_and(|k| count > k);
            let over_bytes = self.keep_bytes.is_some_and(|b| total > b);
            if !(over_count || over_bytes) {
                break;
            }
            match std::fs::remove_file(path) {
                Ok(()) => {}
                Err(e) if e.kind() == std::io::ErrorKind::NotFound => {}
                Err(e) => return Err(Error::io(path, e)),
            }
            count -= 1;
            total -= len;
        }
        Ok(())
    }
}

fn file_name(path: &Path) -> String {
    path.file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .unwrap_or_default()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn only_petal_picture_names_resolve_inside_the_gallery() {
        let g = Gallery {
            dir: PathBuf::from("/g"),
            keep: None,
            keep_bytes: None,
            size: None,
        };
        let ok = "petal-n0000001-20261202-080000-9.png";
        assert_eq!(g.resolve_name(ok), Some(PathBuf::from("/g").join(ok)));
        assert_eq!(
            g.resolve_name(&format!("favourites/{ok}")),
            Some(PathBuf::from("/g/favourites").join(ok))
        );
        for bad in [
            "../petal-n1-x-1.png",
            "petal-../../etc/passwd.png",
            "petal-n1/../../x.png",
            "/etc/petal-n1.png",
            "favourites/../petal-n1.png",
            "favourites/favourites/petal-n1.png",
            "petal-n1.png/",
            "petal-n1%2f.png",
            "notes.txt",
            "petal-n1.png\0",
            "",
        ] {
            assert_eq!(g.resolve_name(bad), None, "{bad:?}");
        }
    }

    #[test]
    fn sequence_numbers_order_pictures_whatever_the_time_says() {
        assert_eq!(sequence("petal-n0000042-19700101-000012-7.png"), 42);
        assert_eq!(sequence("petal-20261128-003205-7.png"), 0);
        assert!(
            sequence("petal-n0000002-19700101-000000-1.png")
                > sequence("petal-n0000001-20261202-080000-9.png")
        );
    }
}
