//! What petal does to storage, seen from the system calls (strace): a picture's rename is made
//! durable by syncing its directory, and a frame on a framebuffer writes to storage nothing but
//! its gallery. Both are properties nothing else in the suite can see: a test that reads the
//! files back passes just as well without the directory sync or with stray writes.
//!
//! Skips with a message where strace cannot run (not installed, or ptrace not allowed), and
//! under qemu-user, where strace would trace the emulator; `.ci/run` installs strace and sets
//! PETAL_REQUIRE_STRACE=1 so that its x86 run cannot skip it.

use std::path::Path;
use std::process::{Command, Stdio};

const PETAL: &str = env!("CARGO_BIN_EXE_petal");

/// The syscall lines strace logged for `petal args` (with `-f`: every thread), or `None` where
/// strace cannot trace here.
fn strace(dir: &Path, syscalls: &str, args: &[&str]) -> Option<Vec<String>> {
    if std::env::var_os("PETAL_TEST_EMULATED").is_some() {
        // .ci/cross runs the suite under qemu-user, with CI's environment (and its
        // PETAL_REQUIRE_STRACE); x86 has run these checks natively.
        eprintln!("skipped: petal runs under qemu-user here, strace would trace the emulator");
        return None;
    }
    let skip = |why: &str| {
        assert!(
            std::env::var_os("PETAL_REQUIRE_STRACE").is_none(),
            "PETAL_REQUIRE_STRACE is set, but {why}"
        );
        eprintln!("skipped: {why}; the storage-write checks did not run");
        None
    };
    let log = dir.join("strace.log");
    let status = Command::new("strace")
        .args(["-f", "-qq", "-e", &format!("trace={syscalls}"), "-o"])
        .arg(&log)
        .arg(PETAL)
        .args(args)
        .stdin(Stdio::null())
        .stdout(Stdio::null())
        .stderr(Stdio::piped())
        .output();
    match status {
        Err(e) => skip(&format!("strace cannot be started ({e})")),
        Ok(out) if !out.status.success() => {
            let stderr = String::from_utf8_lossy(&out.stderr);
            if stderr.contains("ptrace") || stderr.contains("PTRACE") {
                skip(&format!("strace may not trace here: {stderr}"))
            } else {
                panic!("petal {args:?} under strace failed: {stderr}");
            }
        }
        Ok(_) => Some(
            std::fs::read_to_string(&log)
                .expect("strace wrote its log")
                .lines()
                .map(str::to_string)
                .collect(),
        ),
    }
}

/// "1234  openat(AT_FDCWD, \"/x\", O_RDONLY|O_CLOEXEC) = 3" -> the pid (strace -f's first
/// column) and the call.
fn split_pid(line: &str) -> (&str, &str) {
    line.split_once(char::is_whitespace)
        .map_or(("", line), |(pid, rest)| (pid, rest.trim_start()))
}

/// The first quoted string of a call: the path of open and rename-like calls.
fn quoted(call: &str) -> Option<&str> {
    let start = call.find('"')? + 1;
    let len = call[start..].find('"')?;
    Some(&call[start..start + len])
}

fn result(call: &str) -> Option<&str> {
    call.rsplit_once(" = ")
        .map(|(_, r)| r.split_whitespace().next().unwrap_or(""))
}

#[test]
fn a_written_picture_is_followed_by_a_sync_of_its_directory() {
    let dir = tempfile::tempdir().unwrap();
    let out_dir = dir.path().join("pictures");
    std::fs::create_dir(&out_dir).unwrap();
    let out = out_dir.join("p.png");
    let Some(lines) = strace(
        dir.path(),
        "openat,rename,renameat,renameat2,fsync,fdatasync",
        &[
            "--quiet",
            "generate",
            "--size",
            "32",
            "--steps",
            "2",
            "--out",
            out.to_str().unwrap(),
        ],
    ) else {
        return;
    };
    let out_s = out.to_str().unwrap();
    let dir_s = out_dir.to_str().unwrap();
    let renamed = lines
        .iter()
        .position(|l| l.contains("rename") && l.contains(&format!("\"{out_s}\"")))
        .unwrap_or_else(|| panic!("no rename onto {out_s}:\n{}", lines.join("\n")));
    let (pid, _) = split_pid(&lines[renamed]);
    // After the rename, the same thread opens the directory and syncs that descriptor.
    let after: Vec<&str> = lines[renamed + 1..]
        .iter()
        .map(|l| split_pid(l))
        .filter(|(p, _)| *p == pid)
        .map(|(_, call)| call)
        .collect();
    let fd = after
        .iter()
        .find(|c| c.starts_with("openat(") && quoted(c) == Some(dir_s))
        .and_then(|c| result(c))
        .unwrap_or_else(|| panic!("{dir_s} is not opened after the rename:\n{after:?}"));
    assert!(
        after.iter().any(
            |c| (c.starts_with(&format!("fsync({fd})")) && result(c) == Some("0"))
                || c.starts_with(&format!("fsync({fd} <unfinished"))
        ),
        "the directory's descriptor {fd} is not synced after the rename:\n{after:?}"
    );
    assert!(image::open(&out).is_ok());
}

#[test]
fn a_frame_on_a_framebuffer_writes_only_its_gallery() {
    let dir = tempfile::tempdir().unwrap();
    let fb = dir.path().join("fb0");
    std::fs::write(&fb, vec![0u8; 320 * 240 * 2]).unwrap();
    let gallery = dir.path().join("gallery");
    let spec = format!("fb:{}?width=320&height=240&bpp=16", fb.display());
    let Some(lines) = strace(
        dir.path(),
        "openat,creat,truncate,rename,renameat,renameat2,mkdir,mkdirat,unlink,unlinkat",
        &[
            "--quiet",
            "--threads",
            "1",
            "frame",
            "--steps",
            "3",
            "--every",
            "0",
            "--cycles",
            "3",
            "--keep",
            "2",
            "--display",
            &spec,
            "--gallery",
            gallery.to_str().unwrap(),
        ],
    ) else {
        return;
    };
    let fb_s = fb.to_str().unwrap();
    let gallery_s = gallery.to_str().unwrap();
    let mut writes = 0;
    for line in &lines {
        let (_, call) = split_pid(line);
        let name = call.split('(').next().unwrap_or("");
        // Other lines are signals and the second halves of calls strace split between threads
        // ("<... openat resumed>"), whose first half carried the path.
        let writing = match name {
            "openat" => {
                call.contains("O_WRONLY") || call.contains("O_RDWR") || call.contains("O_CREAT")
            }
            "creat" | "truncate" | "rename" | "renameat" | "renameat2" | "mkdir" | "mkdirat"
            | "unlink" | "unlinkat" => true,
            _ => false,
        };
        // A failed call wrote nothing (the probes of paths that do not exist yet).
        if !writing || result(call).is_some_and(|r| r.starts_with('-')) {
            continue;
        }
        let path = quoted(call).unwrap_or("");
        let allowed = path == fb_s
            || path == gallery_s
            || path.starts_with(&format!("{gallery_s}/"))
            || path == "/dev/null";
        assert!(
            allowed,
            "a write outside the framebuffer and the gallery: {line}"
        );
        writes += 1;
    }
    assert!(writes > 0, "nothing traced:\n{}", lines.join("\n"));
    let kept = std::fs::read_dir(&gallery).unwrap().count();
    assert_eq!(kept, 2, "gallery retention");
}
