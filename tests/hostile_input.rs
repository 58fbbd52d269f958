//! Hostile and broken input to every parser of outside input: each gets a clear error naming
//! the problem, before anything large is allocated. Inputs the fuzzers (fuzz/run.sh) found
//! land here as regression tests.

use std::path::Path;

use petal::display::DisplaySpec;
use petal::frame::config::{FrameOptions, FrameSettings};
use petal::generate::GenerateParams;

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
            .join("tests/fixtures/hostile/onnx-tract-panic-model-rs-187.onnx"),
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
