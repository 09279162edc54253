//! The Task Manager window's view: one row per tab (its whole process tree summed), expandable to its processes, with memory history, sorting, each tab's lifecycle state, and the power to freeze, discard or end a tab's renderer.

use std::collections::{HashMap, HashSet, VecDeque};
use std::time::{Duration, Instant};

use egui::{Color32, RichText, Sense, Stroke, Vec2};
use egui_extras::{Column, TableBuilder};
use warren_browser::policy::Protection;
use warren_browser::procs;
use warren_browser::procs::sampler;
use warren_browser::tabs::{Life, Tab, TabState, Tabs, Verb};
use warren_ipc::TabId;

use crate::menu;

/// How far back the memory history of each row and of the total chart goes.
const HISTORY_SPAN: Duration = Duration::from_secs(60);

/// Readings of memory history kept per row and in the total chart: one per periodic reading
/// ([`sampler::INTERVAL`]) over [`HISTORY_SPAN`].
const HISTORY: usize = (HISTORY_SPAN.as_secs() / sampler::INTERVAL.as_secs()) as usize;

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
    /// The executable's file name.
    pub name: String,
    /// The sandbox layers seen for this process.
    pub sandbox: procs::Sandbox,
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
    /// A tab's lifecycle state ("background", "frozen", "discarded", …), a stray process's kind.
    pub state: String,
    /// What keeps the tab from being discarded or frozen automatically (never "active": the
    /// state says that).
    pub protection: Option<Protection>,
    /// What a discarded tab's discard freed, when known.
    pub freed_kb: Option<u64>,
    /// The task's main process (the renderer for a tab), if it has one.
    pub pid: Option<u32>,
    pub memory_kb: Option<u64>,
    pub pss_kb: Option<u64>,
    pub cpu_percent: Option<f64>,
    pub uptime: Option<Duration>,
    pub processes: Vec<ProcessRow>,
    /// The sandbox layers of the task's main process (the renderer for a tab), when it has one
    /// and is sandboxed at all.
    pub sandbox: Option<procs::Sandbox>,
}

/// What the user asked for in the Task Manager.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum TaskAction {
    EndProcess(TabId),
    Freeze(TabId),
    Unfreeze(TabId),
    Discard(TabId),
    /// Switch the browser to the tab (a double click or Enter).
    Activate(TabId),
}

/// The Task Manager's rows for one reading: the browser first, then the stray processes of its
/// tree, then every tab in strip order with its tree summed and its processes. A tab without a
/// process (discarded, crashed) has no pid and no figures.
pub fn rows(snapshot: &procs::Snapshot, tabs: &Tabs, now: Instant) -> Vec<TaskRow> {
    let process = |row: &procs::ProcessRow| ProcessRow {
        pid: row.pid,
        kind: row.kind.as_str(),
        name: row.name.clone(),
        sandbox: row.sandbox,
        memory_kb: row.memory_kb,
        pss_kb: row.pss_kb,
        cpu_percent: Some(row.cpu_percent),
        uptime: Some(row.uptime),
    };
    let mut rows = Vec::new();
    for row in snapshot.processes.iter().filter(|r| r.tab_id.is_none()) {
        let browser = row.kind == procs::Kind::Browser;
        // The headless display the browser starts for WebKit's web processes: the browser's own
        // helper, not web content, so no sandbox column (as for the browser).
        let display = row.name == "Xvfb"
            && snapshot
                .processes
                .first()
                .is_some_and(|b| b.pid == row.parent_pid);
        rows.push(TaskRow {
            key: if browser {
                RowKey::Browser
            } else {
                RowKey::Other(row.pid)
            },
            title: if browser {
                "Browser".to_owned()
            } else if display {
                "Display for web pages (Xvfb)".to_owned()
            } else {
                row.name.clone()
            },
            state: if browser {
                String::new()
            } else {
                row.kind.as_str().to_owned()
            },
            protection: None,
            freed_kb: None,
            pid: Some(row.pid),
            memory_kb: row.memory_kb,
            pss_kb: row.pss_kb,
            cpu_percent: Some(row.cpu_percent),
            uptime: Some(row.uptime),
            sandbox: (!browser && !display).then_some(row.sandbox),
            processes: vec![process(row)],
        });
    }
    for tab in tabs.iter() {
        let totals = snapshot
            .tab(tab.id)
            .filter(|_| tab.renderer_pid().is_some());
        let mut row = TaskRow {
            key: RowKey::Tab(tab.id),
            title: String::new(),
            state: String::new(),
            protection: None,
            freed_kb: None,
            pid: totals.map(|t| t.renderer_pid),
            memory_kb: totals.map(|t| t.sum.memory_kb),
            pss_kb: totals.and_then(|t| t.sum.pss_kb),
            cpu_percent: totals.map(|t| t.sum.cpu_percent),
            uptime: totals.map(|t| t.uptime),
            processes: if totals.is_some() {
                snapshot.tab_rows(tab.id).map(process).collect()
            } else {
                Vec::new()
            },
            sandbox: totals
                .and_then(|t| snapshot.process(t.renderer_pid))
                .map(|r| r.sandbox),
        };
        describe_tab(&mut row, tabs, tab, now);
        rows.push(row);
    }
    rows
}

/// Fills a tab row's title, state, protection and freed memory from the tab model.
fn describe_tab(row: &mut TaskRow, tabs: &Tabs, tab: &Tab, now: Instant) {
    row.title = tab.label().to_owned();
    row.state = state_text(tabs, tab).to_owned();
    row.protection = tabs
        .protection(tab.id, now)
        .filter(|p| *p != Protection::Active);
    row.freed_kb = tab.freed_kb();
}

/// The State column of a tab: the control protocol's state, told more precisely for tabs that
/// are starting, being discarded or not responding.
fn state_text(tabs: &Tabs, tab: &Tab) -> &'static str {
    match tabs.state(tab.id) {
        Some(TabState::Active | TabState::Background) if !tab.responsive => "not responding",
        Some(TabState::Background) => match tab.life() {
            Life::Starting(_) => "starting",
            Life::Discarding { .. } => "discarding",
            _ => "background",
        },
        Some(state) => state.as_str(),
        None => "",
    }
}

/// The Sandbox column: "all 4" when every layer is in force, else how many, and a note that
/// names what is in force and what is missing. Counted against the layers that apply to the
/// process ([`procs::Scope`]): a nested display's are two, so a display in its namespace under
/// seccomp reads "all 2", not "2 of 4" (a false alarm) nor "all 4" (a false claim).
fn sandbox_label(sandbox: &procs::Sandbox) -> (String, Color32, String) {
    let have = sandbox.layers();
    let missing = sandbox.missing();
    let all = sandbox.scope.layers().len();
    let (text, color) = match (have.len(), missing.len()) {
        (_, 0) => (format!("all {all}"), Color32::from_rgb(0x2e, 0x7d, 0x32)),
        (0, _) => ("none".to_owned(), Color32::from_rgb(0xc6, 0x28, 0x28)),
        (n, _) => (format!("{n} of {all}"), Color32::from_rgb(0xe0, 0x8a, 0x00)),
    };
    let mut note = if have.is_empty() {
        "No sandbox layer is in force for this process.".to_owned()
    } else {
        format!("In force: {}.", have.join(", "))
    };
    if !missing.is_empty() && !have.is_empty() {
        note.push_str(&format!(" Missing: {}.", missing.join(", ")));
    }
    if sandbox.scope == procs::Scope::Display {
        note.push_str(
            " Landlock and WebKit's sandbox are the renderer's and the page's; they do not apply \
             to a display server.",
        );
    }
    (text, color, note)
}

/// What a protection means, for the Protected column's hover text.
fn protection_note(p: Protection) -> String {
    let why = match p {
        Protection::Active => "it is the active tab",
        Protection::Pinned => "it is pinned",
        Protection::FormInput => "its page has form input that was not submitted",
        Protection::RecentlyRestored => "you brought it back less than a minute ago",
        Protection::PlayingAudio => "its page is playing audio",
        Protection::RecentlyVisible => "it was visible a few seconds ago",
    };
    if p.is_hard() {
        format!("Never discarded or frozen automatically: {why}.")
    } else {
        format!(
            "Not discarded or frozen automatically unless the tab or memory limit is exceeded: {why}."
        )
    }
}

/// One of the Task Manager's buttons for the selected row: its label, what it does when
/// enabled, and its hover text (why it is disabled, when it is).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Button {
    pub label: &'static str,
    /// `None` while the button is disabled.
    pub action: Option<TaskAction>,
    pub note: &'static str,
}

/// The Freeze (or Unfreeze), Discard and End process buttons.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Buttons {
    pub freeze: Button,
    pub discard: Button,
    pub end: Button,
}

/// The Task Manager action a tab verb stands for, if it has one.
fn task_action(verb: &Verb) -> Option<TaskAction> {
    match *verb {
        Verb::Freeze(id) => Some(TaskAction::Freeze(id)),
        Verb::Unfreeze(id) => Some(TaskAction::Unfreeze(id)),
        Verb::Discard(id) => Some(TaskAction::Discard(id)),
        Verb::EndProcess(id) => Some(TaskAction::EndProcess(id)),
        Verb::Activate(id) => Some(TaskAction::Activate(id)),
        _ => None,
    }
}

/// The buttons for the selected row, as the tab is now.
pub fn buttons(tabs: &Tabs, selected: Option<RowKey>) -> Buttons {
    let tab = match selected {
        Some(RowKey::Tab(id)) => tabs.get(id),
        _ => None,
    };
    let Some(tab) = tab else {
        let none = |label| Button {
            label,
            action: None,
            note: "Select a tab first.",
        };
        return Buttons {
            freeze: none("Freeze"),
            discard: none("Discard"),
            end: none("End process"),
        };
    };
    let active = tabs.active() == Some(tab.id);
    let button = |item: menu::Item| Button {
        label: item.label,
        action: if item.enabled() {
            task_action(&item.verb)
        } else {
            None
        },
        note: item.note(),
    };
    let end = match tab.life() {
        Life::Discarded { .. } => Err("The tab has no process: it is discarded."),
        Life::Crashed(_) => Err("The tab has no process: it crashed."),
        _ => Ok(TaskAction::EndProcess(tab.id)),
    };
    Buttons {
        freeze: button(menu::freeze_item(tab, active)),
        discard: button(menu::discard_item(tab, active)),
        end: Button {
            label: "End process",
            action: end.ok(),
            note: end
                .err()
                .unwrap_or("Ends the tab's renderer and its helpers; the tab shows why (Delete)."),
        },
    }
}

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum SortColumn {
    Task,
    State,
    Protected,
    Pid,
    Memory,
    Pss,
    Cpu,
    Uptime,
    Sandbox,
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
    /// Takes a new reading (one per [`sampler::INTERVAL`], unless paused).
    pub fn update(&mut self, mut rows: Vec<TaskRow>, now: Instant) {
        if self.show_pss {
            self.keep_pss(&mut rows);
        }
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

    /// Fills in the PSS of rows read without it from the reading shown, for the same processes:
    /// the sampler reads PSS only every [`sampler::PSS_INTERVAL`], the readings in between have
    /// none, and the column keeps the last figure rather than blinking to "–".
    fn keep_pss(&self, rows: &mut [TaskRow]) {
        for row in rows.iter_mut() {
            let Some(old) = self.row(row.key).filter(|old| old.pid == row.pid) else {
                continue;
            };
            if row.pss_kb.is_none() {
                row.pss_kb = old.pss_kb;
            }
            for process in row.processes.iter_mut().filter(|p| p.pss_kb.is_none()) {
                process.pss_kb = old
                    .processes
                    .iter()
                    .find(|p| p.pid == process.pid)
                    .and_then(|p| p.pss_kb);
            }
        }
    }

    /// Brings the tab rows' titles and states up to date between readings (a tab frozen or
    /// discarded since shows so at once; one that lost its process loses its figures).
    fn sync(&mut self, tabs: &Tabs, now: Instant) {
        for row in &mut self.rows {
            let RowKey::Tab(id) = row.key else { continue };
            let Some(tab) = tabs.get(id) else { continue };
            describe_tab(row, tabs, tab, now);
            if tab.renderer_pid().is_none() {
                row.pid = None;
                row.memory_kb = None;
                row.pss_kb = None;
                row.cpu_percent = None;
                row.uptime = None;
                row.processes.clear();
            }
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

    /// Draws the window's contents for the tabs as they are at `now`, and returns what the user
    /// asked for.
    pub fn draw(&mut self, ui: &mut egui::Ui, tabs: &Tabs, now: Instant) -> Vec<TaskAction> {
        self.sync(tabs, now);
        let mut actions = Vec::new();
        let buttons = buttons(tabs, self.selected);
        ui.input(|i| {
            if i.key_pressed(egui::Key::ArrowDown) {
                self.move_selection(1);
            }
            if i.key_pressed(egui::Key::ArrowUp) {
                self.move_selection(-1);
            }
            if i.key_pressed(egui::Key::Delete) {
                actions.extend(buttons.end.action);
            }
            if i.key_pressed(egui::Key::Enter) {
                if let Some(RowKey::Tab(id)) = self.selected {
                    actions.push(TaskAction::Activate(id));
                }
            }
        });

        if let Some(warning) = tabs.over_cap() {
            egui::Panel::top("task_manager_over_cap")
                .frame(
                    egui::Frame::NONE
                        .fill(Color32::from_rgb(255, 243, 205))
                        .inner_margin(egui::Margin::symmetric(10, 5)),
                )
                .show(ui, |ui| {
                    ui.horizontal(|ui| {
                        warning_sign(ui);
                        ui.add(
                            egui::Label::new(
                                RichText::new(warning).color(Color32::from_rgb(110, 70, 0)),
                            )
                            .wrap(),
                        );
                    });
                });
        }

        // Neither the footer nor the table below is filled (no grey footer, no striped rows): the
        // window is cleared to white, and on software GL (llvmpipe) every filled pixel runs the
        // fragment shader on the CPU at each refresh; those fills were about a third of the
        // window's area. The panel's separator line and the hovered and selected rows' highlight
        // still set them apart.
        egui::Panel::bottom("task_manager_footer")
            .exact_size(132.0)
            .frame(egui::Frame::NONE.inner_margin(egui::Margin::symmetric(10, 6)))
            .show(ui, |ui| {
                ui.horizontal(|ui| {
                    let total: u64 = self.rows.iter().filter_map(|r| r.memory_kb).sum();
                    ui.label(
                        RichText::new(format!("Total memory footprint: {}", mib(total))).strong(),
                    );
                    ui.with_layout(egui::Layout::right_to_left(egui::Align::Center), |ui| {
                        // Right to left: End process at the end, Discard and Freeze before it.
                        for button in [&buttons.end, &buttons.discard, &buttons.freeze] {
                            let response =
                                ui.add_enabled(button.action.is_some(), egui::Button::new(button.label));
                            let response = if button.action.is_some() {
                                response.on_hover_text(button.note)
                            } else {
                                response.on_disabled_hover_text(button.note)
                            };
                            if response.clicked() {
                                actions.extend(button.action);
                            }
                        }
                        ui.add_space(6.0);
                        ui.checkbox(&mut self.paused, "Pause");
                        ui.checkbox(&mut self.show_pss, "PSS").on_hover_text(
                            "Proportional set size: shared pages split between their users. Costly to read.",
                        );
                    });
                });
                ui.add_space(4.0);
                memory_chart(ui, &self.total_history);
            });

        // No fill either (see the footer).
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
                    .sense(Sense::click())
                    .cell_layout(egui::Layout::left_to_right(egui::Align::Center))
                    .column(Column::remainder().at_least(140.0).clip(true))
                    .column(Column::exact(84.0).clip(true))
                    .column(Column::exact(104.0).clip(true))
                    .column(Column::exact(72.0))
                    .column(Column::exact(80.0));
                if self.show_pss {
                    table = table.column(Column::exact(76.0));
                }
                table = table
                    .column(Column::exact(50.0))
                    .column(Column::exact(62.0))
                    .column(Column::exact(64.0))
                    .column(Column::exact(66.0));
                let mut columns = vec![
                    (SortColumn::Task, "Task"),
                    (SortColumn::State, "State"),
                    (SortColumn::Protected, "Protected"),
                    (SortColumn::Pid, "Process ID"),
                    (SortColumn::Memory, "Memory"),
                ];
                if self.show_pss {
                    columns.push((SortColumn::Pss, "PSS"));
                }
                columns.push((SortColumn::Cpu, "CPU"));
                columns.push((SortColumn::Uptime, "Uptime"));
                columns.push((SortColumn::Sandbox, "Sandbox"));
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
                            ui.label(
                                RichText::new(format!("Last {} s", HISTORY_SPAN.as_secs()))
                                    .strong(),
                            );
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
                                    let mut title = RichText::new(&row.title);
                                    if row.pid.is_none() {
                                        title = title.color(Color32::from_gray(120));
                                    }
                                    ui.add(egui::Label::new(title).truncate().selectable(false));
                                });
                                table_row.col(|ui| {
                                    let label = ui.add(
                                        egui::Label::new(
                                            RichText::new(&row.state)
                                                .color(state_color(&row.state)),
                                        )
                                        .selectable(false),
                                    );
                                    if let Some(note) = state_note(&row) {
                                        label.on_hover_text(note);
                                    }
                                });
                                table_row.col(|ui| {
                                    if let Some(p) = row.protection {
                                        ui.add(
                                            egui::Label::new(p.as_str())
                                                .truncate()
                                                .selectable(false),
                                        )
                                        .on_hover_text(protection_note(p));
                                    }
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
                                table_row.col(|ui| {
                                    if let Some(sandbox) = row.sandbox {
                                        let (text, color, note) = sandbox_label(&sandbox);
                                        ui.add(
                                            egui::Label::new(RichText::new(text).color(color))
                                                .selectable(false),
                                        )
                                        .on_hover_text(note);
                                    }
                                });
                                table_row.col(|ui| {
                                    // A tab without a process has no figures to chart.
                                    if row.memory_kb.is_some() {
                                        sparkline(ui, &history);
                                    }
                                });
                                let mut response = table_row.response();
                                if row.state == TabState::Discarded.as_str() {
                                    response =
                                        response.on_hover_text(discarded_row_note(row.freed_kb));
                                }
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
                                                RichText::new(process_label(process))
                                                    .color(Color32::from_gray(90)),
                                            );
                                        });
                                        table_row.col(|ui| {
                                            ui.label(
                                                RichText::new(process.kind)
                                                    .color(Color32::from_gray(90)),
                                            );
                                        });
                                        table_row.col(|_| {});
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
                                        table_row.col(|ui| {
                                            let (text, color, note) =
                                                sandbox_label(&process.sandbox);
                                            ui.add(
                                                egui::Label::new(RichText::new(text).color(color))
                                                    .selectable(false),
                                            )
                                            .on_hover_text(note);
                                        });
                                        table_row.col(|_| {});
                                        // A process row selects its task: the buttons act on the tab.
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

/// The colour of a state: frozen blue, discarded grey, crashed and not responding red.
fn state_color(state: &str) -> Color32 {
    match state {
        "frozen" => Color32::from_rgb(40, 100, 170),
        "discarded" | "discarding" => Color32::from_gray(120),
        "crashed" | "not responding" => Color32::from_rgb(180, 40, 40),
        _ => Color32::from_gray(40),
    }
}

/// The hover text of a row's state, when it needs explaining.
fn state_note(row: &TaskRow) -> Option<String> {
    match row.state.as_str() {
        "frozen" => Some(
            "Frozen: its processes are stopped until the tab is activated or unfrozen.".to_owned(),
        ),
        "discarded" => Some(discarded_row_note(row.freed_kb)),
        "discarding" => Some("Being discarded: its state is being saved.".to_owned()),
        "not responding" => {
            Some("Its renderer has not answered for 15 seconds or more.".to_owned())
        }
        _ => None,
    }
}

/// The hover text of a discarded tab's row.
fn discarded_row_note(freed_kb: Option<u64>) -> String {
    match freed_kb {
        Some(kb) if kb > 0 => format!(
            "Discarded: no process; freed {}. Activate the tab to restore it.",
            menu::mib_rounded(kb)
        ),
        _ => "Discarded: no process. Activate the tab to restore it.".to_owned(),
    }
}

/// A small warning triangle with an exclamation mark, drawn with shapes.
fn warning_sign(ui: &mut egui::Ui) {
    let (rect, _) = ui.allocate_exact_size(Vec2::splat(16.0), Sense::hover());
    let c = rect.center();
    let color = Color32::from_rgb(200, 130, 0);
    ui.painter().add(egui::Shape::convex_polygon(
        vec![
            egui::pos2(c.x, c.y - 7.0),
            egui::pos2(c.x + 8.0, c.y + 6.5),
            egui::pos2(c.x - 8.0, c.y + 6.5),
        ],
        color,
        Stroke::NONE,
    ));
    ui.painter().line_segment(
        [egui::pos2(c.x, c.y - 2.5), egui::pos2(c.x, c.y + 2.0)],
        Stroke::new(1.8, Color32::WHITE),
    );
    ui.painter()
        .circle_filled(egui::pos2(c.x, c.y + 4.5), 1.0, Color32::WHITE);
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
        SortColumn::Protected => a
            .protection
            .map(Protection::as_str)
            .cmp(&b.protection.map(Protection::as_str)),
        SortColumn::Pid => a.pid.cmp(&b.pid),
        SortColumn::Memory => a.memory_kb.cmp(&b.memory_kb),
        SortColumn::Pss => a.pss_kb.cmp(&b.pss_kb),
        SortColumn::Cpu => a
            .cpu_percent
            .unwrap_or(0.0)
            .total_cmp(&b.cpu_percent.unwrap_or(0.0)),
        SortColumn::Uptime => a.uptime.cmp(&b.uptime),
        SortColumn::Sandbox => a
            .sandbox
            .map(|s| s.layers().len())
            .cmp(&b.sandbox.map(|s| s.layers().len())),
    }
}

fn process_label(process: &ProcessRow) -> String {
    match (process.kind, process.name.as_str()) {
        ("renderer", _) => "Renderer".into(),
        ("web", _) => "Web content (WebKitWebProcess)".into(),
        ("network", _) => "Network (WebKitNetworkProcess)".into(),
        ("browser", _) => "Browser".into(),
        ("spare", _) => "Spare renderer".into(),
        ("display", name) => format!("Nested display ({name})"),
        (_, "bwrap") => "Sandbox (bubblewrap)".into(),
        (_, "xdg-dbus-proxy") => "D-Bus filter of WebKit's sandbox".into(),
        (_, name) => format!("Other process ({name})"),
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

/// The total memory of the last [`HISTORY_SPAN`], as a filled chart with its scale.
fn memory_chart(ui: &mut egui::Ui, history: &VecDeque<u64>) {
    let size = Vec2::new(ui.available_width(), ui.available_height().max(40.0));
    let (rect, _) = ui.allocate_exact_size(size, Sense::hover());
    let painter = ui.painter_at(rect);
    // Outlined, not filled: the footer is already the window's white.
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
        format!(
            "Total memory, last {} s (max {})",
            HISTORY_SPAN.as_secs(),
            mib((max / 1.15) as u64)
        ),
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
            protection: None,
            freed_kb: None,
            pid: Some(1),
            memory_kb: Some(memory),
            pss_kb: None,
            cpu_percent: Some(0.0),
            uptime: None,
            processes: Vec::new(),
            sandbox: None,
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
    fn pss_is_kept_between_readings_for_the_same_processes_while_shown() {
        let mut v = TaskView {
            show_pss: true,
            ..TaskView::default()
        };
        let now = Instant::now();
        let tab = RowKey::Tab(TabId(1));
        let process = |pid, pss_kb| ProcessRow {
            pid,
            kind: "renderer",
            name: "renderer".into(),
            sandbox: procs::Sandbox::default(),
            memory_kb: Some(1),
            pss_kb,
            cpu_percent: None,
            uptime: None,
        };
        let with = |pid, pss: Option<u64>| TaskRow {
            pid: Some(pid),
            pss_kb: pss.map(|kb| kb * 2),
            processes: vec![process(pid, pss)],
            ..row(tab, 1)
        };
        v.update(vec![with(7, Some(300))], now);
        // A reading without PSS keeps the figures of the same process.
        v.update(vec![with(7, None)], now);
        assert_eq!(v.row(tab).unwrap().pss_kb, Some(600));
        assert_eq!(v.row(tab).unwrap().processes[0].pss_kb, Some(300));
        // A new reading with PSS replaces them.
        v.update(vec![with(7, Some(100))], now);
        assert_eq!(v.row(tab).unwrap().pss_kb, Some(200));
        // Another process (the tab's renderer was restarted) has none until it is read.
        v.update(vec![with(8, None)], now);
        assert_eq!(v.row(tab).unwrap().pss_kb, None);
        assert_eq!(v.row(tab).unwrap().processes[0].pss_kb, None);
        // Not kept while the column is hidden: turned on again, no stale figure shows.
        v.update(vec![with(8, Some(100))], now);
        v.show_pss = false;
        v.update(vec![with(8, None)], now);
        v.show_pss = true;
        v.update(vec![with(8, None)], now);
        assert_eq!(v.row(tab).unwrap().pss_kb, None);
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

    use crate::menu::fake::{World, FOOTPRINT_KB};
    use warren_browser::policy::Plan;

    fn process(
        pid: u32,
        parent: u32,
        kind: procs::Kind,
        tab: Option<TabId>,
        kb: u64,
    ) -> procs::ProcessRow {
        procs::ProcessRow {
            pid,
            parent_pid: parent,
            kind,
            tab_id: tab,
            name: format!("{}-{pid}", kind.as_str()),
            depth: usize::from(parent != 0),
            memory_kb: Some(kb),
            pss_kb: None,
            cpu_percent: 1.5,
            threads: 3,
            fds: Some(10),
            uptime: Duration::from_secs(90),
            sandbox: procs::Sandbox::default(),
            sandboxed: false,
        }
    }

    /// A reading of the browser (pid 100), a stray helper, and each given tab's renderer with one
    /// web process below it.
    fn snapshot(tabs: &[(TabId, u32)]) -> procs::Snapshot {
        let mut processes = vec![process(100, 1, procs::Kind::Browser, None, 30_000)];
        let mut totals = Vec::new();
        for (id, pid) in tabs {
            let renderer = process(*pid, 100, procs::Kind::Renderer, Some(*id), 20_000);
            let web = process(pid + 500, *pid, procs::Kind::Web, Some(*id), 70_000);
            let sum = procs::Totals {
                processes: 2,
                memory_kb: 90_000,
                cpu_percent: 3.0,
                ..Default::default()
            };
            totals.push(procs::TabTotals {
                tab_id: *id,
                renderer_pid: *pid,
                uptime: Duration::from_secs(90),
                sum,
            });
            processes.push(renderer);
            processes.push(web);
        }
        processes.push(process(900, 100, procs::Kind::Other, None, 1_000));
        procs::Snapshot {
            processes,
            tabs: totals,
            total: procs::Totals::default(),
            interval: None,
            pss: false,
            pss_skipped: 0,
            scan: procs::ScanStats::default(),
        }
    }

    #[test]
    fn rows_put_the_browser_first_then_strays_then_tabs_in_strip_order() {
        let mut w = World::new();
        let a = w.open_live("https://a.example/");
        let b = w.open_live("https://b.example/");
        let c = w.open("https://c.example/");
        w.apply(Verb::Discard(c));
        w.apply(Verb::Pin(b));
        let renderers = w.tabs.renderers();
        let rows = rows(&snapshot(&renderers), &w.tabs, w.now);
        let keys: Vec<RowKey> = rows.iter().map(|r| r.key).collect();
        assert_eq!(
            keys,
            vec![
                RowKey::Browser,
                RowKey::Other(900),
                RowKey::Tab(b),
                RowKey::Tab(a),
                RowKey::Tab(c)
            ]
        );
        assert_eq!(rows[0].title, "Browser");
        assert_eq!(rows[1].state, "other");
        let live = &rows[3];
        assert_eq!(live.state, "active");
        assert_eq!(live.pid, w.tabs.get(a).and_then(|t| t.renderer_pid()));
        assert_eq!(live.memory_kb, Some(90_000));
        assert_eq!(live.processes.len(), 2);
        assert_eq!(live.processes[1].kind, "web");
        // The active tab's protection is its state; it is not repeated.
        assert_eq!(live.protection, None);
        assert_eq!(rows[2].protection, Some(Protection::Pinned));
    }

    #[test]
    fn a_tab_row_lists_its_nested_display_and_stays_the_renderers() {
        let mut w = World::new();
        let a = w.open_live("https://a.example/");
        let renderers = w.tabs.renderers();
        let renderer_pid = renderers[0].1;
        let mut snap = snapshot(&renderers);
        // The display's tree beside the renderer's, as the measurement core groups it.
        let mut outer = process(950, 100, procs::Kind::Other, Some(a), 1_000);
        outer.name = "bwrap".into();
        outer.sandbox.scope = procs::Scope::Display;
        let mut xephyr = process(952, 951, procs::Kind::Display, Some(a), 15_000);
        xephyr.name = "Xephyr".into();
        xephyr.sandbox = procs::Sandbox {
            scope: procs::Scope::Display,
            no_new_privs: true,
            seccomp_filter: true,
            namespaces: true,
            ..Default::default()
        };
        snap.processes.insert(3, xephyr);
        snap.processes.insert(3, outer);
        snap.tabs[0].sum.processes += 2;
        snap.tabs[0].sum.memory_kb += 16_000;
        let rows = rows(&snap, &w.tabs, w.now);
        let row = rows.iter().find(|r| r.key == RowKey::Tab(a)).unwrap();
        assert_eq!(row.pid, Some(renderer_pid));
        assert_eq!(row.memory_kb, Some(90_000 + 16_000));
        let kinds: Vec<&str> = row.processes.iter().map(|p| p.kind).collect();
        assert_eq!(kinds, ["renderer", "web", "other", "display"]);
        let labels: Vec<String> = row.processes.iter().map(process_label).collect();
        assert_eq!(labels[2], "Sandbox (bubblewrap)");
        assert_eq!(labels[3], "Nested display (Xephyr)");
        let (text, _, note) = sandbox_label(&row.processes[3].sandbox);
        assert_eq!(text, "all 2");
        assert!(note.contains("do not apply to a display server"), "{note}");
        assert_eq!(sandbox_label(&row.processes[2].sandbox).0, "none");
        // The tab's own Sandbox column is its renderer's.
        assert_eq!(row.sandbox, Some(procs::Sandbox::default()));
    }

    #[test]
    fn discarded_tabs_are_rows_without_a_process() {
        let mut w = World::new();
        w.open_live("https://a.example/");
        let b = w.open("https://b.example/");
        w.apply(Verb::Discard(b));
        let rows = rows(&snapshot(&w.tabs.renderers()), &w.tabs, w.now);
        let row = rows.iter().find(|r| r.key == RowKey::Tab(b)).unwrap();
        assert_eq!(row.state, "discarded");
        assert_eq!(
            (row.pid, row.memory_kb, row.cpu_percent, row.uptime),
            (None, None, None, None)
        );
        assert!(row.processes.is_empty());
        assert_eq!(row.freed_kb, Some(FOOTPRINT_KB));
        assert_eq!(
            state_note(row).as_deref(),
            Some("Discarded: no process; freed 52 MiB. Activate the tab to restore it.")
        );
    }

    #[test]
    fn states_are_told_precisely() {
        let mut w = World::new();
        w.open_live("https://a.example/");
        let starting = w.open("https://b.example/");
        let frozen = w.open_live("https://c.example/");
        let crashed = w.open_live("https://d.example/");
        let form = w.open_live("https://e.example/");
        w.apply(Verb::Freeze(frozen));
        w.apply(Verb::EndProcess(crashed));
        w.message(form, warren_ipc::RendererToBrowser::FormEdited(true));
        let rows = rows(&snapshot(&w.tabs.renderers()), &w.tabs, w.now);
        let row = |id| rows.iter().find(|r| r.key == RowKey::Tab(id)).unwrap();
        assert_eq!(row(starting).state, "starting");
        assert_eq!(row(frozen).state, "frozen");
        assert!(row(frozen).pid.is_some(), "a frozen tab keeps its process");
        assert_eq!(row(crashed).state, "crashed");
        assert_eq!(row(crashed).pid, None);
        assert_eq!(row(form).state, "background");
        assert_eq!(row(form).protection, Some(Protection::FormInput));
        assert!(protection_note(Protection::FormInput).starts_with("Never"));
        assert!(protection_note(Protection::RecentlyVisible).contains("unless"));
    }

    #[test]
    fn buttons_follow_the_selected_tab_state() {
        let mut w = World::new();
        let active = w.open_live("https://a.example/");
        let live = w.open_live("https://b.example/");
        let frozen = w.open_live("https://c.example/");
        let discarded = w.open("https://d.example/");
        let crashed = w.open_live("https://e.example/");
        let starting = w.open("https://f.example/");
        w.apply(Verb::Freeze(frozen));
        w.apply(Verb::Discard(discarded));
        w.apply(Verb::EndProcess(crashed));
        let at = |id| buttons(&w.tabs, Some(RowKey::Tab(id)));

        let b = at(active);
        assert_eq!((b.freeze.action, b.discard.action), (None, None));
        assert!(b.freeze.note.contains("active tab"));
        assert!(b.discard.note.contains("active tab"));
        assert_eq!(b.end.action, Some(TaskAction::EndProcess(active)));

        let b = at(live);
        assert_eq!(b.freeze.label, "Freeze");
        assert_eq!(b.freeze.action, Some(TaskAction::Freeze(live)));
        assert_eq!(b.discard.action, Some(TaskAction::Discard(live)));

        let b = at(frozen);
        assert_eq!(b.freeze.label, "Unfreeze");
        assert_eq!(b.freeze.action, Some(TaskAction::Unfreeze(frozen)));
        assert_eq!(b.discard.action, Some(TaskAction::Discard(frozen)));
        assert_eq!(b.end.action, Some(TaskAction::EndProcess(frozen)));

        let b = at(discarded);
        assert_eq!(
            (b.freeze.action, b.discard.action, b.end.action),
            (None, None, None)
        );
        assert!(b.end.note.contains("discarded"));

        let b = at(crashed);
        assert_eq!(
            (b.freeze.action, b.discard.action, b.end.action),
            (None, None, None)
        );
        assert!(b.end.note.contains("crashed"));

        let b = at(starting);
        assert_eq!(b.freeze.action, None);
        assert!(b.freeze.note.contains("starting"));
        assert_eq!(b.discard.action, Some(TaskAction::Discard(starting)));

        for selected in [None, Some(RowKey::Browser), Some(RowKey::Tab(TabId(99)))] {
            let b = buttons(&w.tabs, selected);
            assert_eq!(
                (b.freeze.action, b.discard.action, b.end.action),
                (None, None, None)
            );
            assert_eq!(b.end.note, "Select a tab first.");
        }
    }

    #[test]
    fn a_tab_discarded_between_readings_loses_its_figures_at_once() {
        let mut w = World::new();
        w.open_live("https://a.example/");
        let b = w.open_live("https://b.example/");
        let mut v = TaskView::default();
        v.update(rows(&snapshot(&w.tabs.renderers()), &w.tabs, w.now), w.now);
        assert!(v.row(RowKey::Tab(b)).unwrap().pid.is_some());
        // A live tab's discard waits for its state; a crash ends it as well, at once.
        w.apply(Verb::EndProcess(b));
        v.sync(&w.tabs, w.now);
        let row = v.row(RowKey::Tab(b)).unwrap();
        assert_eq!(
            (row.state.as_str(), row.pid, row.memory_kb),
            ("crashed", None, None)
        );
    }

    /// Runs one frame of the view with `events` and returns its actions.
    fn frame(
        ctx: &egui::Context,
        v: &mut TaskView,
        tabs: &Tabs,
        now: Instant,
        events: Vec<egui::Event>,
    ) -> Vec<TaskAction> {
        let input = egui::RawInput {
            screen_rect: Some(egui::Rect::from_min_size(
                egui::Pos2::ZERO,
                Vec2::new(760.0, 460.0),
            )),
            events,
            ..Default::default()
        };
        let mut actions = Vec::new();
        let _ = ctx.run_ui(input, |ui| actions = v.draw(ui, tabs, now));
        actions
    }

    fn key(key: egui::Key) -> egui::Event {
        egui::Event::Key {
            key,
            physical_key: None,
            pressed: true,
            repeat: false,
            modifiers: egui::Modifiers::NONE,
        }
    }

    #[test]
    fn delete_ends_only_a_tab_with_a_process_and_enter_activates() {
        let mut w = World::new();
        w.open_live("https://a.example/");
        let b = w.open_live("https://b.example/");
        let c = w.open("https://c.example/");
        w.apply(Verb::Discard(c));
        w.tabs.enforce(
            Plan {
                discard: Vec::new(),
                freeze: Vec::new(),
                over_cap: Some("3 tabs are live, over --max-live-tabs 1".into()),
            },
            w.now,
        );
        let mut v = TaskView::default();
        v.update(rows(&snapshot(&w.tabs.renderers()), &w.tabs, w.now), w.now);
        let ctx = egui::Context::default();
        frame(&ctx, &mut v, &w.tabs, w.now, Vec::new());
        v.selected = Some(RowKey::Tab(c));
        assert!(frame(&ctx, &mut v, &w.tabs, w.now, vec![key(egui::Key::Delete)]).is_empty());
        v.selected = Some(RowKey::Tab(b));
        assert_eq!(
            frame(&ctx, &mut v, &w.tabs, w.now, vec![key(egui::Key::Delete)]),
            vec![TaskAction::EndProcess(b)]
        );
        assert_eq!(
            frame(&ctx, &mut v, &w.tabs, w.now, vec![key(egui::Key::Enter)]),
            vec![TaskAction::Activate(b)]
        );
    }

    #[test]
    fn the_sandbox_column_says_which_layers_are_missing() {
        let all = procs::Sandbox {
            scope: procs::Scope::Content,
            no_new_privs: true,
            seccomp_filter: true,
            namespaces: true,
            landlock: true,
            webkit: true,
        };
        assert_eq!(sandbox_label(&all).0, "all 4");
        let no_userns = procs::Sandbox {
            namespaces: false,
            ..all
        };
        let (text, _, note) = sandbox_label(&no_userns);
        assert_eq!(text, "3 of 4");
        assert!(note.contains("Missing: namespaces."), "{note}");
        let (text, _, note) = sandbox_label(&procs::Sandbox::default());
        assert_eq!(text, "none");
        assert!(note.contains("No sandbox layer"), "{note}");
        // A display counts against its two layers.
        let display = procs::Sandbox {
            scope: procs::Scope::Display,
            landlock: false,
            webkit: false,
            ..all
        };
        assert_eq!(sandbox_label(&display).0, "all 2");
        let (text, _, note) = sandbox_label(&procs::Sandbox {
            namespaces: false,
            ..display
        });
        assert_eq!(text, "1 of 2");
        assert!(note.contains("Missing: namespaces."), "{note}");
    }
}
