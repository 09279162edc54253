//! The browser window: a winit window with an OpenGL context (glutin) that egui_glow paints into.

use std::num::NonZeroU32;
use std::sync::Arc;

use egui_glow::glow;
use glutin::context::{
    ContextApi, ContextAttributesBuilder, NotCurrentGlContext, PossiblyCurrentContext,
    PossiblyCurrentGlContext,
};
use glutin::display::{GetGlDisplay, GlDisplay};
use glutin::surface::{GlSurface, Surface, SurfaceAttributesBuilder, SwapInterval, WindowSurface};
use raw_window_handle::{HasWindowHandle, RawWindowHandle};
use winit::event_loop::ActiveEventLoop;
use winit::window::{Window, WindowAttributes};

/// A window and the GL context current on it.
///
/// Fields drop in declaration order: the GL surface and context must go before the X window they
/// draw into (destroying a GLX window whose X window is gone is an X error, which winit reports
/// when the event loop ends).
pub struct GlWindow {
    pub gl: Arc<glow::Context>,
    surface: Surface<WindowSurface>,
    context: PossiblyCurrentContext,
    pub window: Window,
}

impl GlWindow {
    /// Creates the window (hidden until the first frame is painted) and its GL context.
    pub fn new(event_loop: &ActiveEventLoop, attributes: WindowAttributes) -> Result<Self, String> {
        let template = glutin::config::ConfigTemplateBuilder::new()
            .prefer_hardware_accelerated(None)
            .with_depth_size(0)
            .with_stencil_size(0)
            .with_transparency(false);
        let (window, config) = glutin_winit::DisplayBuilder::new()
            .with_preference(glutin_winit::ApiPreference::FallbackEgl)
            .with_window_attributes(Some(attributes.clone()))
            .build(event_loop, template, |mut configs| {
                configs
                    .next()
                    .expect("glutin offers at least one configuration")
            })
            .map_err(|e| format!("no usable OpenGL configuration: {e}"))?;
        let display = config.display();
        let window = match window {
            Some(w) => w,
            None => glutin_winit::finalize_window(event_loop, attributes, &config)
                .map_err(|e| format!("cannot create the window: {e}"))?,
        };
        let raw = window.window_handle().map_err(|e| e.to_string())?.as_raw();
        let not_current = unsafe {
            // SAFETY: `raw` is the live window created above.
            display
                .create_context(&config, &ContextAttributesBuilder::new().build(Some(raw)))
                .or_else(|_| {
                    display.create_context(
                        &config,
                        &ContextAttributesBuilder::new()
                            .with_context_api(ContextApi::Gles(None))
                            .build(Some(raw)),
                    )
                })
                .map_err(|e| format!("cannot create an OpenGL context: {e}"))?
        };
        let (w, h): (u32, u32) = window.inner_size().into();
        let attrs = SurfaceAttributesBuilder::<WindowSurface>::new().build(
            raw,
            NonZeroU32::new(w).unwrap_or(NonZeroU32::MIN),
            NonZeroU32::new(h).unwrap_or(NonZeroU32::MIN),
        );
        // SAFETY: the surface is created for the live window above.
        let surface = unsafe { display.create_window_surface(&config, &attrs) }
            .map_err(|e| format!("cannot create the window surface: {e}"))?;
        let context = not_current
            .make_current(&surface)
            .map_err(|e| format!("cannot use the GL context: {e}"))?;
        // Never wait for vertical blank on the UI thread; Xvfb has none anyway.
        let _ = surface.set_swap_interval(&context, SwapInterval::DontWait);
        // SAFETY: the context is current on this thread for the window's lifetime.
        let gl = unsafe {
            glow::Context::from_loader_function(|s| {
                let s = std::ffi::CString::new(s).expect("GL symbol names have no NUL");
                display.get_proc_address(&s)
            })
        };
        Ok(Self {
            window,
            context,
            surface,
            gl: Arc::new(gl),
        })
    }

    /// The X11 window id, which renderers embed their views into.
    pub fn x11_window(&self) -> Option<u64> {
        x11_window_id(&self.window)
    }

    /// Makes this window's context current; needed before painting when the browser has more
    /// than one window (the Task Manager).
    pub fn make_current(&self) {
        if let Err(e) = self.context.make_current(&self.surface) {
            log::warn!("cannot make the GL context current: {e}");
        }
    }

    pub fn resize(&self, width: u32, height: u32) {
        if let (Some(w), Some(h)) = (NonZeroU32::new(width), NonZeroU32::new(height)) {
            self.surface.resize(&self.context, w, h);
        }
    }

    pub fn swap_buffers(&self) {
        if let Err(e) = self.surface.swap_buffers(&self.context) {
            log::warn!("swap_buffers failed: {e}");
        }
    }
}

/// The X11 id of a winit window; `None` off X11.
pub fn x11_window_id(window: &Window) -> Option<u64> {
    match window.window_handle().ok()?.as_raw() {
        RawWindowHandle::Xlib(h) => Some(h.window),
        RawWindowHandle::Xcb(h) => Some(u64::from(h.window.get())),
        _ => None,
    }
}

/// A top-level window painted with egui: the browser window, the Task Manager, the tab menu. One
/// constructor for all, so each window type only says what it draws.
///
/// Fields drop in declaration order; call [`EguiWindow::destroy`] before dropping (it frees the
/// painter's GL objects while the context is current).
pub struct EguiWindow {
    pub egui: egui_glow::EguiGlow,
    pub gl: GlWindow,
    /// The X11 id of the window.
    pub x11_window: u64,
}

impl EguiWindow {
    /// Creates the window and its egui context (light theme). `on_repaint` is called, from any
    /// thread, when egui wants this window repainted after the given delay; it must not block.
    pub fn new(
        event_loop: &ActiveEventLoop,
        attributes: WindowAttributes,
        on_repaint: impl Fn(std::time::Duration) + Send + Sync + 'static,
    ) -> Result<Self, String> {
        let gl = GlWindow::new(event_loop, attributes)?;
        let x11_window = gl
            .x11_window()
            .ok_or("Warren needs an X11 window; this display is not X11")?;
        // No dithering: the chrome is flat colours, which egui's dithering leaves unchanged
        // anyway, and its per-pixel noise was the largest part of the fragment shader, which
        // software GL (llvmpipe: Xvfb, VMs, remote desktops) runs on the CPU for every pixel
        // of every frame.
        let egui = egui_glow::EguiGlow::new(event_loop, gl.gl.clone(), None, None, false);
        egui.egui_ctx.set_theme(egui::Theme::Light);
        egui.egui_ctx
            .set_request_repaint_callback(move |info| on_repaint(info.delay));
        Ok(Self {
            egui,
            gl,
            x11_window,
        })
    }

    pub fn window(&self) -> &Window {
        &self.gl.window
    }

    /// Hands a window event to egui; true when egui wants a repaint.
    pub fn on_event(&mut self, event: &winit::event::WindowEvent) -> bool {
        if let winit::event::WindowEvent::Resized(size) = event {
            self.gl.resize(size.width, size.height);
        }
        self.egui.on_window_event(&self.gl.window, event).repaint
    }

    /// Runs `ui` and paints the frame. The window is cleared with `background` first, only its
    /// top `clear_rows` physical rows when given (the rest is covered by another window).
    pub fn paint(
        &mut self,
        background: [f32; 4],
        clear_rows: Option<u32>,
        ui: impl FnMut(&mut egui::Ui),
    ) {
        self.gl.make_current();
        self.egui.run(&self.gl.window, ui);
        let size = self.gl.window.inner_size();
        // SAFETY: the GL context was made current above, on this thread.
        unsafe {
            use glow::HasContext;
            let gl = &self.gl.gl;
            let [r, g, b, a] = background;
            gl.clear_color(r, g, b, a);
            if let Some(rows) = clear_rows {
                // GL's origin is the bottom left.
                let rows = rows.min(size.height) as i32;
                gl.enable(glow::SCISSOR_TEST);
                gl.scissor(0, size.height as i32 - rows, size.width as i32, rows);
            }
            gl.clear(glow::COLOR_BUFFER_BIT);
            gl.disable(glow::SCISSOR_TEST);
        }
        self.egui.paint(&self.gl.window);
        self.gl.swap_buffers();
    }

    /// egui's points per physical pixel (after the last frame).
    pub fn pixels_per_point(&self) -> f32 {
        self.egui.egui_ctx.pixels_per_point()
    }

    /// Frees egui's GL objects; call before dropping the window.
    pub fn destroy(&mut self) {
        self.gl.make_current();
        self.egui.destroy();
    }
}
