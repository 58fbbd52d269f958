//! `window` — a desktop window (SDL2, through `embedded-graphics-simulator`): petal on a PC, or
//! a preview of a panel (`window:240x240?scale=2`). Closing the window ends `petal frame`.
//!
//! SDL wants one thread: the window is opened and used on the thread that runs the frame loop.

use std::time::{Duration, Instant};

use embedded_graphics::pixelcolor::Rgb888;
use embedded_graphics::prelude::*;
use embedded_graphics_simulator::{
    OutputSettingsBuilder, SimulatorDisplay, SimulatorEvent, Window,
};

use super::canvas::draw_into_canvas;
use super::{Canvas, Display};
use crate::error::{Error, Result};

/// How often an idle window is painted again: after being covered, a window without a
/// compositor shows garbage until it is.
const REPAINT: Duration = Duration::from_secs(1);

pub struct WindowDisplay {
    canvas: Canvas,
    sim: SimulatorDisplay<Rgb888>,
    window: Window,
    scale: u32,
    closed: bool,
    painted: Instant,
    /// Keeps SDL's video subsystem up for the window's lifetime.
    _video: sdl2::VideoSubsystem,
}

impl WindowDisplay {
    /// Opens a `size` window, each pixel `scale` × `scale` on the screen.
    pub fn open(size: (u32, u32), scale: u32) -> Result<Self> {
        // The simulator panics when SDL cannot start; asking SDL first turns "no desktop" into
        // an error at start.
        let video = sdl2::init().and_then(|sdl| sdl.video()).map_err(|e| {
            Error::Invalid(format!(
                "window display: cannot open a window ({e}); it needs a desktop (DISPLAY or WAYLAND_DISPLAY set)"
            ))
        })?;
        let settings = OutputSettingsBuilder::new().scale(scale.max(1)).build();
        let mut window = Window::new("petal", &settings);
        let sim = SimulatorDisplay::new(Size::new(size.0, size.1));
        // The window appears (black) now, not at the first picture.
        window.update(&sim);
        Ok(WindowDisplay {
            canvas: Canvas::new(size.0, size.1),
            sim,
            window,
            scale,
            closed: false,
            painted: Instant::now(),
            _video: video,
        })
    }

    fn paint(&mut self) {
        self.window.update(&self.sim);
        self.painted = Instant::now();
    }
}

draw_into_canvas!(WindowDisplay);

impl Display for WindowDisplay {
    fn describe(&self) -> String {
        let (w, h) = self.canvas.image.dimensions();
        format!("window {w}x{h} (scale {})", self.scale)
    }

    fn show(&mut self) -> Result<()> {
        let area = self.sim.bounding_box();
        let pixels = self
            .canvas
            .image
            .pixels()
            .map(|p| Rgb888::new(p[0], p[1], p[2]));
        // Drawing into the simulator's buffer cannot fail (its error type is Infallible).
        let _ = self.sim.fill_contiguous(&area, pixels);
        self.paint();
        Ok(())
    }

    fn closed(&mut self) -> bool {
        if !self.closed {
            self.closed = self.window.events().any(|e| e == SimulatorEvent::Quit);
            if !self.closed && self.painted.elapsed() >= REPAINT {
                self.paint();
            }
        }
        self.closed
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    /// Needs a desktop (CI runs it under xvfb-run); without one, opening must fail cleanly.
    #[test]
    fn window_shows_frames_and_notices_being_closed() {
        let desktop =
            std::env::var_os("DISPLAY").is_some() || std::env::var_os("WAYLAND_DISPLAY").is_some();
        let mut d = match WindowDisplay::open((40, 30), 2) {
            Ok(d) => d,
            Err(e) => {
                assert!(!desktop, "a desktop is there but: {e}");
                let e = e.to_string();
                assert!(e.contains("cannot open a window"), "{e}");
                eprintln!("no desktop: only the error was checked ({e})");
                return;
            }
        };
        assert_eq!(d.dimensions(), (40, 30));
        let img =
            image::RgbImage::from_fn(40, 30, |x, y| image::Rgb([x as u8 * 6, y as u8 * 8, 99]));
        d.draw_image(&img).unwrap();
        d.show().unwrap();
        assert_eq!(
            d.sim.get_pixel(Point::new(39, 29)),
            Rgb888::new(234, 232, 99),
            "the shown frame is in the window's buffer"
        );
        assert!(!d.closed());
        // What the desktop sends when the viewer closes the window.
        let events = d._video.sdl().event().unwrap();
        events
            .push_event(sdl2::event::Event::Quit { timestamp: 0 })
            .unwrap();
        assert!(d.closed());
        assert!(d.closed(), "closed stays closed");
    }
}
