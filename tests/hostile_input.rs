//! Hostile and broken input to every parser of outside input: each gets a clear error naming
//! the problem, before anything large is allocated. Inputs the fuzzers (fuzz/run.sh) found
//! land here as regression tests (tests/fixtures/hostile/TARGET/).
//!
//! The second half is the fuzz targets' stable pass, which always runs with the suite (the
//! libFuzzer pass needs nightly and ~20 minutes of build, and CI skips it when time is short):
//! every target's check (fuzz/src/checks.rs, the same code the libFuzzer targets run) on every
//! committed seed and regression input, then on a fixed number of mutants of them.

use std::panic;
use std::path::{Path, PathBuf};

use petal::display::DisplaySpec;
use petal::frame::config::{FrameOptions, FrameSettings};
use petal::generate::GenerateParams;

#[path = "../fuzz/src/checks.rs"]
mod checks;

/// A float32 .npy header (version 1) declaring `shape`, followed by `data_bytes` zero bytes.
fn npy(shape: &str, data_bytes: usize) -> Vec<u8> {
    let mut header = format!("{{'descr': '<f4', 'fortran_order': False, 'shape': {shape}, }}");
    while (10 + header.len() + 1) % 64 != 0 {
        header.push(' ');
    }
    header.push('\n');
    let mut out = b"\x93NUMPY\x01\x00".to_vec();
    out.extend((header.len() as u16).to_le_bytes());
    out.extend(header.as_bytes());
    out.extend(vec![0u8; data_bytes]);
    out
}

fn npy_err(bytes: &[u8], count: Option<usize>) -> String {
    match petal::noise::npy_from_bytes(bytes, "noise.npy", [3, 32, 32], count) {
        Ok(v) => panic!("accepted {} pictures", v.len()),
        Err(e) => e.to_string(),
    }
}

#[test]
fn npy_reader_takes_a_well_formed_file() {
    let ok = npy("(2, 3, 32, 32)", 2 * 3 * 32 * 32 * 4);
    let pictures = petal::noise::npy_from_bytes(&ok, "noise.npy", [3, 32, 32], None).unwrap();
    assert_eq!(pictures.len(), 2);
    assert!(pictures.iter().all(|p| p.len() == 3 * 32 * 32));
}

#[test]
fn npy_header_claiming_terabytes_is_refused_before_allocating() {
    // Without the check, the .npy reader allocates what the header claims (12 TB here) and
    // the process aborts.
    let e = npy_err(&npy("(1000000000, 3, 32, 32)", 64), None);
    assert!(e.contains("needs more data than it holds"), "{e}");
    assert!(e.contains("noise.npy"), "{e}");
    // A product that overflows usize on 32-bit boards (armv7), and is 53 TB on 64-bit ones.
    let e = npy_err(&npy("(4294967295, 3, 32, 32)", 64), None);
    assert!(e.contains("needs more data"), "{e}");
}

#[test]
fn npy_broken_files_name_the_problem() {
    assert!(npy_err(b"not numpy at all", None).contains("magic"));
    let mut cut = npy("(1, 3, 32, 32)", 0);
    cut.truncate(20);
    assert!(npy_err(&cut, None).contains("cut short"));
    let e = npy_err(&npy("(1, 3, 16, 16)", 3 * 16 * 16 * 4), None);
    assert!(
        e.contains("[1, 3, 16, 16]") && e.contains("[N, 3, 32, 32]"),
        "{e}"
    );
    let e = npy_err(&npy("(1, 3, 32, 32)", 3 * 32 * 32 * 4), Some(2));
    assert!(e.contains("[2, 3, 32, 32]"), "{e}");
    let e = npy_err(&npy("(1, 3, x, 32)", 64), None);
    assert!(e.contains("shape entry"), "{e}");
}

fn spec_err(spec: &str) -> String {
    match spec.parse::<DisplaySpec>().and_then(|s| s.open()) {
        Ok(_) => panic!("{spec} should fail"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn display_geometry_beyond_any_screen_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("shown");
    // 100000 x 100000 x 3 bytes would be 30 GB of canvas.
    let e = spec_err(&format!("png:{}?size=100000x100000", out.display()));
    assert!(
        e.contains("larger than petal draws") && e.contains("16384"),
        "{e}"
    );
    assert!(!out.exists(), "nothing is created for a refused spec");
    assert!(spec_err("memory:20000x10").contains("larger than petal draws"));
    assert!(spec_err("window:10x99999").contains("larger than petal draws"));
    let fb = dir.path().join("fb0");
    std::fs::write(&fb, [0u8; 64]).unwrap();
    let e = spec_err(&format!("fb:{}?width=70000&height=4&bpp=16", fb.display()));
    assert!(e.contains("width=70000 is out of range (1..=16384)"), "{e}");
    let e = spec_err(&format!(
        "fb:{}?width=4&height=4&bpp=16&stride=99999999999",
        fb.display()
    ));
    assert!(e.contains("stride=99999999999"), "{e}");
}

#[test]
fn framebuffer_sysfs_geometry_beyond_any_screen_is_refused() {
    let dir = tempfile::tempdir().unwrap();
    let sys = dir.path().join("sys");
    std::fs::create_dir(&sys).unwrap();
    std::fs::write(sys.join("virtual_size"), "4000000,3000000\n").unwrap();
    std::fs::write(sys.join("bits_per_pixel"), "32\n").unwrap();
    std::fs::write(sys.join("stride"), "16000000\n").unwrap();
    let dev = dir.path().join("fb0");
    std::fs::write(&dev, [0u8; 64]).unwrap();
    let spec = format!("fb:{}?sysfs={}", dev.display(), sys.display());
    let e = spec_err(&spec);
    assert!(
        e.contains("4000000x3000000") && e.contains("width=W&height=H"),
        "{e}"
    );
    // A sane size with a stride that would map 48 GB.
    std::fs::write(sys.join("virtual_size"), "800,3000\n").unwrap();
    let e = spec_err(&spec);
    assert!(
        e.contains("stride 16000000") && e.contains("stride=BYTES"),
        "{e}"
    );
}

fn frame_err(toml: &str) -> String {
    let path = Path::new("frame.toml");
    let options = FrameOptions::from_toml(toml, path).unwrap();
    let (options, sources) = options.merge(FrameOptions::default(), Some(path));
    match FrameSettings::from_options(&options, &sources) {
        Ok(_) => panic!("{toml} should fail"),
        Err(e) => e.to_string(),
    }
}

#[test]
fn gallery_size_beyond_any_screen_is_refused() {
    let e = frame_err("display = \"memory\"\ngallery = \"/tmp/g\"\ngallery-size = 100000\n");
    assert!(e.contains("gallery-size") && e.contains("16384"), "{e}");
}

#[test]
fn png_metadata_that_is_not_petal_settings_is_an_error() {
    let not_png = petal::picture::png_text(std::io::Cursor::new(b"GIF89a"), "x.png", "petal");
    assert!(not_png
        .unwrap_err()
        .to_string()
        .contains("x.png is not a readable PNG"));
    let e = GenerateParams::from_metadata("{\"seed\": -1}", "x.png").unwrap_err();
    assert!(
        e.to_string()
            .contains("x.png: petal metadata is not readable"),
        "{e}"
    );
}

#[test]
fn onnx_graph_that_panics_tract_is_an_error() {
    // fuzz/onnx_bytes: a Conv whose inputs name tensors the graph does not have; tract 0.23.9
    // unwraps the lookup (tract-onnx src/model.rs:187).
    let bytes = std::fs::read(
        Path::new(env!("CARGO_MANIFEST_DIR"))
            .join("tests/fixtures/hostile/onnx_bytes/tract-panic-model-rs-187.onnx"),
    )
    .unwrap();
    let card = petal::model::Model::embedded().unwrap().card;
    let e = petal::denoiser::summarize(&bytes, &card, "bad.onnx").unwrap_err();
    let e = e.to_string();
    assert!(
        e.contains("bad.onnx") && e.contains("tract failed while reading the graph"),
        "{e}"
    );
    let e = petal::denoiser::TractDenoiser::new(&bytes, &card, "bad.onnx")
        .err()
        .expect("refused");
    assert!(e.to_string().contains("tract failed"), "{e}");
}

// ---- The fuzz targets on stable: seeds, regressions, then deterministic mutants ----

/// How a target's inputs are mutated beyond plain bytes.
#[derive(Clone, Copy, PartialEq)]
enum Format {
    /// Text parsers (JSON, TOML, spec strings): mutants lean to ASCII, so most stay UTF-8 and
    /// get past `from_utf8` into the parser.
    Text,
    /// Binary formats with a header (.npy, ONNX protobuf).
    Binary,
    /// PNG: chunk CRCs are mostly recomputed after mutating, or the PNG decoder would refuse
    /// nearly every mutant before the text chunk petal reads.
    Png,
}

/// xorshift64* (Vigna). Hand-written rather than `rand`: the stream must never change, so a
/// failing iteration number means the same input on every machine and every version, and a
/// fixed seed makes each run try exactly the inputs the last run tried (a CI failure is never
/// a fluke of the draw). `PETAL_HOSTILE_SEED` picks another stream for a longer local hunt.
struct Rng(u64);

impl Rng {
    fn new(target: &str) -> Rng {
        let base = std::env::var("PETAL_HOSTILE_SEED")
            .ok()
            .and_then(|s| s.parse::<u64>().ok())
            .unwrap_or(0x05ee_d011);
        // FNV-1a of the name: each target gets its own stream from the same seed.
        let mut h = 0xcbf2_9ce4_8422_2325u64 ^ base;
        for b in target.bytes() {
            h = (h ^ u64::from(b)).wrapping_mul(0x100_0000_01b3);
        }
        Rng(h | 1)
    }

    fn next(&mut self) -> u64 {
        let mut x = self.0;
        x ^= x >> 12;
        x ^= x << 25;
        x ^= x >> 27;
        self.0 = x;
        x.wrapping_mul(0x2545_f491_4f6c_dd1d)
    }

    /// Uniform enough in `0..n`; 0 for an empty range.
    fn below(&mut self, n: usize) -> usize {
        if n == 0 {
            0
        } else {
            (self.next() % n as u64) as usize
        }
    }

    fn chance(&mut self, one_in: usize) -> bool {
        self.below(one_in) == 0
    }
}

/// Mutants never grow past this: parsers' size limits are tested by the unit tests above, and
/// large inputs only slow the pass down.
const MAX_LEN: usize = 1 << 16;

/// Byte patterns at the edges of integer and length fields (little and big endian).
const INTERESTING_BYTES: &[&[u8]] = &[
    &[0x00],
    &[0x01],
    &[0x7f],
    &[0x80],
    &[0xff],
    &[0xff, 0xff],
    &[0x00, 0x80],
    &[0x80, 0x00],
    &[0xff, 0x7f],
    &[0xff, 0xff, 0xff, 0xff],
    &[0xff, 0xff, 0xff, 0x7f],
    &[0x7f, 0xff, 0xff, 0xff],
    &[0x00, 0x00, 0x00, 0x80],
    &[0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0xff, 0x01],
];

/// Numbers at the edges of what parsers and range checks take.
const NUMBERS: &[&str] = &[
    "0",
    "-1",
    "-0",
    "1e309",
    "-1e309",
    "NaN",
    "nan",
    "inf",
    "-inf",
    "0.0",
    "1e-320",
    "65535",
    "65536",
    "16384",
    "16385",
    "2147483648",
    "4294967295",
    "4294967296",
    "9223372036854775807",
    "18446744073709551615",
    "18446744073709551616",
    "99999999999999999999",
    "0x10",
    "1_000",
];

/// Text that parsers of quotes, tables, keys and specs trip on.
const INTERESTING_TEXT: &[&str] = &[
    "\"", "'", "\\", "\\u0000", "[", "]", "{", "}", "[[", "=", ",", ":", "?", "&", "x", "..", "/",
    "\n", "\r\n", "\t", "\0", "é", "\u{202e}", "true", "null", "\"\"\"", "#",
];

/// A position, half the time in the first 256 bytes, where headers, keys and lengths are.
fn position(rng: &mut Rng, len: usize) -> usize {
    if rng.chance(2) {
        rng.below(len.min(256) + 1)
    } else {
        rng.below(len + 1)
    }
}

fn random_byte(rng: &mut Rng, format: Format) -> u8 {
    if format == Format::Text && !rng.chance(8) {
        // printable ASCII, newline and tab
        match rng.below(97) {
            95 => b'\n',
            96 => b'\t',
            c => b' ' + c as u8,
        }
    } else {
        rng.next() as u8
    }
}

/// A length in 1..=max, short lengths far more often than long ones.
fn short_len(rng: &mut Rng, max: usize) -> usize {
    let cap = if rng.chance(8) { max } else { max.min(8) };
    1 + rng.below(cap.max(1))
}

/// One mutation of `data`, the kinds libFuzzer's default mutators make (without its coverage
/// feedback): bit flips, byte changes, insertions, deletions, copies within the input, edge
/// values, numbers swapped for edge numbers, truncation, and splices with another seed.
fn mutate_once(rng: &mut Rng, data: &mut Vec<u8>, seeds: &[Vec<u8>], format: Format) {
    let len = data.len();
    match rng.below(11) {
        0 if len > 0 => {
            // Text mostly keeps to ASCII: a flipped top bit makes the input invalid UTF-8,
            // which the text targets reject before their parser.
            let bits = if format == Format::Text && !rng.chance(8) {
                7
            } else {
                8
            };
            let i = position(rng, len - 1);
            data[i] ^= 1 << rng.below(bits);
        }
        1 if len > 0 => {
            let i = position(rng, len - 1);
            data[i] = random_byte(rng, format);
        }
        2 => {
            let at = position(rng, len);
            let n = short_len(rng, 64);
            let bytes: Vec<u8> = (0..n).map(|_| random_byte(rng, format)).collect();
            data.splice(at..at, bytes);
        }
        3 if len > 0 => {
            let at = position(rng, len - 1);
            let n = short_len(rng, len - at);
            data.drain(at..at + n);
        }
        4 if len > 0 => {
            // A copy of a range, inserted elsewhere (repeated keys, tables, chunks, nodes).
            let from = rng.below(len);
            let n = short_len(rng, len - from);
            let copy = data[from..from + n].to_vec();
            let at = position(rng, len);
            data.splice(at..at, copy);
        }
        5 if format != Format::Text || rng.chance(4) => {
            let value = INTERESTING_BYTES[rng.below(INTERESTING_BYTES.len())];
            let at = position(rng, len);
            if rng.chance(2) || at + value.len() > len {
                data.splice(at..at, value.iter().copied());
            } else {
                data[at..at + value.len()].copy_from_slice(value);
            }
        }
        5 | 6 => {
            let tokens = if rng.chance(2) {
                NUMBERS
            } else {
                INTERESTING_TEXT
            };
            let token = tokens[rng.below(tokens.len())].as_bytes();
            let at = position(rng, len);
            data.splice(at..at, token.iter().copied());
        }
        7 if len > 0 => {
            // The run of digits at or after a position, replaced by an edge number.
            let start = position(rng, len - 1);
            if let Some(first) = data[start..].iter().position(u8::is_ascii_digit) {
                let first = start + first;
                let end = data[first..]
                    .iter()
                    .position(|b| !b.is_ascii_digit())
                    .map_or(len, |n| first + n);
                let token = NUMBERS[rng.below(NUMBERS.len())].as_bytes();
                data.splice(first..end, token.iter().copied());
            }
        }
        8 if len > 0 => data.truncate(rng.below(len)),
        9 | 10 if !seeds.is_empty() => {
            // Splice: this input's head, another seed's tail (both cut at random points).
            let other = &seeds[rng.below(seeds.len())];
            let at = position(rng, len);
            let from = rng.below(other.len() + 1);
            data.truncate(at);
            data.extend_from_slice(&other[from..]);
        }
        _ => data.push(random_byte(rng, format)),
    }
    data.truncate(MAX_LEN);
}

/// CRC-32 (ISO-HDLC, as PNG uses), bit by bit: the inputs are small.
fn crc32(bytes: &[u8]) -> u32 {
    let mut crc = !0u32;
    for &b in bytes {
        crc ^= u32::from(b);
        for _ in 0..8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xedb8_8320
            } else {
                crc >> 1
            };
        }
    }
    !crc
}

/// Rewrites the CRC of every chunk whose length fits the data, so a mutant reaches the parts
/// of the PNG petal reads instead of failing the decoder's checksum.
fn fix_png_crcs(data: &mut [u8]) {
    let mut at = 8;
    while at + 12 <= data.len() {
        let len = u32::from_be_bytes([data[at], data[at + 1], data[at + 2], data[at + 3]]) as usize;
        let Some(end) = (at + 8).checked_add(len) else {
            return;
        };
        if end + 4 > data.len() {
            return;
        }
        let crc = crc32(&data[at + 4..end]);
        data[end..end + 4].copy_from_slice(&crc.to_be_bytes());
        at = end + 4;
    }
}

/// The chunks of a PNG as (type, data), if `data` is the signature and whole chunks.
fn png_chunks(data: &[u8]) -> Option<Vec<([u8; 4], Vec<u8>)>> {
    let mut chunks = Vec::new();
    let mut at = 8;
    while at < data.len() {
        let header = data.get(at..at + 8)?;
        let len = u32::from_be_bytes([header[0], header[1], header[2], header[3]]) as usize;
        let kind = [header[4], header[5], header[6], header[7]];
        let body = data.get(at + 8..(at + 8).checked_add(len)?)?;
        chunks.push((kind, body.to_vec()));
        at += 12 + len;
    }
    (data.len() >= 8).then_some(chunks)
}

/// A PNG whose chunks have the right lengths and CRCs, with `data`'s first 8 bytes as the
/// signature.
fn png_from_chunks(data: &[u8], chunks: &[([u8; 4], Vec<u8>)]) -> Vec<u8> {
    let mut out = data[..8].to_vec();
    for (kind, body) in chunks {
        out.extend((body.len() as u32).to_be_bytes());
        let crc_from = out.len();
        out.extend(kind);
        out.extend(body);
        let crc = crc32(&out[crc_from..]);
        out.extend(crc.to_be_bytes());
    }
    out
}

/// A PNG mutant that stays a well-formed chunk sequence: the data of one chunk (a text chunk,
/// where petal's settings are, three times in four) is mutated as text, and its length and CRC
/// are rewritten. `None` if `data` is not a whole PNG.
fn png_chunk_mutant(rng: &mut Rng, data: &[u8]) -> Option<Vec<u8>> {
    let mut chunks = png_chunks(data)?;
    let text: Vec<usize> = (0..chunks.len())
        .filter(|&i| matches!(&chunks[i].0, b"iTXt" | b"tEXt" | b"zTXt"))
        .collect();
    let i = if !text.is_empty() && !rng.chance(4) {
        text[rng.below(text.len())]
    } else {
        rng.below(chunks.len())
    };
    let body = &mut chunks.get_mut(i)?.1;
    for _ in 0..1 + rng.below(3) {
        mutate_once(rng, body, &[], Format::Text);
    }
    Some(png_from_chunks(data, &chunks))
}

fn mutant(rng: &mut Rng, seeds: &[Vec<u8>], format: Format) -> Vec<u8> {
    let mut data = seeds[rng.below(seeds.len())].clone();
    if format == Format::Png && rng.chance(2) {
        if let Some(m) = png_chunk_mutant(rng, &data) {
            return m;
        }
    }
    for _ in 0..1 + rng.below(4) {
        mutate_once(rng, &mut data, seeds, format);
    }
    if format == Format::Png && !rng.chance(4) {
        fix_png_crcs(&mut data);
    }
    data
}

/// The committed files of one directory, sorted by name (read_dir's order is the file
/// system's, and the mutants must not depend on it).
fn inputs_in(dir: &Path) -> Vec<(String, Vec<u8>)> {
    let Ok(entries) = std::fs::read_dir(dir) else {
        return Vec::new();
    };
    let mut paths: Vec<PathBuf> = entries
        .map(|e| e.expect("listing a committed input directory").path())
        .filter(|p| p.is_file())
        .collect();
    paths.sort();
    paths
        .into_iter()
        .map(|p| {
            let bytes =
                std::fs::read(&p).unwrap_or_else(|e| panic!("reading {}: {e}", p.display()));
            let name = p
                .file_name()
                .map_or_else(String::new, |n| n.to_string_lossy().into_owned());
            (name, bytes)
        })
        .collect()
}

/// Runs `check` on `input`; a panic becomes an error that says how to reproduce it, with the
/// input written under target/ (the test's tmp directory).
fn run_caught(target: &str, check: fn(&[u8]), label: &str, input: &[u8]) -> Result<(), String> {
    let Err(payload) = panic::catch_unwind(|| check(input)) else {
        return Ok(());
    };
    let why = payload
        .downcast_ref::<&str>()
        .map(|s| s.to_string())
        .or_else(|| payload.downcast_ref::<String>().cloned())
        .unwrap_or_else(|| "no message".into());
    let dir = Path::new(env!("CARGO_TARGET_TMPDIR")).join("hostile_input");
    let file = dir.join(format!("{target}-{label}"));
    let saved = std::fs::create_dir_all(&dir)
        .and_then(|()| std::fs::write(&file, input))
        .map_or_else(
            |e| format!("the input could not be saved to {}: {e}", file.display()),
            |()| {
                format!(
                    "input saved to {f}; reproduce: cargo +nightly fuzz run {target} {f}",
                    f = file.display()
                )
            },
        );
    Err(format!(
        "{target}: {label} ({} bytes) panicked: {why}\n{saved}",
        input.len()
    ))
}

/// The committed seeds and regression inputs of `target`, then `mutations` mutants of them.
/// Fails on the first panic.
fn hostile_pass(target: &str, check: fn(&[u8]), format: Format, mutations: usize) {
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let seeds = inputs_in(&root.join("fuzz/corpus").join(target));
    let regressions = inputs_in(&root.join("tests/fixtures/hostile").join(target));
    assert!(
        !seeds.is_empty(),
        "{target}: no seeds in fuzz/corpus/{target}"
    );
    let started = std::time::Instant::now();
    let mut slowest = (std::time::Duration::ZERO, String::new());
    let mut timed = |label: String, input: &[u8]| {
        let t = std::time::Instant::now();
        let result = run_caught(target, check, &label, input);
        if t.elapsed() > slowest.0 {
            slowest = (t.elapsed(), label);
        }
        if let Err(e) = result {
            panic!("{e}");
        }
    };
    for (name, bytes) in &seeds {
        timed(format!("seed-{name}"), bytes);
    }
    for (name, bytes) in &regressions {
        timed(format!("regression-{name}"), bytes);
    }
    let pool: Vec<Vec<u8>> = seeds
        .iter()
        .chain(&regressions)
        .map(|(_, b)| b.clone())
        .collect();
    let times: usize = std::env::var("PETAL_HOSTILE_TIMES")
        .ok()
        .and_then(|s| s.parse().ok())
        .unwrap_or(1);
    // Under qemu-user (.ci/cross) every input costs 10-30 times as much; the ARM runs still
    // try a twentieth of the mutants, for the 32-bit sizes of armv7.
    let emulated = std::env::var_os("PETAL_TEST_EMULATED").is_some();
    let mutations = mutations * times / if emulated { 20 } else { 1 };
    let mut rng = Rng::new(target);
    for i in 0..mutations {
        let input = mutant(&mut rng, &pool, format);
        timed(format!("mutation-{i}"), &input);
    }
    println!(
        "{target}: {} seeds, {} regressions, {} mutants in {:.1} s; slowest {} ({:.1} ms)",
        seeds.len(),
        regressions.len(),
        mutations,
        started.elapsed().as_secs_f64(),
        slowest.1,
        slowest.0.as_secs_f64() * 1e3,
    );
}

// Mutants per target, sized so the whole file runs in well under a minute in the release
// profile on a 2-core machine: ~9 s in all on this project's VM (each target 0.3-4 s; 10-60 us
// an input, ~150 us for onnx_bytes, whose mutants mostly stop in the protobuf, ~1 ms for
// those that reach tract's analysis). PETAL_HOSTILE_TIMES=N runs N times as many.

#[test]
fn fuzz_target_card_json_on_stable() {
    hostile_pass("card_json", checks::card_json, Format::Text, 100_000);
}

#[test]
fn fuzz_target_frame_toml_on_stable() {
    hostile_pass("frame_toml", checks::frame_toml, Format::Text, 100_000);
}

#[test]
fn fuzz_target_display_spec_on_stable() {
    hostile_pass("display_spec", checks::display_spec, Format::Text, 200_000);
}

#[test]
fn fuzz_target_board_toml_on_stable() {
    hostile_pass("board_toml", checks::board_toml, Format::Text, 100_000);
}

#[test]
fn fuzz_target_init_noise_npy_on_stable() {
    hostile_pass(
        "init_noise_npy",
        checks::init_noise_npy,
        Format::Binary,
        30_000,
    );
}

#[test]
fn fuzz_target_png_metadata_on_stable() {
    hostile_pass("png_metadata", checks::png_metadata, Format::Png, 50_000);
}

#[test]
fn fuzz_target_onnx_bytes_on_stable() {
    hostile_pass("onnx_bytes", checks::onnx_bytes, Format::Binary, 20_000);
}

#[test]
fn the_mutator_reaches_png_text_past_the_checksums() {
    // Without the CRC fix-up nearly every PNG mutant dies in the decoder; check that the
    // fix-up keeps a mutated petal chunk readable as text.
    let root = Path::new(env!("CARGO_MANIFEST_DIR"));
    let mut png = std::fs::read(root.join("fuzz/corpus/png_metadata/seed7-32px.png")).unwrap();
    let at = png
        .windows(6)
        .position(|w| w == b"\"seed\"")
        .expect("the seed's petal chunk names a seed");
    png[at + 1] = b'S';
    fix_png_crcs(&mut png);
    let text = petal::picture::png_text(std::io::Cursor::new(&png), "x.png", "petal")
        .unwrap()
        .unwrap();
    assert!(text.contains("\"Seed\""), "{text}");
}
