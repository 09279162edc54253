//! The Task Manager's own window: its egui view, fed every [`warren_browser::procs::sampler::INTERVAL`] with the process sampler's latest reading.
//!
//! The window never measures: the sampler ([`warren_browser::procs::sampler`]) does, on its own
//! thread, while the window is open (with PSS while the PSS column is shown), and the window
//! shows each new [`Sample`] as it arrives.

use std::time::{Duration, Instant};

use warren_browser::procs::sampler::{Sample, Watch};
use warren_browser::tabs::Tabs;
use winit::event::{ElementState, WindowEvent};
use winit::event_loop::ActiveEventLoop;
use winit::window::{Window, WindowId};

use crate::gl::EguiWindow;
use crate::taskman::{self, TaskAction, TaskView};
use crate::window::WindowOutcome;

/// The Task Manager window.
pub struct TaskManagerWindow {
    window: EguiWindow,
    view: TaskView,
    /// The sequence number of the sample shown last.
    shown: Option<u64>,
    /// The next sample is shown even while the view is paused (the user acted on a tab).
    force_next: bool,
}

impl TaskManagerWindow {
    /// Opens the window, showing `latest` (the sampler's latest reading, if any) until the next.
    pub fn open(
        event_loop: &ActiveEventLoop,
        on_repaint: impl Fn(Duration) + Send + Sync + 'static,
        latest: Option<&Sample>,
        tabs: &Tabs,
        now: Instant,
    ) -> Result<Self, String> {
        let attributes = Window::default_attributes()
            .with_title("Task Manager")
            .with_inner_size(winit::dpi::LogicalSize::new(840.0, 460.0))
            .with_position(winit::dpi::PhysicalPosition::new(120, 120));
        let window = EguiWindow::new(event_loop, attributes, on_repaint)?;
        let mut this = Self {
            window,
            view: TaskView::default(),
            shown: None,
            force_next: true,
        };
        if let Some(sample) = latest {
            this.show(sample, tabs, now);
        }
        Ok(this)
    }

    pub fn id(&self) -> WindowId {
        self.window.window().id()
    }

    pub fn x11_window(&self) -> u64 {
        self.window.x11_window
    }

    pub fn raise(&self) {
        self.window.window().focus_window();
    }

    pub fn request_redraw(&self) {
        self.window.window().request_redraw();
    }

    /// Handles one of the window's events.
    pub fn handle_event(&mut self, event: &WindowEvent) -> WindowOutcome {
        let mut outcome = WindowOutcome::None;
        match event {
            WindowEvent::CloseRequested | WindowEvent::Destroyed => {
                return WindowOutcome::CloseRequested
            }
            WindowEvent::RedrawRequested => return WindowOutcome::RedrawRequested,
            WindowEvent::MouseInput {
                state: ElementState::Pressed,
                ..
            } => outcome = WindowOutcome::Clicked,
            _ => {}
        }
        if self.window.on_event(event) {
            self.request_redraw();
        }
        outcome
    }

    /// Paints the window and returns what the user did.
    pub fn paint(&mut self, tabs: &Tabs, now: Instant) -> Vec<TaskAction> {
        let mut actions = Vec::new();
        let view = &mut self.view;
        self.window.paint([1.0, 1.0, 1.0, 1.0], None, |ui| {
            actions = view.draw(ui, tabs, now)
        });
        actions
    }

    /// What the sampler's periodic rounds must measure while the window is open.
    pub fn watch(&self) -> Watch {
        Watch {
            periodic: true,
            pss: self.view.show_pss,
        }
    }

    /// Shows the next reading after the user acted on a tab, even while the view is paused.
    pub fn force_next(&mut self) {
        self.force_next = true;
    }

    /// Shows `sample` if it is newer than the reading shown, unless the view is paused.
    pub fn show(&mut self, sample: &Sample, tabs: &Tabs, now: Instant) {
        if self.shown.is_some_and(|seq| seq >= sample.seq) {
            return;
        }
        if self.view.paused && !self.force_next {
            return;
        }
        self.force_next = false;
        self.shown = Some(sample.seq);
        self.view
            .update(taskman::rows(&sample.snapshot, tabs, now), now);
        self.request_redraw();
    }

    /// Frees egui's GL objects; call before dropping.
    pub fn destroy(&mut self) {
        self.window.destroy();
    }
}
