//! The browser's chrome, drawn with egui: tab strip, toolbar with the address bar, and the
//! browser-drawn screens of the content area (the crash notice).

use egui::{Align, Color32, Layout, RichText, Sense, Stroke, Vec2};
use warren_ipc::TabId;

use warren_browser::tabs::TabStrip;

/// Height of the tab strip, in points.
pub const TAB_STRIP_HEIGHT: f32 = 34.0;
/// Height of the toolbar, in points.
pub const TOOLBAR_HEIGHT: f32 = 40.0;

/// What the user asked for through the chrome this frame.
#[derive(Clone, Debug, PartialEq)]
pub enum Action {
    Activate(TabId),
    Close(TabId),
    NewTab,
    Back,
    Forward,
    Reload,
    Stop,
    /// Enter in the address bar, with the text as typed.
    Navigate(String),
    OpenTaskManager,
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
}

/// Draws the chrome and returns the user's actions.
/// `covered` says that the active tab's view covers the content area, so nothing is painted there.
pub fn draw(
    ui: &mut egui::Ui,
    tabs: &TabStrip,
    state: &mut ChromeState,
    covered: bool,
) -> Vec<Action> {
    let mut actions = Vec::new();
    egui::Panel::top("tab_strip")
        .exact_size(TAB_STRIP_HEIGHT)
        .frame(
            egui::Frame::NONE
                .fill(Color32::from_gray(222))
                .inner_margin(egui::Margin::symmetric(4, 3)),
        )
        .show(ui, |ui| tab_strip(ui, tabs, &mut actions));
    egui::Panel::top("toolbar")
        .exact_size(TOOLBAR_HEIGHT)
        .frame(
            egui::Frame::NONE
                .fill(Color32::from_gray(246))
                .inner_margin(egui::Margin::symmetric(6, 6)),
        )
        .show(ui, |ui| toolbar(ui, tabs, state, &mut actions));
    // Under a view the content area is never seen: painting it would only cost CPU (software GL).
    let fill = if covered {
        Color32::TRANSPARENT
    } else {
        Color32::WHITE
    };
    egui::CentralPanel::default()
        .frame(egui::Frame::NONE.fill(fill))
        .show(ui, |ui| {
            state.content_rect = Some(ui.max_rect());
            if let Some(tab) = tabs.active_tab() {
                if let Some(reason) = &tab.crash {
                    crash_notice(ui, reason, &mut actions);
                }
            }
        });
    actions
}

fn tab_strip(ui: &mut egui::Ui, tabs: &TabStrip, actions: &mut Vec<Action>) {
    ui.horizontal_centered(|ui| {
        ui.spacing_mut().item_spacing.x = 2.0;
        let count = tabs.len().max(1) as f32;
        let width = ((ui.available_width() - 40.0) / count).clamp(60.0, 220.0);
        for tab in tabs.iter() {
            let active = tabs.active() == Some(tab.id);
            let fill = if active {
                Color32::from_gray(246)
            } else {
                Color32::from_gray(208)
            };
            let frame = egui::Frame::NONE
                .fill(fill)
                .corner_radius(6)
                .inner_margin(egui::Margin::symmetric(6, 4));
            let response = frame
                .show(ui, |ui| {
                    ui.set_width(width - 12.0);
                    ui.horizontal(|ui| {
                        if tab.crash.is_some() {
                            badge(ui, Color32::from_rgb(190, 40, 40))
                                .on_hover_text("This tab crashed");
                        } else if !tab.responsive {
                            badge(ui, Color32::from_rgb(220, 130, 0))
                                .on_hover_text("This page is not responding");
                        } else if tab.loading {
                            ui.add(egui::Spinner::new().size(12.0));
                        }
                        ui.with_layout(Layout::right_to_left(Align::Center), |ui| {
                            let close = ui.add(egui::Button::new("×").frame(false).small());
                            if close.on_hover_text("Close tab (Ctrl+W)").clicked() {
                                actions.push(Action::Close(tab.id));
                            }
                            ui.with_layout(Layout::left_to_right(Align::Center), |ui| {
                                let mut title = RichText::new(tab.label());
                                if !tab.responsive {
                                    title = title.italics();
                                }
                                ui.add(egui::Label::new(title).truncate().selectable(false));
                            });
                        });
                    });
                })
                .response
                .interact(Sense::click());
            let response = response.on_hover_text(tab.label());
            if response.middle_clicked() {
                actions.push(Action::Close(tab.id));
            } else if response.clicked() || response.is_pointer_button_down_on() && !active {
                actions.push(Action::Activate(tab.id));
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

fn toolbar(ui: &mut egui::Ui, tabs: &TabStrip, state: &mut ChromeState, actions: &mut Vec<Action>) {
    let active = tabs.active_tab();
    let live = active.is_some_and(|t| t.crash.is_none());
    ui.horizontal_centered(|ui| {
        let back = live && active.is_some_and(|t| t.can_go_back);
        if icon_button(ui, Icon::Back, back)
            .on_hover_text("Back (Alt+Left)")
            .clicked()
        {
            actions.push(Action::Back);
        }
        let forward = live && active.is_some_and(|t| t.can_go_forward);
        if icon_button(ui, Icon::Forward, forward)
            .on_hover_text("Forward (Alt+Right)")
            .clicked()
        {
            actions.push(Action::Forward);
        }
        if live && active.is_some_and(|t| t.loading) {
            if icon_button(ui, Icon::Stop, true)
                .on_hover_text("Stop loading")
                .clicked()
            {
                actions.push(Action::Stop);
            }
        } else if icon_button(ui, Icon::Reload, active.is_some())
            .on_hover_text("Reload (Ctrl+R)")
            .clicked()
        {
            actions.push(Action::Reload);
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

/// A small round warning badge with an exclamation mark.
fn badge(ui: &mut egui::Ui, color: Color32) -> egui::Response {
    let (rect, response) = ui.allocate_exact_size(Vec2::splat(14.0), Sense::hover());
    let painter = ui.painter();
    painter.circle_filled(rect.center(), 7.0, color);
    painter.line_segment(
        [
            rect.center() - Vec2::new(0.0, 4.0),
            rect.center() + Vec2::new(0.0, 1.0),
        ],
        Stroke::new(2.0, Color32::WHITE),
    );
    painter.circle_filled(rect.center() + Vec2::new(0.0, 4.0), 1.2, Color32::WHITE);
    response
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

fn crash_notice(ui: &mut egui::Ui, reason: &str, actions: &mut Vec<Action>) {
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
            actions.push(Action::Reload);
        }
    });
}
