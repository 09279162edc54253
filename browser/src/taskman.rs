//! The Task Manager window: one row per tab (its whole process tree summed), expandable to its
//! processes, with memory history, sorting, and the power to end a tab's renderer.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use egui::{Color32, RichText, Sense, Stroke, Vec2};
use egui_extras::{Column, TableBuilder};
use warren_ipc::TabId;

/// Seconds of memory history kept per row and in the total chart.
const HISTORY: usize = 60;

/// How long reordering waits after the pointer last moved over the table.
const HOVER_FREEZE: Duration = Duration::from_secs(3);

/// Which task a row stands for.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
pub enum RowKey {
    Browser,
    Tab(TabId),
    /// A process of the browser's tree that belongs to no tab (an orphaned helper).
    Other(u32),
}

/// One process inside a task.
#[derive(Clone, Debug, PartialEq)]
pub struct ProcessRow {
    pub pid: u32,
    pub kind: &'static str,
    pub memory_kb: Option<u64>,
    pub pss_kb: Option<u64>,
    pub cpu_percent: Option<f64>,
    pub uptime: Option<Duration>,
}

/// One task: the browser, a tab, or a stray process; its figures sum its processes.
#[derive(Clone, Debug, PartialEq)]
pub struct TaskRow {
    pub key: RowKey,
    pub title: String,
    pub state: String,
    /// The task's main process (the renderer for a tab), if it has one.
    pub pid: Option<u32>,
    pub memory_kb: Option<u64>,
    pub pss_kb: Option<u64>,
    pub cpu_percent: Option<f64>,
    pub uptime: Option<Duration>,
    pub processes: Vec<ProcessRow>,
}

/// What the user asked for in the Task Manager.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskAction {
    EndProcess(TabId),
    Activate(TabId),
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortColumn {
    Task,
    State,
    Pid,
    Memory,
    Pss,
    Cpu,
    Uptime,
}

/// The view state of the Task Manager, independent of its window.
pub struct TaskView {
    pub paused: bool,
    pub show_pss: bool,
    sort: SortColumn,
    descending: bool,
    expanded: HashSet<RowKey>,
    selected: Option<RowKey>,
    rows: Vec<TaskRow>,
    /// The order shown, kept while the pointer moves over the table.
    order: Vec<RowKey>,
    pointer_over_table_at: Option<Instant>,
    history: HashMap<RowKey, VecDeque<u64>>,
    total_history: VecDeque<u64>,
}

impl Default for TaskView {
    fn default() -> Self {
        Self {
            paused: false,
            show_pss: false,
            sort: SortColumn::Memory,
            descending: true,
            expanded: HashSet::new(),
            selected: None,
            rows: Vec::new(),
            order: Vec::new(),
            pointer_over_table_at: None,
            history: HashMap::new(),
            total_history: VecDeque::new(),
        }
    }
}

fn push_history(history: &mut VecDeque<u64>, value: u64) {
    if history.len() == HISTORY {
        history.pop_front();
    }
    history.push_back(value);
}

impl TaskView {
    /// Takes a new reading (once a second, unless paused).
    pub fn update(&mut self, rows: Vec<TaskRow>, now: Instant) {
        let keys: HashSet<RowKey> = rows.iter().map(|r| r.key).collect();
        self.history.retain(|k, _| keys.contains(k));
        for row in &rows {
            push_history(
                self.history.entry(row.key).or_default(),
                row.memory_kb.unwrap_or(0),
            );
        }
        push_history(
            &mut self.total_history,
            rows.iter().filter_map(|r| r.memory_kb).sum(),
        );
        self.rows = rows;
        self.reorder(now);
        if self.selected.is_some_and(|k| !keys.contains(&k)) {
            self.selected = None;
        }
    }

    /// Sorts the rows unless the pointer moved over the table recently; new rows go to the end
    /// and vanished rows are dropped either way.
    fn reorder(&mut self, now: Instant) {
        let frozen = self
            .pointer_over_table_at
            .is_some_and(|t| now.saturating_duration_since(t) < HOVER_FREEZE);
        if frozen {
            self.order.retain(|k| self.rows.iter().any(|r| r.key == *k));
            for row in &self.rows {
                if !self.order.contains(&row.key) {
                    self.order.push(row.key);
                }
            }
            return;
        }
        let mut rows: Vec<&TaskRow> = self.rows.iter().collect();
        rows.sort_by(|a, b| {
            // The browser stays first, as in Chromium's task manager.
            let pinned = (a.key != RowKey::Browser).cmp(&(b.key != RowKey::Browser));
            let by = compare(a, b, self.sort);
            pinned
                .then(if self.descending { by.reverse() } else { by })
                .then(a.key.cmp(&b.key))
        });
        self.order = rows.into_iter().map(|r| r.key).collect();
    }

    fn set_sort(&mut self, column: SortColumn, now: Instant) {
        if self.sort == column {
            self.descending = !self.descending;
        } else {
            self.sort = column;
            self.descending = matches!(
                column,
                SortColumn::Memory | SortColumn::Pss | SortColumn::Cpu | SortColumn::Uptime
            );
        }
        self.pointer_over_table_at = None;
        self.reorder(now);
    }

    fn row(&self, key: RowKey) -> Option<&TaskRow> {
        self.rows.iter().find(|r| r.key == key)
    }

    fn move_selection(&mut self, step: isize) {
        if self.order.is_empty() {
            return;
        }
        let current = self
            .selected
            .and_then(|k| self.order.iter().position(|o| *o == k));
        let next = match current {
            Some(i) => (i as isize + step).clamp(0, self.order.len() as isize - 1) as usize,
            None => 0,
        };
        self.selected = Some(self.order[next]);
    }

    /// Draws the window's contents.
    pub fn draw(&mut self, ui: &mut egui::Ui, now: Instant) -> Vec<TaskAction> {
        let mut actions = Vec::new();
        let selected_tab = match self.selected {
            Some(RowKey::Tab(id)) => self
                .row(RowKey::Tab(id))
                .filter(|r| r.pid.is_some())
                .map(|_| id),
            _ => None,
        };
        ui.input(|i| {
            if i.key_pressed(egui::Key::ArrowDown) {
                self.move_selection(1);
            }
            if i.key_pressed(egui::Key::ArrowUp) {
                self.move_selection(-1);
            }
            if i.key_pressed(egui::Key::Delete) {
                if let Some(id) = selected_tab {
                    actions.push(TaskAction::EndProcess(id));
                }
            }
            if i.key_pressed(egui::Key::Enter) {
                if let Some(RowKey::Tab(id)) = self.selected {
                    actions.push(TaskAction::Activate(id));
                }
            }
        });

        egui::Panel::bottom("task_manager_footer")
            .exact_size(132.0)
            .frame(egui::Frame::NONE.inner_margin(egui::Margin::symmetric(10, 6)).fill(Color32::from_gray(246)))
            .show(ui, |ui| {
                ui.horizontal(|ui| {
                    let total: u64 = self.rows.iter().filter_map(|r| r.memory_kb).sum();
                    ui.label(RichText::new(format!("Total memory footprint: {}", mib(total))).strong());
                    ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                        let end = ui.add_enabled(selected_tab.is_some(), egui::Button::new("End process"));
                        if end.on_hover_text("Ends the selected tab's renderer and its helpers (Delete)").clicked() {
                            if let Some(id) = selected_tab {
                                actions.push(TaskAction::EndProcess(id));
                            }
                        }
                        ui.checkbox(&mut self.paused, "Pause");
                        ui.checkbox(&mut self.show_pss, "PSS column")
                            .on_hover_text("Proportional set size: shared pages split between their users. Costly to read.");
                    });
                });
                ui.add_space(4.0);
                memory_chart(ui, &self.total_history);
            });

        // No fill: the window is cleared to white, and a full-window fill would cost a software-GL
        // pass over every pixel at each refresh.
        egui::CentralPanel::default()
            .frame(egui::Frame::NONE.inner_margin(egui::Margin::symmetric(8, 4)))
            .show(ui, |ui| {
                let table_rect = ui.max_rect();
                if ui.rect_contains_pointer(table_rect)
                    && ui.input(|i| i.pointer.delta() != Vec2::ZERO)
                {
                    self.pointer_over_table_at = Some(now);
                }
                let mut header_clicked = None;
                let mut table = TableBuilder::new(ui)
                    .auto_shrink([false, false])
                    .striped(true)
                    .sense(Sense::click())
                    .cell_layout(egui::Layout::left_to_right(egui::Align::Center))
                    .column(Column::remainder().at_least(180.0).clip(true))
                    .column(Column::exact(86.0))
                    .column(Column::exact(78.0))
                    .column(Column::exact(96.0));
                if self.show_pss {
                    table = table.column(Column::exact(80.0));
                }
                table = table
                    .column(Column::exact(58.0))
                    .column(Column::exact(68.0))
                    .column(Column::exact(70.0))
                    .column(Column::exact(70.0));
                let mut columns = vec![
                    (SortColumn::Task, "Task"),
                    (SortColumn::State, "State"),
                    (SortColumn::Pid, "Process ID"),
                    (SortColumn::Memory, "Memory"),
                ];
                if self.show_pss {
                    columns.push((SortColumn::Pss, "PSS"));
                }
                columns.push((SortColumn::Cpu, "CPU"));
                columns.push((SortColumn::Uptime, "Uptime"));
                let (sort, descending) = (self.sort, self.descending);
                table
                    .header(24.0, |mut header| {
                        for (column, name) in &columns {
                            header.col(|ui| {
                                let label = egui::Label::new(RichText::new(*name).strong())
                                    .sense(Sense::click());
                                if ui.add(label).clicked() {
                                    header_clicked = Some(*column);
                                }
                                if sort == *column {
                                    sort_arrow(ui, descending);
                                }
                            });
                        }
                        header.col(|ui| {
                            ui.label(RichText::new("Last 60 s").strong());
                        });
                    })
                    .body(|mut body| {
                        let order = self.order.clone();
                        for key in order {
                            let Some(row) = self.row(key).cloned() else {
                                continue;
                            };
                            let expanded = self.expanded.contains(&key);
                            let selected = self.selected == Some(key);
                            let history = self.history.get(&key).cloned().unwrap_or_default();
                            body.row(24.0, |mut table_row| {
                                table_row.set_selected(selected);
                                table_row.col(|ui| {
                                    if !row.processes.is_empty() && key != RowKey::Browser {
                                        let toggle = ui.add(
                                            egui::Button::new(if expanded { "−" } else { "+" })
                                                .small()
                                                .frame(false),
                                        );
                                        if toggle
                                            .on_hover_text("Show this tab's processes")
                                            .clicked()
                                        {
                                            if expanded {
                                                self.expanded.remove(&key);
                                            } else {
                                                self.expanded.insert(key);
                                            }
                                        }
                                    }
                                    ui.add(
                                        egui::Label::new(&row.title).truncate().selectable(false),
                                    );
                                });
                                table_row.col(|ui| {
                                    ui.label(&row.state);
                                });
                                table_row.col(|ui| {
                                    ui.label(
                                        row.pid
                                            .map(|p| p.to_string())
                                            .unwrap_or_else(|| "–".into()),
                                    );
                                });
                                table_row.col(|ui| {
                                    ui.label(row.memory_kb.map(mib).unwrap_or_else(|| "–".into()));
                                });
                                if self.show_pss {
                                    table_row.col(|ui| {
                                        ui.label(row.pss_kb.map(mib).unwrap_or_else(|| "–".into()));
                                    });
                                }
                                table_row.col(|ui| {
                                    ui.label(
                                        row.cpu_percent
                                            .map(|c| format!("{c:.1}%"))
                                            .unwrap_or_else(|| "–".into()),
                                    );
                                });
                                table_row.col(|ui| {
                                    ui.label(row.uptime.map(uptime).unwrap_or_else(|| "–".into()));
                                });
                                table_row.col(|ui| sparkline(ui, &history));
                                let response = table_row.response();
                                if response.clicked() {
                                    self.selected = Some(key);
                                }
                                if response.double_clicked() {
                                    if let RowKey::Tab(id) = key {
                                        actions.push(TaskAction::Activate(id));
                                    }
                                }
                            });
                            if expanded {
                                for process in &row.processes {
                                    body.row(20.0, |mut table_row| {
                                        table_row.col(|ui| {
                                            ui.add_space(22.0);
                                            ui.label(
                                                RichText::new(process_label(process.kind))
                                                    .color(Color32::from_gray(90)),
                                            );
                                        });
                                        table_row.col(|ui| {
                                            ui.label(
                                                RichText::new(process.kind)
                                                    .color(Color32::from_gray(90)),
                                            );
                                        });
                                        table_row.col(|ui| {
                                            ui.label(process.pid.to_string());
                                        });
                                        table_row.col(|ui| {
                                            ui.label(
                                                process
                                                    .memory_kb
                                                    .map(mib)
                                                    .unwrap_or_else(|| "–".into()),
                                            );
                                        });
                                        if self.show_pss {
                                            table_row.col(|ui| {
                                                ui.label(
                                                    process
                                                        .pss_kb
                                                        .map(mib)
                                                        .unwrap_or_else(|| "–".into()),
                                                );
                                            });
                                        }
                                        table_row.col(|ui| {
                                            ui.label(
                                                process
                                                    .cpu_percent
                                                    .map(|c| format!("{c:.1}%"))
                                                    .unwrap_or_else(|| "–".into()),
                                            );
                                        });
                                        table_row.col(|ui| {
                                            ui.label(
                                                process
                                                    .uptime
                                                    .map(uptime)
                                                    .unwrap_or_else(|| "–".into()),
                                            );
                                        });
                                        table_row.col(|_| {});
                                        // A process row selects its task: End process acts on the tab.
                                        if table_row.response().clicked() {
                                            self.selected = Some(key);
                                        }
                                    });
                                }
                            }
                        }
                        let total_memory: u64 = self.rows.iter().filter_map(|r| r.memory_kb).sum();
                        let total_pss: u64 = self.rows.iter().filter_map(|r| r.pss_kb).sum();
                        let total_cpu: f64 = self.rows.iter().filter_map(|r| r.cpu_percent).sum();
                        body.row(24.0, |mut table_row| {
                            table_row.col(|ui| {
                                ui.label(RichText::new("Total").strong());
                            });
                            table_row.col(|_| {});
                            table_row.col(|_| {});
                            table_row.col(|ui| {
                                ui.label(RichText::new(mib(total_memory)).strong());
                            });
                            if self.show_pss {
                                table_row.col(|ui| {
                                    ui.label(RichText::new(mib(total_pss)).strong());
                                });
                            }
                            table_row.col(|ui| {
                                ui.label(RichText::new(format!("{total_cpu:.1}%")).strong());
                            });
                            table_row.col(|_| {});
                            table_row.col(|_| {});
                        });
                    });
                if let Some(column) = header_clicked {
                    self.set_sort(column, now);
                }
            });
        actions
    }
}

/// The sort direction mark of the sorted column's header (egui's bundled fonts lack ▲▼).
fn sort_arrow(ui: &mut egui::Ui, descending: bool) {
    let (rect, _) = ui.allocate_exact_size(Vec2::new(10.0, 10.0), Sense::hover());
    let c = rect.center();
    let (tip, base) = if descending { (3.5, -3.5) } else { (-3.5, 3.5) };
    ui.painter().add(egui::Shape::convex_polygon(
        vec![
            egui::pos2(c.x - 4.0, c.y + base),
            egui::pos2(c.x + 4.0, c.y + base),
            egui::pos2(c.x, c.y + tip),
        ],
        Color32::from_gray(80),
        Stroke::NONE,
    ));
}

fn compare(a: &TaskRow, b: &TaskRow, column: SortColumn) -> std::cmp::Ordering {
    match column {
        SortColumn::Task => a.title.to_lowercase().cmp(&b.title.to_lowercase()),
        SortColumn::State => a.state.cmp(&b.state),
        SortColumn::Pid => a.pid.cmp(&b.pid),
        SortColumn::Memory => a.memory_kb.cmp(&b.memory_kb),
        SortColumn::Pss => a.pss_kb.cmp(&b.pss_kb),
        SortColumn::Cpu => a
            .cpu_percent
            .unwrap_or(0.0)
            .total_cmp(&b.cpu_percent.unwrap_or(0.0)),
        SortColumn::Uptime => a.uptime.cmp(&b.uptime),
    }
}

fn process_label(kind: &str) -> &'static str {
    match kind {
        "renderer" => "Renderer",
        "web" => "Web content (WebKitWebProcess)",
        "network" => "Network (WebKitNetworkProcess)",
        "browser" => "Browser",
        "spare" => "Spare renderer",
        _ => "Other process",
    }
}

fn mib(kb: u64) -> String {
    format!("{:.1} MiB", kb as f64 / 1024.0)
}

fn uptime(d: Duration) -> String {
    let s = d.as_secs();
    if s >= 3600 {
        format!("{}h {:02}m", s / 3600, (s / 60) % 60)
    } else {
        format!("{}m {:02}s", s / 60, s % 60)
    }
}

/// A 60-second memory sparkline scaled to the row's own range.
fn sparkline(ui: &mut egui::Ui, history: &VecDeque<u64>) {
    let (rect, _) = ui.allocate_exact_size(Vec2::new(64.0, 16.0), Sense::hover());
    if history.len() < 2 {
        return;
    }
    let max = history.iter().copied().max().unwrap_or(1).max(1) as f32;
    let min = history.iter().copied().min().unwrap_or(0) as f32;
    let span = (max - min).max(max * 0.05).max(1.0);
    let step = rect.width() / (HISTORY - 1) as f32;
    let offset = (HISTORY - history.len()) as f32 * step;
    let points: Vec<egui::Pos2> = history
        .iter()
        .enumerate()
        .map(|(i, v)| {
            egui::pos2(
                rect.left() + offset + i as f32 * step,
                rect.bottom() - (*v as f32 - min) / span * rect.height(),
            )
        })
        .collect();
    ui.painter().add(egui::Shape::line(
        points,
        Stroke::new(1.2, Color32::from_rgb(40, 110, 190)),
    ));
}

/// The total memory of the last 60 seconds, as a filled chart with its scale.
fn memory_chart(ui: &mut egui::Ui, history: &VecDeque<u64>) {
    let size = Vec2::new(ui.available_width(), ui.available_height().max(40.0));
    let (rect, _) = ui.allocate_exact_size(size, Sense::hover());
    let painter = ui.painter_at(rect);
    painter.rect_filled(rect, 4.0, Color32::WHITE);
    painter.rect_stroke(
        rect,
        4.0,
        Stroke::new(1.0, Color32::from_gray(210)),
        egui::StrokeKind::Inside,
    );
    let max = history.iter().copied().max().unwrap_or(0).max(1024) as f32 * 1.15;
    let step = rect.width() / (HISTORY - 1) as f32;
    let offset = (HISTORY - history.len().min(HISTORY)) as f32 * step;
    let y = |v: u64| rect.bottom() - v as f32 / max * (rect.height() - 4.0);
    if history.len() >= 2 {
        let line: Vec<egui::Pos2> = history
            .iter()
            .enumerate()
            .map(|(i, v)| egui::pos2(rect.left() + offset + i as f32 * step, y(*v)))
            .collect();
        for pair in line.windows(2) {
            painter.add(egui::Shape::convex_polygon(
                vec![
                    pair[0],
                    pair[1],
                    egui::pos2(pair[1].x, rect.bottom()),
                    egui::pos2(pair[0].x, rect.bottom()),
                ],
                Color32::from_rgba_unmultiplied(40, 110, 190, 40),
                Stroke::NONE,
            ));
        }
        painter.add(egui::Shape::line(
            line,
            Stroke::new(1.5, Color32::from_rgb(40, 110, 190)),
        ));
    }
    painter.text(
        rect.left_top() + Vec2::new(6.0, 4.0),
        egui::Align2::LEFT_TOP,
        format!("Total memory, last 60 s (max {})", mib((max / 1.15) as u64)),
        egui::FontId::proportional(11.0),
        Color32::from_gray(100),
    );
}

#[cfg(test)]
mod tests {
    use super::*;

    fn row(key: RowKey, memory: u64) -> TaskRow {
        TaskRow {
            key,
            title: format!("{key:?}"),
            state: "active".into(),
            pid: Some(1),
            memory_kb: Some(memory),
            pss_kb: None,
            cpu_percent: Some(0.0),
            uptime: None,
            processes: Vec::new(),
        }
    }

    #[test]
    fn sorts_by_memory_with_browser_first() {
        let mut v = TaskView::default();
        let now = Instant::now();
        v.update(
            vec![
                row(RowKey::Tab(TabId(1)), 10),
                row(RowKey::Browser, 5),
                row(RowKey::Tab(TabId(2)), 30),
            ],
            now,
        );
        assert_eq!(
            v.order,
            vec![
                RowKey::Browser,
                RowKey::Tab(TabId(2)),
                RowKey::Tab(TabId(1))
            ]
        );
        v.set_sort(SortColumn::Memory, now);
        assert_eq!(
            v.order,
            vec![
                RowKey::Browser,
                RowKey::Tab(TabId(1)),
                RowKey::Tab(TabId(2))
            ]
        );
    }

    #[test]
    fn order_is_frozen_while_the_pointer_moves_over_the_table() {
        let mut v = TaskView::default();
        let t0 = Instant::now();
        v.update(
            vec![
                row(RowKey::Tab(TabId(1)), 10),
                row(RowKey::Tab(TabId(2)), 30),
            ],
            t0,
        );
        assert_eq!(v.order, vec![RowKey::Tab(TabId(2)), RowKey::Tab(TabId(1))]);
        v.pointer_over_table_at = Some(t0);
        let t1 = t0 + Duration::from_secs(1);
        v.update(
            vec![
                row(RowKey::Tab(TabId(1)), 50),
                row(RowKey::Tab(TabId(2)), 30),
                row(RowKey::Tab(TabId(3)), 99),
            ],
            t1,
        );
        assert_eq!(
            v.order,
            vec![
                RowKey::Tab(TabId(2)),
                RowKey::Tab(TabId(1)),
                RowKey::Tab(TabId(3))
            ]
        );
        let t2 = t0 + HOVER_FREEZE + Duration::from_secs(1);
        v.update(
            vec![
                row(RowKey::Tab(TabId(1)), 50),
                row(RowKey::Tab(TabId(2)), 30),
                row(RowKey::Tab(TabId(3)), 99),
            ],
            t2,
        );
        assert_eq!(
            v.order,
            vec![
                RowKey::Tab(TabId(3)),
                RowKey::Tab(TabId(1)),
                RowKey::Tab(TabId(2))
            ]
        );
    }

    #[test]
    fn history_is_bounded_and_follows_rows() {
        let mut v = TaskView::default();
        let now = Instant::now();
        for i in 0..100 {
            v.update(vec![row(RowKey::Tab(TabId(1)), i)], now);
        }
        assert_eq!(v.history[&RowKey::Tab(TabId(1))].len(), HISTORY);
        assert_eq!(v.total_history.len(), HISTORY);
        v.update(vec![row(RowKey::Tab(TabId(2)), 1)], now);
        assert!(!v.history.contains_key(&RowKey::Tab(TabId(1))));
    }

    #[test]
    fn selection_moves_and_clamps() {
        let mut v = TaskView::default();
        let now = Instant::now();
        v.update(
            vec![row(RowKey::Browser, 1), row(RowKey::Tab(TabId(1)), 2)],
            now,
        );
        v.move_selection(1);
        assert_eq!(v.selected, Some(RowKey::Browser));
        v.move_selection(1);
        v.move_selection(1);
        assert_eq!(v.selected, Some(RowKey::Tab(TabId(1))));
        v.move_selection(-5);
        assert_eq!(v.selected, Some(RowKey::Browser));
        v.update(vec![row(RowKey::Tab(TabId(1)), 2)], now);
        assert_eq!(v.selected, None);
    }
}
