//! The Task Manager's own window: its egui view, the process monitor behind it, and its once-a-second refresh.

use std::time::{Duration, Instant};

use warren_browser::procs;
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
    /// Its own monitor: CPU % is over the interval since the same reader's previous reading, so
    /// the window's refreshes must not shorten a control client's interval.
    monitor: Option<procs::Monitor>,
}

impl TaskManagerWindow {
    /// Opens the window with a first reading.
    pub fn open(
        event_loop: &ActiveEventLoop,
        on_repaint: impl Fn(Duration) + Send + Sync + 'static,
        tabs: &Tabs,
        now: Instant,
    ) -> Result<Self, String> {
        let attributes = Window::default_attributes()
            .with_title("Task Manager")
            .with_inner_size(winit::dpi::LogicalSize::new(760.0, 460.0))
            .with_position(winit::dpi::PhysicalPosition::new(120, 120));
        let window = EguiWindow::new(event_loop, attributes, on_repaint)?;
        let mut this = Self {
            window,
            view: TaskView::default(),
            monitor: None,
        };
        this.refresh(tabs, true, now);
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

    /// Takes a new reading (once a second unless paused; at once when `force`d).
    pub fn refresh(&mut self, tabs: &Tabs, force: bool, now: Instant) {
        if self.view.paused && !force {
            return;
        }
        let snapshot = match self.measure(tabs) {
            Ok(snapshot) => snapshot,
            Err(e) => {
                log::warn!("cannot measure processes: {e}");
                return;
            }
        };
        self.view.update(taskman::rows(&snapshot, tabs, now), now);
        self.request_redraw();
    }

    fn measure(&mut self, tabs: &Tabs) -> Result<procs::Snapshot, String> {
        let monitor = match &mut self.monitor {
            Some(monitor) => monitor,
            None => self
                .monitor
                .insert(procs::Monitor::new().map_err(|e| e.to_string())?),
        };
        let renderers = tabs.renderers();
        let query = procs::Query {
            browser_pid: std::process::id(),
            renderers: &renderers,
            spares: &[],
            pss: self.view.show_pss,
        };
        monitor.refresh(&query).map_err(|e| e.to_string())
    }

    /// Frees egui's GL objects; call before dropping.
    pub fn destroy(&mut self) {
        self.window.destroy();
    }
}
