//! How much memory a piece of work may plan for, so that inputs too large to finish are refused
//! before any step runs instead of aborting half-way with an allocation failure.

/// The longest side petal draws or paints, in pixels: beyond any screen, and a 32 px model has
/// nothing to add past it.
pub const MAX_SIDE: u32 = 16384;
/// The largest framebuffer petal maps (a 16384 px square at 32 bpp): a geometry claiming more
/// is a misread sysfs file or a typo, not a screen.
pub const MAX_FRAMEBUFFER_BYTES: u64 = 1 << 30;

/// What one more tract state for the 32 px model adds to the resident set now that the threads
/// share one optimized plan (its packed weights): 6.6 MB measured (peak RSS of `generate
/// --count 32` on 1 and 2 threads, x86-64, int8w: 62.5 and 69.1 MB; 43 MB when each thread
/// loaded its own), with margin for the allocator's per-thread arenas.
pub const DENOISER_STATE_BYTES: u64 = 16 << 20;

/// How many pictures may be painted side by side: at most `wanted`, at least 1, and no more
/// tract states than fit in what the budget leaves after the run's own buffers (`needed`), so a
/// 512 MB board asked for many threads paints fewer pictures at once instead of running out.
pub fn affordable_workers(wanted: usize, budget: u64, needed: u64, per_worker: u64) -> usize {
    let fit = budget.saturating_sub(needed) / per_worker.max(1);
    wanted
        .min(usize::try_from(fit).unwrap_or(usize::MAX))
        .max(1)
}

/// The budget when the available memory cannot be read (no procfs).
const FALLBACK_BUDGET_BYTES: u64 = 1 << 30;
/// Share of the currently available memory one run may plan for: the rest stays for the
/// system, tract's buffers and the display.
const AVAILABLE_SHARE: f64 = 0.75;

/// Bytes petal may plan to hold at once: 3/4 of `MemAvailable`, or 1 GiB where it is unknown.
pub fn memory_budget() -> u64 {
    std::fs::read_to_string("/proc/meminfo")
        .ok()
        .and_then(|text| mem_available(&text))
        .map_or(FALLBACK_BUDGET_BYTES, |avail| {
            (avail as f64 * AVAILABLE_SHARE) as u64
        })
}

/// `MemAvailable` from /proc/meminfo text, in bytes.
fn mem_available(meminfo: &str) -> Option<u64> {
    let line = meminfo.lines().find(|l| l.starts_with("MemAvailable:"))?;
    let kib: u64 = line.split_whitespace().nth(1)?.parse().ok()?;
    kib.checked_mul(1024)
}

/// A byte count for people: "12.0 TB", "3.1 GB", "640 MB".
pub fn human_bytes(bytes: u64) -> String {
    let b = bytes as f64;
    match b {
        b if b >= 1e12 => format!("{:.1} TB", b / 1e12),
        b if b >= 1e9 => format!("{:.1} GB", b / 1e9),
        b => format!("{:.0} MB", (b / 1e6).max(1.0)),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn reads_mem_available() {
        let text = "MemTotal:       24000000 kB\nMemFree:  100 kB\nMemAvailable:   2000000 kB\n";
        assert_eq!(mem_available(text), Some(2_048_000_000));
        assert_eq!(mem_available("MemTotal: 5 kB\n"), None);
        assert!(memory_budget() > 0);
        assert_eq!(human_bytes(12_000_000_000_000), "12.0 TB");
        assert_eq!(human_bytes(640_000_000), "640 MB");
    }

    #[test]
    fn workers_fit_the_memory_left() {
        let mb = 1 << 20;
        assert_eq!(affordable_workers(4, 1000 * mb, 100 * mb, 48 * mb), 4);
        // A Zero 2 W with ~260 MB of budget and a 64-picture grid at 256 px (~50 MB).
        assert_eq!(affordable_workers(3, 260 * mb, 50 * mb, 48 * mb), 3);
        assert_eq!(affordable_workers(8, 260 * mb, 50 * mb, 48 * mb), 4);
        // Nothing left: still one worker (the run itself was checked against the budget).
        assert_eq!(affordable_workers(4, 100 * mb, 200 * mb, 48 * mb), 1);
        assert_eq!(affordable_workers(0, 1000 * mb, 0, 48 * mb), 1);
    }
}
