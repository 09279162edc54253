//! X keyboard focus for the embedded web view, and the window activation WebKit derives from it.
//!
//! Keys reach the page only while the web view's X window holds the input focus. Under a bare
//! Xvfb there is no window manager to hand out focus, and the web view lives in a child window of
//! another client's (the browser's) window, so the renderer sets it itself with `XSetInputFocus`:
//! when the browser sends `Focus`, and whenever the user presses a mouse button in the view.
//!
//! The X window is the web view widget's own GDK window, made native once (GTK3 child windows are
//! client-side by default, which have no X window of their own). Key events then arrive on a
//! window GTK maps to the web view, and GTK routes them through the toplevel to its focus widget.
//!
//! GTK marks a toplevel active only on focus events for toplevel windows it created itself; ours
//! is wry's wrapper around a foreign X window, so GTK never would, and WebKit would then treat the
//! page as unfocused (`document.hasFocus()` false, no caret, no `focus`/`blur` events). So the
//! renderer watches X focus on the web view's window and forwards each real change to the GTK
//! toplevel as a synthetic focus-change event, exactly as GDK would for a window of its own.

use std::cell::Cell;

use gdk::prelude::*;
use glib::translate::{from_glib_full, ToGlibPtr};
use gtk::prelude::*;
use x11_dl::xlib;

/// Why keyboard focus handling could not be set up.
#[derive(Debug, thiserror::Error)]
pub enum FocusError {
    #[error("cannot load libX11 for keyboard focus (install libx11-6): {0}")]
    Xlib(#[from] x11_dl::error::OpenError),
}

/// Gives the web view X input focus.
pub struct XFocus {
    xlib: xlib::Xlib,
}

/// Whether an X focus event on the web view's window means the view gained (`Some(true)`) or
/// lost (`Some(false)`) the keyboard, or says nothing about it (`None`).
///
/// Focus events caused by keyboard grabs (the browser's shortcut grabs activate on every
/// shortcut) and those that only follow the pointer are ignored, so a shortcut does not blur the
/// page for a moment.
pub fn focus_transition(focus_in: bool, mode: i32, detail: i32) -> Option<bool> {
    if mode == xlib::NotifyGrab || mode == xlib::NotifyUngrab || detail == xlib::NotifyPointer {
        return None;
    }
    if !focus_in && detail == xlib::NotifyInferior {
        // The focus moved to a window inside ours: the view still has the keyboard.
        return None;
    }
    Some(focus_in)
}

/// What the X event filter needs; lives as long as the process, like the filter.
struct Activation {
    toplevel: glib::WeakRef<gtk::Window>,
    wanted: Cell<Option<bool>>,
    sent: Cell<Option<bool>>,
    scheduled: Cell<bool>,
}

impl Activation {
    fn note(&'static self, active: bool) {
        self.wanted.set(Some(active));
        if !self.scheduled.replace(true) {
            // Not from inside GDK's event translation: on the next idle turn of the main loop.
            glib::idle_add_local_once(move || self.apply());
        }
    }

    fn apply(&self) {
        self.scheduled.set(false);
        let Some(active) = self.wanted.get() else {
            return;
        };
        if self.sent.get() == Some(active) {
            return;
        }
        let Some(toplevel) = self.toplevel.upgrade() else {
            return;
        };
        let Some(window) = toplevel.window() else {
            return;
        };
        self.sent.set(Some(active));
        log::debug!(target: "renderer", "web view {}", if active { "activated" } else { "deactivated" });
        // SAFETY: a freshly allocated focus-change event; the window reference it gets is
        // released by gdk_event_free when `event` drops.
        let event: gdk::Event = unsafe {
            let raw = gdk::ffi::gdk_event_new(gdk::ffi::GDK_FOCUS_CHANGE);
            (*raw).focus_change.window = window.to_glib_full();
            (*raw).focus_change.send_event = 1;
            (*raw).focus_change.in_ = i16::from(active);
            from_glib_full(raw)
        };
        toplevel.send_focus_change(&event);
    }
}

/// GDK filter on the web view's X window: turns X focus changes into activation changes.
unsafe extern "C" fn focus_filter(
    xevent: *mut gdk::ffi::GdkXEvent,
    _event: *mut gdk::ffi::GdkEvent,
    data: glib::ffi::gpointer,
) -> gdk::ffi::GdkFilterReturn {
    // SAFETY: GDK passes the XEvent it is translating; `data` is the leaked `Activation`.
    let (xevent, activation) = unsafe {
        (
            &*(xevent as *const xlib::XEvent),
            &*(data as *const Activation),
        )
    };
    let kind = xevent.get_type();
    if kind == xlib::FocusIn || kind == xlib::FocusOut {
        // SAFETY: the event type says this union member is the valid one.
        let focus = unsafe { xevent.focus_change };
        if let Some(active) = focus_transition(kind == xlib::FocusIn, focus.mode, focus.detail) {
            activation.note(active);
        }
    }
    gdk::ffi::GDK_FILTER_CONTINUE
}

impl XFocus {
    /// Loads Xlib.
    pub fn open() -> Result<Self, FocusError> {
        Ok(Self {
            xlib: xlib::Xlib::open()?,
        })
    }

    /// Gives the web view's GDK window an X window of its own, so that it can take the focus, and
    /// starts forwarding its X focus changes to GTK. Call once, right after the view is built
    /// (wry realizes it).
    pub fn prepare(&self, view: &webkit2gtk::WebView) {
        let Some(window) = view.window() else {
            log::warn!(target: "renderer", "the web view is not realized; keyboard focus will not reach the page");
            return;
        };
        if !window.has_native() && !window.ensure_native() {
            log::warn!(target: "renderer", "the web view's window cannot be made native; keyboard focus may not reach the page");
            return;
        }
        let Some(toplevel) = view
            .toplevel()
            .and_then(|t| t.downcast::<gtk::Window>().ok())
        else {
            log::warn!(target: "renderer", "the web view has no GTK toplevel; pages will not see focus changes");
            return;
        };
        if !self.select_focus_events(&window) {
            return;
        }
        let activation: &'static Activation = Box::leak(Box::new(Activation {
            toplevel: toplevel.downgrade(),
            wanted: Cell::new(None),
            sent: Cell::new(None),
            scheduled: Cell::new(false),
        }));
        // SAFETY: the filter and its data stay valid for the life of the process (the data is
        // leaked on purpose: the view lives until the process exits).
        unsafe {
            gdk::ffi::gdk_window_add_filter(
                window.to_glib_none().0,
                Some(focus_filter),
                activation as *const Activation as glib::ffi::gpointer,
            );
        }
    }

    /// Asks the X server for focus events on the view's window, on top of what GDK selected.
    fn select_focus_events(&self, window: &gdk::Window) -> bool {
        let (Some(x11_window), Ok(x11_display)) = (
            window.downcast_ref::<gdkx11::X11Window>(),
            window.display().downcast::<gdkx11::X11Display>(),
        ) else {
            log::warn!(target: "renderer", "the web view's window is not an X11 window (is GDK_BACKEND=x11 set?)");
            return false;
        };
        let xid = x11_window.xid();
        // SAFETY: as in `focus`; `attrs` is plain data filled in by XGetWindowAttributes.
        unsafe {
            let display = gdkx11::ffi::gdk_x11_display_get_xdisplay(x11_display.to_glib_none().0)
                as *mut xlib::Display;
            let mut attrs: xlib::XWindowAttributes = std::mem::zeroed();
            x11_display.error_trap_push();
            if (self.xlib.XGetWindowAttributes)(display, xid, &mut attrs) != 0 {
                (self.xlib.XSelectInput)(
                    display,
                    xid,
                    attrs.your_event_mask | xlib::FocusChangeMask,
                );
            }
            let error = x11_display.error_trap_pop();
            if error != 0 {
                log::warn!(target: "renderer", "cannot watch focus on window {xid:#x}: X error {error}");
                return false;
            }
        }
        true
    }

    /// Moves X input focus to the web view's window and makes the view GTK's focus widget.
    pub fn focus(&self, view: &webkit2gtk::WebView) {
        let Some(window) = view.window() else {
            log::warn!(target: "renderer", "cannot focus an unrealized web view");
            return;
        };
        let Some(x11_window) = window.downcast_ref::<gdkx11::X11Window>() else {
            log::warn!(target: "renderer", "the web view's window is not an X11 window (is GDK_BACKEND=x11 set?)");
            return;
        };
        let Ok(x11_display) = window.display().downcast::<gdkx11::X11Display>() else {
            log::warn!(target: "renderer", "the display is not an X11 display");
            return;
        };
        if !window.has_native() {
            log::warn!(target: "renderer", "the web view's window has no X window; cannot give it the keyboard");
            return;
        }
        let xid = x11_window.xid();
        // SAFETY: the display pointer belongs to GDK's open connection, which lives as long as
        // the process; the window id came from GDK. Errors (an unmapped or vanished window gives
        // BadMatch or BadWindow) are trapped instead of reaching GDK's fatal error handler.
        unsafe {
            let display = gdkx11::ffi::gdk_x11_display_get_xdisplay(x11_display.to_glib_none().0)
                as *mut xlib::Display;
            x11_display.error_trap_push();
            (self.xlib.XSetInputFocus)(display, xid, xlib::RevertToParent, xlib::CurrentTime);
            let error = x11_display.error_trap_pop();
            if error != 0 {
                log::debug!(target: "renderer", "XSetInputFocus on window {xid:#x} failed with X error {error}");
            }
        }
        view.grab_focus();
    }

    /// Takes X input focus away from the view (the browser's chrome has the keyboard): on a
    /// nested display nobody else would, and the page would go on showing its caret and never
    /// get `blur`.
    pub fn blur(&self, view: &webkit2gtk::WebView) {
        let Some(x11_display) = view
            .window()
            .and_then(|w| w.display().downcast::<gdkx11::X11Display>().ok())
        else {
            return;
        };
        // SAFETY: as in `focus`: GDK's connection, errors trapped.
        unsafe {
            let display = gdkx11::ffi::gdk_x11_display_get_xdisplay(x11_display.to_glib_none().0)
                as *mut xlib::Display;
            x11_display.error_trap_push();
            (self.xlib.XSetInputFocus)(display, 0, xlib::RevertToNone, xlib::CurrentTime);
            let _ = x11_display.error_trap_pop();
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn real_focus_changes_count() {
        assert_eq!(
            focus_transition(true, xlib::NotifyNormal, xlib::NotifyNonlinear),
            Some(true)
        );
        assert_eq!(
            focus_transition(false, xlib::NotifyNormal, xlib::NotifyAncestor),
            Some(false)
        );
        assert_eq!(
            focus_transition(false, xlib::NotifyNormal, xlib::NotifyNonlinear),
            Some(false)
        );
        assert_eq!(
            focus_transition(true, xlib::NotifyWhileGrabbed, xlib::NotifyNonlinear),
            Some(true)
        );
    }

    #[test]
    fn grabs_pointer_and_inferiors_are_ignored() {
        assert_eq!(
            focus_transition(false, xlib::NotifyGrab, xlib::NotifyNonlinear),
            None
        );
        assert_eq!(
            focus_transition(true, xlib::NotifyUngrab, xlib::NotifyNonlinear),
            None
        );
        assert_eq!(
            focus_transition(true, xlib::NotifyNormal, xlib::NotifyPointer),
            None
        );
        assert_eq!(
            focus_transition(false, xlib::NotifyNormal, xlib::NotifyInferior),
            None
        );
        assert_eq!(
            focus_transition(true, xlib::NotifyNormal, xlib::NotifyInferior),
            Some(true)
        );
    }
}
