//! The browser's chrome, drawn with egui: tab strip, toolbar with the address bar, and the browser-drawn screens of the content area (the crash notice).

use std::time::Instant;

use egui::{Align, Color32, Layout, RichText, Sense, Stroke, Vec2};
use warren_browser::policy::Protection;
use warren_browser::tabs::{Tab, TabState, Tabs, Verb};
use warren_ipc::TabId;

use crate::menu;

/// Height of the tab strip, in points.
pub const TAB_STRIP_HEIGHT: f32 = 34.0;
/// Height of the toolbar, in points.
pub const TOOLBAR_HEIGHT: f32 = 40.0;
/// Width of a pinned tab, in points: a square with the tab's initial.
pub const PINNED_TAB_WIDTH: f32 = 34.0;
/// Height of a tab, in points (the strip less its margins).
const TAB_HEIGHT: f32 = TAB_STRIP_HEIGHT - 6.0;

/// What the user asked for through the chrome this frame.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    /// Something done to a tab: activate, close, and back, forward, reload or stop of the active
    /// tab (the crash notice's Reload too).
    Verb(Verb),
    NewTab,
    /// Enter in the address bar, with the text as typed (the app fixes it up).
    Navigate(String),
    OpenTaskManager,
    /// A right click on a tab: open its menu at `at`, in the window's physical pixels.
    TabMenu {
        tab: TabId,
        at: egui::Pos2,
    },
}

/// Chrome state that is not part of the tab model.
#[derive(Default)]
pub struct ChromeState {
    /// The address bar's text.
    pub address: String,
    /// Why the last typed address was refused.
    pub address_error: Option<String>,
    /// Set to focus the address bar (and select its text) on the next frame.
    pub focus_address: bool,
    /// Set to take focus away from the address bar on the next frame (the page gets the keys).
    pub blur_address: bool,
    /// Whether the address bar had focus in the last frame (the user is typing).
    pub editing: bool,
    /// The content area's rectangle in points, as laid out in the last frame.
    pub content_rect: Option<egui::Rect>,
    /// Each tab's rectangle in points, in strip order, as laid out in the last frame.
    pub tab_rects: Vec<(TabId, egui::Rect)>,
}

/// Draws the chrome for the tabs as they are at `now` and returns the user's actions. Nothing is
/// painted in the content area while the active tab's view covers it.
pub fn draw(ui: &mut egui::Ui, tabs: &Tabs, state: &mut ChromeState, now: Instant) -> Vec<Action> {
    let mut actions = Vec::new();
    state.tab_rects.clear();
    egui::Panel::top("tab_strip")
        .exact_size(TAB_STRIP_HEIGHT)
        .frame(
            egui::Frame::NONE
                .fill(Color32::from_gray(222))
                .inner_margin(egui::Margin::symmetric(4, 3)),
        )
        .show(ui, |ui| tab_strip(ui, tabs, state, now, &mut actions));
    egui::Panel::top("toolbar")
        .exact_size(TOOLBAR_HEIGHT)
        .frame(
            egui::Frame::NONE
                .fill(Color32::from_gray(246))
                .inner_margin(egui::Margin::symmetric(6, 6)),
        )
        .show(ui, |ui| toolbar(ui, tabs, state, &mut actions));
    // Under a view the content area is never seen: painting it would only cost CPU (software GL).
    let fill = if tabs.view_covers_content() {
        Color32::TRANSPARENT
    } else {
        Color32::WHITE
    };
    egui::CentralPanel::default()
        .frame(egui::Frame::NONE.fill(fill))
        .show(ui, |ui| {
            state.content_rect = Some(ui.max_rect());
            if let Some(tab) = tabs.active_tab() {
                if let Some(reason) = tab.crash() {
                    crash_notice(ui, tab.id, reason, &mut actions);
                }
            }
        });
    actions
}

/// The small mark before a tab's title that tells its state.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
enum Mark {
    None,
    Loading,
    /// A red badge.
    Crashed,
    /// An orange badge.
    Unresponsive,
    /// A snowflake.
    Frozen,
    /// A dashed hollow circle: the tab sleeps without a process.
    Discarded,
}

fn mark(tab: &Tab, state: Option<TabState>) -> Mark {
    match state {
        Some(TabState::Crashed) => Mark::Crashed,
        Some(TabState::Discarded) => Mark::Discarded,
        Some(TabState::Frozen) => Mark::Frozen,
        _ if !tab.responsive => Mark::Unresponsive,
        _ if tab.loading => Mark::Loading,
        _ => Mark::None,
    }
}

/// The letter a pinned tab shows: the title's first letter or digit, else the host's (without
/// `www.`), else the label's first character.
fn initial(tab: &Tab) -> String {
    let from = |s: &str| {
        s.chars()
            .find(|c| c.is_alphanumeric())
            .map(|c| c.to_uppercase().collect::<String>())
    };
    if !tab.title.trim().is_empty() {
        if let Some(c) = from(&tab.title) {
            return c;
        }
    }
    let host = url::Url::parse(&tab.url).ok().and_then(|u| {
        u.host_str()
            .map(|h| h.trim_start_matches("www.").to_owned())
    });
    host.as_deref()
        .and_then(from)
        .or_else(|| from(tab.label()))
        .unwrap_or_else(|| "·".to_owned())
}

/// The sentence under a tab's title in its hover text, if its state needs one.
fn status_line(tabs: &Tabs, tab: &Tab, state: Option<TabState>, now: Instant) -> Option<String> {
    let mut parts: Vec<String> = Vec::new();
    if tab.pinned {
        parts.push("Pinned.".to_owned());
    }
    match state {
        Some(TabState::Crashed) => parts.push("This tab crashed.".to_owned()),
        Some(TabState::Discarded) => parts.push(menu::discarded_note(tab.freed_kb())),
        Some(TabState::Frozen) => {
            parts.push("Frozen: paused to save power until you return to it.".to_owned())
        }
        _ if !tab.responsive => parts.push("This page is not responding.".to_owned()),
        _ => {}
    }
    // Protections that are not visible otherwise (the active tab and pinned tabs are).
    if let Some(
        p @ (Protection::FormInput | Protection::PlayingAudio | Protection::RecentlyRestored),
    ) = tabs.protection(tab.id, now)
    {
        parts.push(format!("Not discarded automatically: {}.", p.as_str()));
    }
    (!parts.is_empty()).then(|| parts.join(" "))
}

fn tab_strip(
    ui: &mut egui::Ui,
    tabs: &Tabs,
    state: &mut ChromeState,
    now: Instant,
    actions: &mut Vec<Action>,
) {
    ui.horizontal_centered(|ui| {
        ui.spacing_mut().item_spacing.x = 2.0;
        let pinned = tabs.iter().filter(|t| t.pinned).count();
        let others = tabs.iter().filter(|t| !t.pinned).count().max(1) as f32;
        let room = ui.available_width() - 40.0 - pinned as f32 * (PINNED_TAB_WIDTH + 2.0);
        let width = (room / others).clamp(60.0, 220.0);
        for tab in tabs.iter() {
            let active = tabs.active() == Some(tab.id);
            let state_now = tabs.state(tab.id);
            let response = if tab.pinned {
                pinned_tab(ui, tab, active, state_now)
            } else {
                unpinned_tab(ui, tab, active, state_now, width, actions)
            };
            state.tab_rects.push((tab.id, response.rect));
            // Built only while the hover shows: the strip is painted far more often.
            let response = response.on_hover_ui_at_pointer(|ui| {
                ui.add(egui::Label::new(RichText::new(tab.label()).strong()).truncate());
                if let Some(status) = status_line(tabs, tab, state_now, now) {
                    ui.label(
                        RichText::new(status)
                            .size(12.0)
                            .color(Color32::from_gray(70)),
                    );
                }
            });
            let pressed = ui.input(|i| i.pointer.primary_pressed());
            if response.secondary_clicked() {
                let pos = response
                    .interact_pointer_pos()
                    .or_else(|| ui.input(|i| i.pointer.latest_pos()))
                    .unwrap_or_else(|| response.rect.left_bottom());
                actions.push(Action::TabMenu {
                    tab: tab.id,
                    at: pos * ui.ctx().pixels_per_point(),
                });
            } else if response.middle_clicked() {
                actions.push(Action::Verb(Verb::Close(tab.id)));
            } else if !active
                && pressed
                && (response.is_pointer_button_down_on() || response.clicked())
            {
                // A tab is activated as the button goes down, as in other browsers (or at the
                // click when the press and the release came in one frame).
                actions.push(Action::Verb(Verb::Activate(tab.id)));
            }
        }
        let plus = egui::Button::new(RichText::new("+").size(20.0))
            .frame(false)
            .min_size(Vec2::new(28.0, 26.0));
        if ui.add(plus).on_hover_text("New tab (Ctrl+T)").clicked() {
            actions.push(Action::NewTab);
        }
    });
}

fn tab_fill(active: bool) -> Color32 {
    if active {
        Color32::from_gray(246)
    } else {
        Color32::from_gray(208)
    }
}

/// Whether a tab is asleep (frozen or discarded), which dims its label.
fn asleep(state: Option<TabState>) -> bool {
    matches!(state, Some(TabState::Frozen | TabState::Discarded))
}

/// A tab with its state mark, title and close button.
fn unpinned_tab(
    ui: &mut egui::Ui,
    tab: &Tab,
    active: bool,
    state: Option<TabState>,
    width: f32,
    actions: &mut Vec<Action>,
) -> egui::Response {
    let frame = egui::Frame::NONE
        .fill(tab_fill(active))
        .corner_radius(6)
        .inner_margin(egui::Margin::symmetric(6, 4));
    // An interactive Ui registers its sense below its children's, so the close button keeps its
    // clicks (a frame's response made interactive afterwards would sit on top of it).
    ui.scope_builder(egui::UiBuilder::new().sense(Sense::click()), |ui| {
        frame.show(ui, |ui| {
            ui.set_width(width - 12.0);
            ui.set_height(TAB_HEIGHT - 8.0);
            ui.horizontal_centered(|ui| {
                match mark(tab, state) {
                    Mark::None => {}
                    Mark::Loading => {
                        ui.add(egui::Spinner::new().size(12.0));
                        ui.add_space(3.0);
                    }
                    m => {
                        let (rect, _) = ui.allocate_exact_size(Vec2::splat(14.0), Sense::hover());
                        paint_mark(ui.painter(), m, rect);
                        ui.add_space(3.0);
                    }
                }
                ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
                    let close = ui.add(egui::Button::new("×").frame(false).small());
                    if close.on_hover_text("Close tab (Ctrl+W)").clicked() {
                        actions.push(Action::Verb(Verb::Close(tab.id)));
                    }
                    ui.with_layout(Layout::left_to_right(Align::Center), |ui| {
                        let mut title = RichText::new(tab.label());
                        if asleep(state) {
                            title = title.color(Color32::from_gray(125));
                        }
                        if !tab.responsive {
                            title = title.italics();
                        }
                        ui.add(egui::Label::new(title).truncate().selectable(false));
                    });
                });
            });
        });
    })
    .response
}

/// A pinned tab: a square with the tab's initial (or its crash, hang or loading mark), and a
/// small frozen or discarded mark in its corner.
fn pinned_tab(
    ui: &mut egui::Ui,
    tab: &Tab,
    active: bool,
    state: Option<TabState>,
) -> egui::Response {
    let (rect, response) =
        ui.allocate_exact_size(Vec2::new(PINNED_TAB_WIDTH, TAB_HEIGHT), Sense::click());
    ui.painter().rect_filled(rect, 6.0, tab_fill(active));
    let m = mark(tab, state);
    let center = rect.center();
    match m {
        Mark::Crashed | Mark::Unresponsive => {
            paint_mark(
                ui.painter(),
                m,
                egui::Rect::from_center_size(center, Vec2::splat(14.0)),
            );
        }
        Mark::Loading => {
            ui.put(
                egui::Rect::from_center_size(center, Vec2::splat(14.0)),
                egui::Spinner::new().size(14.0),
            );
        }
        Mark::None | Mark::Frozen | Mark::Discarded => {
            let dim = asleep(state);
            let disc = if dim {
                Color32::from_gray(226)
            } else {
                Color32::from_rgb(252, 252, 252)
            };
            let text = if dim {
                Color32::from_gray(120)
            } else {
                Color32::from_rgb(30, 60, 110)
            };
            ui.painter().circle_filled(center, 10.0, disc);
            ui.painter().text(
                center,
                egui::Align2::CENTER_CENTER,
                initial(tab),
                egui::FontId::proportional(13.0),
                text,
            );
            if dim {
                let corner = rect.right_bottom() - Vec2::new(7.0, 7.0);
                ui.painter().circle_filled(corner, 6.5, tab_fill(active));
                paint_mark(
                    ui.painter(),
                    m,
                    egui::Rect::from_center_size(corner, Vec2::splat(11.0)),
                );
            }
        }
    }
    response
}

/// Paints a state mark into `rect` with shapes (egui's bundled fonts have no such glyphs). The
/// loading mark is a spinner widget, added by the caller.
fn paint_mark(painter: &egui::Painter, mark: Mark, rect: egui::Rect) {
    let c = rect.center();
    let r = rect.width().min(rect.height()) / 2.0;
    match mark {
        Mark::None | Mark::Loading => {}
        Mark::Crashed => paint_badge(painter, c, r, Color32::from_rgb(190, 40, 40)),
        Mark::Unresponsive => paint_badge(painter, c, r, Color32::from_rgb(220, 130, 0)),
        Mark::Frozen => {
            // A snowflake: three crossed lines, each half with a small fork on larger marks.
            let stroke = Stroke::new((r / 5.0).max(1.2), Color32::from_rgb(60, 120, 190));
            for k in 0..6 {
                let a = std::f32::consts::FRAC_PI_2 + k as f32 * std::f32::consts::PI / 3.0;
                let u = Vec2::new(a.cos(), a.sin());
                painter.line_segment([c, c + u * r], stroke);
                if r >= 5.0 {
                    let n = u.rot90();
                    let p = c + u * (r * 0.5);
                    painter.line_segment([p, p + (u + n) * (r * 0.28)], stroke);
                    painter.line_segment([p, p + (u - n) * (r * 0.28)], stroke);
                }
            }
        }
        Mark::Discarded => {
            // A hollow dashed circle with a small "z" inside: the tab sleeps with no process.
            let color = Color32::from_gray(115);
            let stroke = Stroke::new((r / 6.0).max(1.0), color);
            let radius = r - 0.8;
            let dashes = 8;
            for i in 0..dashes {
                let a0 = i as f32 / dashes as f32 * std::f32::consts::TAU;
                let a1 = a0 + std::f32::consts::TAU / dashes as f32 * 0.55;
                let points: Vec<egui::Pos2> = (0..=4)
                    .map(|k| {
                        let a = a0 + (a1 - a0) * k as f32 / 4.0;
                        c + Vec2::new(a.cos(), a.sin()) * radius
                    })
                    .collect();
                painter.add(egui::Shape::line(points, stroke));
            }
            let z = r * 0.38;
            painter.add(egui::Shape::line(
                vec![
                    c + Vec2::new(-z, -z),
                    c + Vec2::new(z, -z),
                    c + Vec2::new(-z, z),
                    c + Vec2::new(z, z),
                ],
                Stroke::new((r / 6.0).max(1.1), color),
            ));
        }
    }
}

/// A round warning badge with an exclamation mark, of radius `r`.
fn paint_badge(painter: &egui::Painter, c: egui::Pos2, r: f32, color: Color32) {
    painter.circle_filled(c, r, color);
    painter.line_segment(
        [c - Vec2::new(0.0, r * 0.57), c + Vec2::new(0.0, r * 0.14)],
        Stroke::new(2.0, Color32::WHITE),
    );
    painter.circle_filled(c + Vec2::new(0.0, r * 0.57), 1.2, Color32::WHITE);
}

fn toolbar(ui: &mut egui::Ui, tabs: &Tabs, state: &mut ChromeState, actions: &mut Vec<Action>) {
    let active = tabs.active_tab();
    let live = active.is_some_and(|t| t.crash().is_none());
    ui.horizontal_centered(|ui| {
        let back = live && active.is_some_and(|t| t.can_go_back);
        if icon_button(ui, Icon::Back, back)
            .on_hover_text("Back (Alt+Left)")
            .clicked()
        {
            actions.extend(active.map(|t| Action::Verb(Verb::Back(t.id))));
        }
        let forward = live && active.is_some_and(|t| t.can_go_forward);
        if icon_button(ui, Icon::Forward, forward)
            .on_hover_text("Forward (Alt+Right)")
            .clicked()
        {
            actions.extend(active.map(|t| Action::Verb(Verb::Forward(t.id))));
        }
        if live && active.is_some_and(|t| t.loading) {
            if icon_button(ui, Icon::Stop, true)
                .on_hover_text("Stop loading")
                .clicked()
            {
                actions.extend(active.map(|t| Action::Verb(Verb::Stop(t.id))));
            }
        } else if icon_button(ui, Icon::Reload, active.is_some())
            .on_hover_text("Reload (Ctrl+R)")
            .clicked()
        {
            actions.extend(active.map(|t| Action::Verb(Verb::Reload(t.id))));
        }
        // The Task Manager button sits at the right end; the address bar takes the rest.
        let mut open_task_manager = false;
        ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
            if icon_button(ui, Icon::Tasks, true)
                .on_hover_text("Task Manager (Shift+Esc)")
                .clicked()
            {
                open_task_manager = true;
            }
            ui.with_layout(Layout::left_to_right(Align::Center), |ui| {
                address_bar(ui, state, actions)
            });
        });
        if open_task_manager {
            actions.push(Action::OpenTaskManager);
        }
    });
}

fn address_bar(ui: &mut egui::Ui, state: &mut ChromeState, actions: &mut Vec<Action>) {
    {
        let error = state.address_error.clone();
        let edit = egui::TextEdit::singleline(&mut state.address)
            .id_salt("address_bar")
            .hint_text("Enter an address or a file path")
            .desired_width(f32::INFINITY)
            .margin(egui::Margin::symmetric(8, 4))
            .text_color_opt(error.as_ref().map(|_| Color32::from_rgb(170, 20, 20)));
        let mut output = ui.add(edit);
        if let Some(error) = &error {
            output = output.on_hover_text(error);
            let rect = output.rect;
            ui.painter().rect_stroke(
                rect,
                4.0,
                Stroke::new(1.5, Color32::from_rgb(200, 40, 40)),
                egui::StrokeKind::Inside,
            );
            ui.painter().text(
                rect.right_center() - Vec2::new(8.0, 0.0),
                egui::Align2::RIGHT_CENTER,
                error,
                egui::FontId::proportional(12.0),
                Color32::from_rgb(170, 20, 20),
            );
        }
        if state.focus_address {
            state.focus_address = false;
            output.request_focus();
            if let Some(mut text_state) = egui::TextEdit::load_state(ui.ctx(), output.id) {
                let all = egui::text::CCursorRange::two(
                    egui::text::CCursor::new(0),
                    egui::text::CCursor::new(state.address.chars().count()),
                );
                text_state.cursor.set_char_range(Some(all));
                text_state.store(ui.ctx(), output.id);
            }
        }
        if state.blur_address {
            state.blur_address = false;
            output.surrender_focus();
        }
        if output.changed() {
            state.address_error = None;
        }
        if output.lost_focus() && ui.input(|i| i.key_pressed(egui::Key::Enter)) {
            actions.push(Action::Navigate(state.address.clone()));
        }
        state.editing = output.has_focus();
    }
}

/// The crash notice's face, drawn with shapes (egui's bundled fonts have no such glyph).
fn sad_face(ui: &mut egui::Ui, size: f32) {
    let (rect, _) = ui.allocate_exact_size(Vec2::splat(size), Sense::hover());
    let painter = ui.painter();
    let c = rect.center();
    let r = size / 2.0 - 2.0;
    let color = Color32::from_gray(120);
    painter.circle_stroke(c, r, Stroke::new(3.0, color));
    painter.circle_filled(c + Vec2::new(-r * 0.35, -r * 0.25), r * 0.1, color);
    painter.circle_filled(c + Vec2::new(r * 0.35, -r * 0.25), r * 0.1, color);
    let frown: Vec<egui::Pos2> = (0..=16)
        .map(|i| {
            let a = std::f32::consts::PI * (1.2 + 0.6 * i as f32 / 16.0);
            c + Vec2::new(a.cos(), a.sin()) * r * 0.5 + Vec2::new(0.0, r * 0.65)
        })
        .collect();
    painter.add(egui::Shape::line(frown, Stroke::new(3.0, color)));
}

#[derive(Clone, Copy)]
enum Icon {
    Back,
    Forward,
    Reload,
    Stop,
    /// Bars of different heights: the Task Manager.
    Tasks,
}

/// A toolbar button with a vector icon (egui's bundled fonts lack arrow glyphs).
fn icon_button(ui: &mut egui::Ui, icon: Icon, enabled: bool) -> egui::Response {
    let (rect, response) = ui.allocate_exact_size(
        Vec2::new(28.0, 26.0),
        if enabled {
            Sense::click()
        } else {
            Sense::hover()
        },
    );
    let painter = ui.painter();
    if enabled && response.hovered() {
        painter.rect_filled(rect, 4.0, Color32::from_gray(222));
    }
    let color = if enabled {
        Color32::from_gray(50)
    } else {
        Color32::from_gray(175)
    };
    let stroke = Stroke::new(2.0, color);
    let c = rect.center();
    let r = 7.0;
    match icon {
        Icon::Back | Icon::Forward => {
            let dir = if matches!(icon, Icon::Back) {
                -1.0
            } else {
                1.0
            };
            let tip = c + Vec2::new(dir * r, 0.0);
            painter.line_segment([c - Vec2::new(dir * r, 0.0), tip], stroke);
            painter.line_segment([tip, tip + Vec2::new(-dir * 5.0, -5.0)], stroke);
            painter.line_segment([tip, tip + Vec2::new(-dir * 5.0, 5.0)], stroke);
        }
        Icon::Reload => {
            let points: Vec<egui::Pos2> = (0..=24)
                .map(|i| {
                    let a = -0.9 + (i as f32 / 24.0) * 5.0;
                    c + Vec2::new(a.cos(), a.sin()) * (r - 1.0)
                })
                .collect();
            let end = *points.last().unwrap_or(&c);
            painter.add(egui::Shape::line(points, stroke));
            let a = -0.9f32 + 5.0;
            let tangent = Vec2::new(-a.sin(), a.cos());
            let normal = Vec2::new(a.cos(), a.sin());
            painter.add(egui::Shape::convex_polygon(
                vec![end + tangent * 4.0, end + normal * 3.5, end - normal * 3.5],
                color,
                Stroke::NONE,
            ));
        }
        Icon::Tasks => {
            for (i, h) in [6.0, 11.0, 8.0].into_iter().enumerate() {
                let x = c.x - 6.0 + i as f32 * 5.0;
                painter.rect_filled(
                    egui::Rect::from_min_max(
                        egui::pos2(x, c.y + 6.0 - h),
                        egui::pos2(x + 3.5, c.y + 6.0),
                    ),
                    1.0,
                    color,
                );
            }
        }
        Icon::Stop => {
            painter.line_segment(
                [c + Vec2::new(-r, -r) * 0.8, c + Vec2::new(r, r) * 0.8],
                stroke,
            );
            painter.line_segment(
                [c + Vec2::new(-r, r) * 0.8, c + Vec2::new(r, -r) * 0.8],
                stroke,
            );
        }
    }
    response
}

fn crash_notice(ui: &mut egui::Ui, tab: TabId, reason: &str, actions: &mut Vec<Action>) {
    ui.with_layout(Layout::top_down(Align::Center), |ui| {
        ui.add_space(ui.available_height() * 0.25);
        sad_face(ui, 64.0);
        ui.add_space(8.0);
        ui.label(
            RichText::new("This tab stopped working")
                .size(24.0)
                .strong(),
        );
        ui.add_space(6.0);
        ui.label(
            RichText::new(reason)
                .size(14.0)
                .color(Color32::from_gray(80)),
        );
        ui.add_space(4.0);
        ui.label(
            RichText::new("Other tabs were not affected.")
                .size(13.0)
                .color(Color32::from_gray(110)),
        );
        ui.add_space(16.0);
        if ui
            .add(
                egui::Button::new(RichText::new("Reload").size(16.0))
                    .min_size(Vec2::new(110.0, 34.0)),
            )
            .clicked()
        {
            actions.push(Action::Verb(Verb::Reload(tab)));
        }
    });
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::menu::fake::World;
    use egui::{Event, Modifiers, PointerButton, Pos2, RawInput, Rect, ViewportId};
    use warren_ipc::RendererToBrowser;

    /// Drives the chrome headlessly, frame by frame.
    struct Harness {
        ctx: egui::Context,
        state: ChromeState,
        time: f64,
        pixels_per_point: f32,
    }

    impl Harness {
        fn new(pixels_per_point: f32) -> Self {
            Self {
                ctx: egui::Context::default(),
                state: ChromeState::default(),
                time: 0.0,
                pixels_per_point,
            }
        }

        fn frame(&mut self, w: &World, events: Vec<Event>) -> Vec<Action> {
            self.time += 0.05;
            let mut input = RawInput {
                screen_rect: Some(Rect::from_min_size(
                    Pos2::ZERO,
                    Vec2::new(1024.0, 768.0) / self.pixels_per_point,
                )),
                time: Some(self.time),
                events,
                ..Default::default()
            };
            input
                .viewports
                .entry(ViewportId::ROOT)
                .or_default()
                .native_pixels_per_point = Some(self.pixels_per_point);
            let mut actions = Vec::new();
            let state = &mut self.state;
            let _ = self
                .ctx
                .run_ui(input, |ui| actions = draw(ui, &w.tabs, state, w.now));
            actions
        }

        /// Moves the pointer to `pos`, presses and releases `button`; every action on the way.
        fn click(&mut self, w: &World, pos: Pos2, button: PointerButton) -> Vec<Action> {
            let event = |pressed| Event::PointerButton {
                pos,
                button,
                pressed,
                modifiers: Modifiers::NONE,
            };
            let mut actions = self.frame(w, vec![Event::PointerMoved(pos)]);
            actions.extend(self.frame(w, vec![event(true)]));
            actions.extend(self.frame(w, vec![event(false)]));
            actions
        }

        fn rect(&self, id: TabId) -> Rect {
            self.state
                .tab_rects
                .iter()
                .find(|(t, _)| *t == id)
                .map(|(_, r)| *r)
                .expect("the tab was drawn")
        }
    }

    #[test]
    fn right_click_on_a_tab_asks_for_its_menu_in_physical_pixels() {
        let mut w = World::new();
        w.open_live("https://a.example/");
        let b = w.open_live("https://b.example/");
        let mut h = Harness::new(2.0);
        h.frame(&w, Vec::new());
        let pos = h.rect(b).center();
        let actions = h.click(&w, pos, PointerButton::Secondary);
        assert_eq!(
            actions,
            vec![Action::TabMenu {
                tab: b,
                at: pos * 2.0
            }]
        );
    }

    #[test]
    fn pinned_tabs_come_first_and_are_narrow() {
        let mut w = World::new();
        let a = w.open_live("https://a.example/");
        let b = w.open_live("https://b.example/");
        w.apply(Verb::Pin(b));
        let mut h = Harness::new(1.0);
        h.frame(&w, Vec::new());
        let (pinned, other) = (h.rect(b), h.rect(a));
        assert_eq!(h.state.tab_rects[0].0, b);
        assert!(pinned.right() <= other.left());
        assert_eq!(pinned.width(), PINNED_TAB_WIDTH);
        assert!(other.width() > 2.0 * pinned.width());
        // A pinned tab has no close button: a click anywhere on it activates it.
        let actions = h.click(
            &w,
            pinned.right_center() - Vec2::new(4.0, 0.0),
            PointerButton::Primary,
        );
        assert_eq!(actions, vec![Action::Verb(Verb::Activate(b))]);
    }

    #[test]
    fn a_press_activates_a_background_tab_and_a_middle_click_closes_it() {
        let mut w = World::new();
        w.open_live("https://a.example/");
        let b = w.open("https://b.example/");
        w.apply(Verb::Discard(b));
        let mut h = Harness::new(1.0);
        h.frame(&w, Vec::new());
        let pos = h.rect(b).left_center() + Vec2::new(30.0, 0.0);
        assert_eq!(
            h.click(&w, pos, PointerButton::Primary),
            vec![Action::Verb(Verb::Activate(b))]
        );
        assert_eq!(
            h.click(&w, pos, PointerButton::Middle),
            vec![Action::Verb(Verb::Close(b))]
        );
    }

    #[test]
    fn the_close_button_closes_its_tab() {
        let mut w = World::new();
        let a = w.open_live("https://a.example/");
        let mut h = Harness::new(1.0);
        h.frame(&w, Vec::new());
        // The close button sits at the right end of the tab, inside its margin.
        let pos = h.rect(a).right_center() - Vec2::new(12.0, 0.0);
        assert_eq!(
            h.click(&w, pos, PointerButton::Primary),
            vec![Action::Verb(Verb::Close(a))]
        );
    }

    #[test]
    fn marks_follow_the_tab_state() {
        let mut w = World::new();
        let a = w.open_live("https://a.example/");
        let loading = w.open("https://b.example/");
        let frozen = w.open_live("https://c.example/");
        let discarded = w.open("https://d.example/");
        let crashed = w.open_live("https://e.example/");
        w.apply(Verb::Freeze(frozen));
        w.apply(Verb::Discard(discarded));
        w.apply(Verb::EndProcess(crashed));
        let m = |id| mark(w.tabs.get(id).unwrap(), w.tabs.state(id));
        assert_eq!(m(a), Mark::None);
        assert_eq!(m(loading), Mark::Loading);
        assert_eq!(m(frozen), Mark::Frozen);
        assert_eq!(m(discarded), Mark::Discarded);
        assert_eq!(m(crashed), Mark::Crashed);
    }

    #[test]
    fn hover_text_explains_sleeping_and_pinned_tabs() {
        let mut w = World::new();
        w.open_live("https://a.example/");
        let frozen = w.open_live("https://b.example/");
        let discarded = w.open("https://c.example/");
        let form = w.open_live("https://d.example/");
        w.apply(Verb::Freeze(frozen));
        w.apply(Verb::Discard(discarded));
        w.apply(Verb::Pin(discarded));
        w.message(form, RendererToBrowser::FormEdited(true));
        let line = |id| status_line(&w.tabs, w.tabs.get(id).unwrap(), w.tabs.state(id), w.now);
        assert_eq!(
            line(discarded).as_deref(),
            Some("Pinned. Discarded to save memory (freed 52 MiB). Click to restore.")
        );
        assert!(line(frozen).unwrap().starts_with("Frozen: paused"));
        assert_eq!(
            line(form).as_deref(),
            Some("Not discarded automatically: form input.")
        );
    }

    #[test]
    fn initials_come_from_the_title_else_the_host() {
        let mut w = World::new();
        let a = w.open_live("https://www.wikipedia.org/");
        let b = w.open_live("https://b.example/");
        w.message(
            b,
            RendererToBrowser::TitleChanged {
                title: "  «Grüße» aus Köln".into(),
            },
        );
        let newtab = w.open_live(warren_ipc::NEW_TAB_URL);
        assert_eq!(initial(w.tabs.get(a).unwrap()), "W");
        assert_eq!(initial(w.tabs.get(b).unwrap()), "G");
        assert_eq!(initial(w.tabs.get(newtab).unwrap()), "N");
    }
}
