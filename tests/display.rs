//! Displays: the framebuffer against a file standing in for the device, the PNG and memory
//! displays, fitting pictures to screens, dithering and spec parsing.

use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use image::{Rgb, RgbImage};
use petal::display::compose::compose;
use petal::display::dither::{self, Palette, ACEP7_NOMINAL};
use petal::display::fb::FbFormat;
use petal::display::scale::{place, Fit, Layout, Smoothing};
use petal::display::{Display, DisplaySpec, MemoryDisplay};

/// A picture where every pixel differs: checks catch swapped or shifted pixels.
fn pattern(w: u32, h: u32) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        Rgb([
            (x * 37 + y * 11) as u8,
            (y * 53 + x * 5 + 7) as u8,
            (x * y * 13 + 200) as u8,
        ])
    })
}

fn open(spec: &str) -> petal::display::AnyDisplay {
    spec.parse::<DisplaySpec>()
        .unwrap_or_else(|e| panic!("{spec}: {e}"))
        .open()
        .unwrap_or_else(|e| panic!("{spec}: {e}"))
}

/// Draws `pattern` on a framebuffer file and checks every pixel, and that padding and the
/// file's size are left alone.
fn check_fb(bpp: u32, stride: usize, format: FbFormat, extra: &str) {
    let dir = tempfile::tempdir().unwrap();
    let dev = dir.path().join("fb0");
    let (w, h) = (7u32, 5u32);
    let len = stride * h as usize;
    std::fs::write(&dev, vec![0xAAu8; len]).unwrap();
    let spec = format!(
        "fb:{}?width={w}&height={h}&bpp={bpp}&stride={stride}{extra}",
        dev.display()
    );
    let mut d = open(&spec);
    assert_eq!(d.dimensions(), (w, h));
    let img = pattern(w, h);
    d.draw_image(&img).unwrap();
    d.show().unwrap();
    let bytes = std::fs::read(&dev).unwrap();
    assert_eq!(bytes.len(), len, "the device must not grow");
    let bpp_bytes = format.bytes_per_pixel();
    for y in 0..h {
        for x in 0..w {
            let p = img.get_pixel(x, y);
            let at = y as usize * stride + x as usize * bpp_bytes;
            let px = &bytes[at..at + bpp_bytes];
            let mut want = [0u8; 4];
            format.encode(Rgb888::new(p[0], p[1], p[2]), &mut want);
            assert_eq!(px, &want[..bpp_bytes], "pixel ({x},{y}) of {format:?}");
            // And by hand, independently of encode():
            let (r, g, b) = (p[0], p[1], p[2]);
            match format {
                FbFormat::Rgb565 => {
                    let v = u16::from_le_bytes([px[0], px[1]]);
                    assert_eq!(v >> 11, u16::from(r >> 3));
                    assert_eq!((v >> 5) & 0x3f, u16::from(g >> 2));
                    assert_eq!(v & 0x1f, u16::from(b >> 3));
                }
                FbFormat::Xrgb8888 => assert_eq!(&px[..3], &[b, g, r]),
                FbFormat::Xbgr8888 => assert_eq!(&px[..3], &[r, g, b]),
                _ => {}
            }
            let back = format.decode(px);
            let (tr, tg) = if bpp == 16 { (7, 3) } else { (0, 0) };
            assert!(
                back.r().abs_diff(r) <= tr
                    && back.g().abs_diff(g) <= tg
                    && back.b().abs_diff(b) <= tr,
                "({x},{y}): {back:?} read back for {p:?}"
            );
        }
    }
}

#[test]
fn framebuffer_rgb565_padded_stride() {
    // 7 px * 2 bytes = 14; lines padded to 32 bytes.
    check_fb(16, 32, FbFormat::Rgb565, "");
}

#[test]
fn framebuffer_xrgb8888_padded_stride() {
    check_fb(32, 7 * 4 + 12, FbFormat::Xrgb8888, "");
}

#[test]
fn framebuffer_tight_stride_and_bgr() {
    check_fb(32, 7 * 4, FbFormat::Xbgr8888, "&order=bgr");
    check_fb(16, 14, FbFormat::Bgr565, "&order=bgr");
}

#[test]
fn framebuffer_geometry_from_sysfs() {
    let dir = tempfile::tempdir().unwrap();
    let sys = dir.path().join("sys");
    std::fs::create_dir(&sys).unwrap();
    // A double-buffered virtual size; the visible mode is the first line of `modes`.
    std::fs::write(sys.join("virtual_size"), "6,8\n").unwrap();
    std::fs::write(sys.join("modes"), "U:6x4p-0\n").unwrap();
    std::fs::write(sys.join("bits_per_pixel"), "16\n").unwrap();
    std::fs::write(sys.join("stride"), "16\n").unwrap();
    let dev = dir.path().join("fb1");
    std::fs::write(&dev, vec![0u8; 16 * 8]).unwrap();
    let mut d = open(&format!("fb:{}?sysfs={}", dev.display(), sys.display()));
    assert_eq!(d.dimensions(), (6, 4));
    assert!(d.describe().contains("Rgb565"), "{}", d.describe());
    d.clear(Rgb888::new(255, 255, 255)).unwrap();
    d.show().unwrap();
    let bytes = std::fs::read(&dev).unwrap();
    for y in 0..4 {
        let line = &bytes[y * 16..y * 16 + 12];
        assert!(line.iter().all(|b| *b == 0xff), "line {y}: {line:?}");
        assert!(
            bytes[y * 16 + 12..y * 16 + 16].iter().all(|b| *b == 0),
            "padding of line {y}"
        );
    }
    // Without modes: the virtual size.
    std::fs::remove_file(sys.join("modes")).unwrap();
    let d = open(&format!("fb:{}?sysfs={}", dev.display(), sys.display()));
    assert_eq!(d.dimensions(), (6, 8));
}

#[test]
fn framebuffer_errors_are_clear() {
    let dir = tempfile::tempdir().unwrap();
    let dev = dir.path().join("fb9");
    std::fs::write(&dev, [0u8; 64]).unwrap();
    let err = |spec: String| match spec.parse::<DisplaySpec>().and_then(|s| s.open()) {
        Ok(_) => panic!("{spec} should fail"),
        Err(e) => e.to_string(),
    };
    let e = err(format!(
        "fb:{}?sysfs={}/nowhere",
        dev.display(),
        dir.path().display()
    ));
    assert!(e.contains("give the geometry in the spec"), "{e}");
    let e = err(format!("fb:{}?width=4&height=4&bpp=12", dev.display()));
    assert!(
        e.contains("12 bits per pixel") && e.contains("RGB565"),
        "{e}"
    );
    let e = err(format!(
        "fb:{}?width=4&height=4&bpp=16&stride=6",
        dev.display()
    ));
    assert!(e.contains("stride 6"), "{e}");
    let e = err(format!(
        "fb:{}/missing?width=4&height=4&bpp=16",
        dir.path().display()
    ));
    assert!(e.contains("missing"), "{e}");
}

#[test]
fn unknown_and_unbuilt_displays_give_clear_errors() {
    let err = |s: &str| {
        s.parse::<DisplaySpec>()
            .err()
            .map(|e| e.to_string())
            .unwrap_or_default()
    };
    let e = err("hdmi:0");
    assert!(
        e.contains("unknown display") && e.contains("png:DIR") && e.contains("fb:/dev/fbN"),
        "{e}"
    );
    if cfg!(not(feature = "spi")) {
        let e = err("spi:st7789?dc=25");
        assert!(e.contains("--features spi"), "{e}");
    }
    if cfg!(not(feature = "epaper")) {
        let e = err("epaper:7in3f");
        assert!(
            e.contains("--features epaper") && e.contains("palette=acep7"),
            "{e}"
        );
    }
    if cfg!(not(feature = "window")) {
        let e = err("window");
        assert!(e.contains("--features window"), "{e}");
    }
    let e = err("png:/tmp/x?colour=red");
    assert!(e.contains("unknown option \"colour\""), "{e}");
    let e = err("png:/tmp/x?size=big");
    assert!(e.contains("size=\"big\""), "{e}");
    let e = err("png:/tmp/x?saturation=2");
    assert!(e.contains("within 0..1"), "{e}");
    let e = err("png:/tmp/x?palette=cmyk");
    assert!(e.contains("unknown palette"), "{e}");
    let e = err("png:");
    assert!(e.contains("needs a path"), "{e}");
    let e = err("memory?min-interval=soon");
    assert!(e.contains("not a duration"), "{e}");
}

#[test]
fn png_display_writes_numbered_frames_and_current() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("frames");
    let mut d = open(&format!("png:{}?size=40x30&keep=3", out.display()));
    assert_eq!(d.dimensions(), (40, 30));
    for i in 0..5u8 {
        d.clear(Rgb888::new(i * 40, 0, 0)).unwrap();
        d.show().unwrap();
    }
    let mut names: Vec<String> = std::fs::read_dir(&out)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "current.png",
            "frame-000003.png",
            "frame-000004.png",
            "frame-000005.png"
        ]
    );
    let cur = image::open(out.join("current.png")).unwrap().to_rgb8();
    assert_eq!(cur.dimensions(), (40, 30));
    assert_eq!(cur.get_pixel(3, 3), &Rgb([160, 0, 0]));
    // Numbering goes on after a restart.
    let mut d = open(&format!("png:{}?size=40x30&keep=3", out.display()));
    d.show().unwrap();
    assert!(out.join("frame-000006.png").exists());
    assert!(!out.join("frame-000003.png").exists());
}

#[test]
fn memory_display_records_frames() {
    let mut d = MemoryDisplay::new(10, 6).keep_last(2);
    let rec = d.recording();
    for i in 0..3u8 {
        d.clear(Rgb888::new(i, i, i)).unwrap();
        d.show().unwrap();
    }
    assert_eq!(rec.shown(), 3);
    let frames = rec.frames();
    assert_eq!(frames.len(), 2);
    assert_eq!(frames[1].get_pixel(0, 0), &Rgb([2, 2, 2]));
    d.fail_next(1);
    assert!(d.show().is_err());
    assert!(d.show().is_ok());
}

#[test]
fn fit_letterboxes_with_whole_pixel_blocks() {
    let src = pattern(32, 32);
    let bg = [10, 20, 30];
    let layout = Layout {
        fit: Fit::Fit,
        smoothing: Smoothing::Nearest,
        background: bg,
    };
    // 100x70: the largest whole scale is 2 -> 64x64, centred at (18, 3).
    let out = place(&src, 100, 70, &layout);
    assert_eq!(out.dimensions(), (100, 70));
    for y in 0..70 {
        for x in 0..100 {
            let inside = (18..82).contains(&x) && (3..67).contains(&y);
            let want = if inside {
                *src.get_pixel((x - 18) / 2, (y - 3) / 2)
            } else {
                Rgb(bg)
            };
            assert_eq!(out.get_pixel(x, y), &want, "({x},{y})");
        }
    }
}

#[test]
fn fill_crops_and_smooth_scales_exactly() {
    let src = pattern(32, 32);
    let fill = Layout {
        fit: Fit::Fill,
        smoothing: Smoothing::Nearest,
        background: [255, 0, 255],
    };
    // 100x40: the smallest whole scale covering it is 4 -> 128x128, cropped around the centre.
    let out = place(&src, 100, 40, &fill);
    assert!(
        out.pixels().all(|p| p != &Rgb([255, 0, 255])),
        "fill leaves no background"
    );
    assert_eq!(out.get_pixel(0, 0), src.get_pixel(14 / 4, 44 / 4));
    let smooth = Layout {
        fit: Fit::Fit,
        smoothing: Smoothing::Smooth,
        background: [1, 2, 3],
    };
    // Smooth scaling uses the whole height: 70 px, no bars above or below.
    let out = place(&src, 100, 70, &smooth);
    let bars = |y: u32| {
        (0..100)
            .filter(|x| out.get_pixel(*x, y) == &Rgb([1, 2, 3]))
            .count()
    };
    assert_eq!(bars(0), 30, "15 px of bar on each side");
    assert_eq!(bars(69), 30);
}

#[test]
fn caption_is_drawn_at_the_bottom() {
    let src = RgbImage::from_pixel(32, 32, Rgb([200, 200, 200]));
    let layout = Layout::default();
    let plain = compose(&src, 256, 256, &layout, None, None);
    let captioned = compose(
        &src,
        256,
        256,
        &layout,
        Some("2026-11-28 00:32  seed 7"),
        None,
    );
    let differ = |y0: u32, y1: u32| {
        (y0..y1).any(|y| (0..256).any(|x| plain.get_pixel(x, y) != captioned.get_pixel(x, y)))
    };
    assert!(differ(236, 256), "caption near the bottom");
    assert!(!differ(0, 200), "nothing drawn above it");
}

fn mean(img: &RgbImage) -> [f64; 3] {
    let n = f64::from(img.width() * img.height());
    let mut m = [0f64; 3];
    for p in img.pixels() {
        for k in 0..3 {
            m[k] += f64::from(p[k]) / n;
        }
    }
    m
}

/// Smooth, colourful test pictures inside the gamut of `colours` (each pixel a smoothly
/// varying mix of them), so a perfect ditherer could match every pixel's colour on average.
fn in_gamut(w: u32, h: u32, seed: u32, colours: &[[f32; 3]]) -> RgbImage {
    RgbImage::from_fn(w, h, |x, y| {
        let (fx, fy, s) = (x as f32 / w as f32, y as f32 / h as f32, seed as f32);
        let weights: Vec<f32> = (0..colours.len())
            .map(|i| {
                let i = i as f32;
                ((fx * (1.0 + i) + fy * (2.0 - i * 0.3) + s * 0.9 + i).sin() + 1.05).powi(2)
            })
            .collect();
        let total: f32 = weights.iter().sum();
        let mix = |k: usize| {
            let v: f32 = weights
                .iter()
                .zip(colours)
                .map(|(w, c)| w * c[k])
                .sum::<f32>()
                / total;
            v.round().clamp(0.0, 255.0) as u8
        };
        Rgb([mix(0), mix(1), mix(2)])
    })
}

fn gradient(w: u32, h: u32, seed: u32) -> RgbImage {
    in_gamut(w, h, seed, &Palette::acep7(0.0).unwrap().effective())
}

#[test]
fn dithering_uses_only_palette_colours_and_keeps_the_mean() {
    for seed in 0..4 {
        let img = gradient(96, 64, seed);
        let p = Palette::acep7(0.0).unwrap();
        let out = dither::dither(&img, &p);
        assert_eq!(out.dimensions(), img.dimensions());
        for px in out.pixels() {
            assert!(
                ACEP7_NOMINAL.iter().any(|c| [c.r(), c.g(), c.b()] == px.0),
                "{px:?} is not a panel colour"
            );
        }
        let (a, b) = (mean(&img), mean(&out));
        for k in 0..3 {
            assert!(
                (a[k] - b[k]).abs() < 6.0,
                "seed {seed}: mean {a:?} vs dithered {b:?}"
            );
        }
    }
}

#[test]
fn saturation_changes_which_colours_the_ditherer_believes() {
    let img = in_gamut(64, 64, 1, &Palette::acep7(1.0).unwrap().effective());
    let idx = |s: f32| dither::dither_indices(&img, &Palette::acep7(s).unwrap());
    let (lo, hi) = (idx(0.0), idx(1.0));
    assert_ne!(lo, hi);
    // At saturation 1 the mean of the colours the panel really shows stays close.
    let p = Palette::acep7(1.0).unwrap();
    let eff = p.effective();
    let mut m = [0f64; 3];
    for i in &hi {
        for k in 0..3 {
            m[k] += f64::from(eff[*i as usize][k]) / hi.len() as f64;
        }
    }
    let want = mean(&img);
    for k in 0..3 {
        assert!((m[k] - want[k]).abs() < 6.0, "{m:?} vs {want:?}");
    }
    assert!(Palette::acep7(1.5).is_err());
}

#[test]
fn palette_display_gets_dithered_frames() {
    let src = gradient(32, 32, 2);
    let p = Palette::acep7(0.5).unwrap();
    let frame = compose(&src, 64, 48, &Layout::default(), Some("seed 1"), Some(&p));
    assert!(frame
        .pixels()
        .all(|px| ACEP7_NOMINAL.iter().any(|c| [c.r(), c.g(), c.b()] == px.0)));
    let d: DisplaySpec = "png:/tmp/unused?palette=acep7&saturation=0.3&min-interval=2m"
        .parse()
        .unwrap();
    assert_eq!(d.palette.as_ref().map(|p| p.saturation), Some(0.3));
    assert_eq!(d.min_refresh, std::time::Duration::from_secs(120));
}

#[test]
fn rotate_turns_the_picture_for_a_turned_screen() {
    // A screen turned 90° clockwise must hold the upright picture turned 90° the other way.
    type Turn = fn(&RgbImage) -> RgbImage;
    let turns: [(u16, Turn); 4] = [
        (0, |i| i.clone()),
        (90, image::imageops::rotate270),
        (180, image::imageops::rotate180),
        (270, image::imageops::rotate90),
    ];
    for (rotate, native) in turns {
        let dir = tempfile::tempdir().unwrap();
        let spec = format!("png:{}?size=6x4&rotate={rotate}", dir.path().display());
        let mut d = open(&spec);
        let (w, h) = if rotate % 180 == 90 { (4, 6) } else { (6, 4) };
        assert_eq!(d.dimensions(), (w, h), "rotate={rotate}");
        if rotate != 0 {
            assert!(d.describe().contains(&format!("turned {rotate}°")));
        }
        let upright = pattern(w, h);
        d.draw_image(&upright).unwrap();
        d.show().unwrap();
        let written = image::open(dir.path().join("current.png"))
            .unwrap()
            .to_rgb8();
        assert_eq!(
            written.dimensions(),
            (6, 4),
            "the file keeps the screen's own size"
        );
        assert!(written == native(&upright), "rotate={rotate}");
    }
    let e = "fb:/dev/fb0?rotate=45".parse::<DisplaySpec>().unwrap_err();
    assert!(e.to_string().contains("rotate=\"45\""), "{e}");
}
