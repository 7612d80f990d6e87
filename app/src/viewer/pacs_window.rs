//! File > Open from PACS: the configured servers, a study search with each study's series, and a
//! series opened by retrieving it into the cache. Searches, echoes and transfers run on worker
//! threads (the engine's clients are blocking, with timeouts); the window polls a channel each
//! frame, so a slow or dead server never holds the UI. A cancelled search is dropped (its thread
//! ends at the client's timeout); a cancelled transfer stops at the next instance.
//!
//! Reading while it arrives: the first instance received is opened at once as a preview, then
//! the folder again each time the instances in it have doubled (2, 4, 8, ...: each reopening
//! reads what is there, so all of them together read at most twice the series), and the whole
//! series when its last instance is in. The viewer keeps its view of the series across them. A
//! series already in the cache opens from there.
//!
//! Thumbnails: after a search, each series' middle instance is fetched (WADO-RS, or C-FIND and
//! C-GET at IMAGE level: two short associations a series) on a worker and drawn small beside
//! it, as they come.

use std::collections::HashMap;
use std::path::PathBuf;
use std::sync::atomic::{AtomicBool, Ordering};
use std::sync::mpsc::{channel, Receiver, Sender};
use std::sync::Arc;
use std::time::Instant;

use eframe::egui::{self, Color32, RichText};
use groundglass_pacs::cache::Cache;
use groundglass_pacs::{Credentials, DateRange, Server, StudyInfo, StudyQuery};

use super::pacs_secrets::{Secret, Secrets};
use super::settings::PacsServer;

/// Studies per page of a search.
pub const PAGE: usize = 50;

/// What the window asks of the viewer.
#[derive(Clone, Debug, PartialEq)]
pub enum Request {
    /// Show this file or folder while the series arrives: its first instance, then the folder
    /// with what has come so far.
    Preview(PathBuf),
    /// Open this folder: a series retrieved whole, or complete in the cache.
    Open(PathBuf),
    /// The server list or a secret changed: save them.
    SaveSettings,
}

/// The search fields as typed.
#[derive(Clone, Debug, Default)]
pub struct QueryForm {
    pub patient_name: String,
    pub patient_id: String,
    pub modality: String,
    pub date: String,
    pub accession: String,
    pub description: String,
}

/// The server being added or edited.
#[derive(Clone, Debug, Default)]
pub struct ServerForm {
    pub name: String,
    pub address: String,
    pub calling_ae: String,
    pub user: String,
    pub secret: String,
    pub secret_is_token: bool,
    /// DIMSE: our storage SCP's port for C-MOVE, as typed; empty: C-GET.
    pub store_port: String,
}

enum Message {
    Searched {
        generation: u64,
        result: Result<groundglass_pacs::SearchPage, String>,
    },
    Echoed {
        generation: u64,
        result: Result<(), String>,
    },
    Arrived {
        generation: u64,
        done: usize,
        /// What to show now: the first instance once written, then the folder when the
        /// instances in it have doubled ([`preview_due`]).
        preview: Option<PathBuf>,
    },
    Retrieved {
        generation: u64,
        /// The folder and how many instances it holds.
        result: Result<(PathBuf, usize), String>,
    },
    Thumbnail {
        search: u64,
        series_uid: String,
        image: groundglass_study::DisplayImage,
    },
}

/// The one job running (a new one replaces it).
struct Task {
    generation: u64,
    cancel: Arc<AtomicBool>,
    what: String,
    started: Instant,
    /// Transfers: instances in so far, of how many the search said.
    arrived: Option<(usize, Option<u64>)>,
}

pub struct PacsWindow {
    pub open: bool,
    /// The server searched, by index in the settings' list.
    pub selected: usize,
    pub form: ServerForm,
    pub editing: bool,
    pub query: QueryForm,
    offset: usize,
    pub studies: Vec<StudyInfo>,
    /// The last page came back full: there may be more.
    pub more: bool,
    /// The last outcome, and whether it is an error.
    pub status: Option<(bool, String)>,
    task: Option<Task>,
    generation: u64,
    tx: Sender<Message>,
    rx: Receiver<Message>,
    ctx: egui::Context,
    pub cache: Cache,
    /// The server of the last search (its thumbnails come from it).
    searched: Option<Server>,
    /// Previews by series UID, for the search shown; `thumbnails_for` numbers the searches so a
    /// late preview of an older one is dropped.
    pub thumbnails: HashMap<String, egui::TextureHandle>,
    thumbnails_for: u64,
    stop_thumbnails: Arc<AtomicBool>,
}

impl PacsWindow {
    pub fn new(ctx: egui::Context, cache: Cache) -> Self {
        let (tx, rx) = channel();
        PacsWindow {
            open: false,
            selected: 0,
            form: ServerForm {
                calling_ae: "GROUNDGLASS".into(),
                ..Default::default()
            },
            editing: false,
            query: QueryForm::default(),
            offset: 0,
            studies: Vec::new(),
            more: false,
            status: None,
            task: None,
            generation: 0,
            tx,
            rx,
            ctx,
            cache,
            searched: None,
            thumbnails: HashMap::new(),
            thumbnails_for: 0,
            stop_thumbnails: Arc::new(AtomicBool::new(false)),
        }
    }

    /// Whether a search, echo or transfer is running.
    pub fn busy(&self) -> bool {
        self.task.is_some()
    }

    /// A transfer's progress: instances in, of how many expected.
    pub fn arrived(&self) -> Option<(usize, Option<u64>)> {
        self.task.as_ref().and_then(|t| t.arrived)
    }

    /// The engine's server for a configured entry, its secret attached.
    pub fn server(entry: &PacsServer, secrets: &Secrets) -> Result<Server, String> {
        let calling_ae = match entry.calling_ae.trim() {
            "" => "GROUNDGLASS",
            ae => ae,
        };
        let mut server =
            Server::parse(entry.address.trim(), calling_ae).map_err(|e| e.to_string())?;
        if let Server::Dimse(peer) = &mut server {
            peer.store_port = entry.store_port;
        }
        if let Server::Web(web) = &mut server {
            web.credentials = match (secrets.servers.get(&entry.name), &entry.user) {
                (Some(Secret::Token(t)), _) => Credentials::Bearer(t.clone()),
                (Some(Secret::Password(p)), Some(user)) => Credentials::Basic {
                    user: user.clone(),
                    password: p.clone(),
                },
                (None, Some(user)) => Credentials::Basic {
                    user: user.clone(),
                    password: String::new(),
                },
                _ => Credentials::None,
            };
        }
        Ok(server)
    }

    /// Stops what runs: a transfer at its next instance; a search's answer is ignored.
    pub fn cancel(&mut self) {
        if let Some(task) = self.task.take() {
            task.cancel.store(true, Ordering::Relaxed);
            self.status = Some((false, format!("{} cancelled", task.what)));
        }
    }

    fn start(
        &mut self,
        what: String,
        arrived: Option<(usize, Option<u64>)>,
    ) -> (u64, Arc<AtomicBool>) {
        self.cancel();
        self.generation += 1;
        let cancel = Arc::new(AtomicBool::new(false));
        self.task = Some(Task {
            generation: self.generation,
            cancel: cancel.clone(),
            what,
            started: Instant::now(),
            arrived,
        });
        self.status = None;
        (self.generation, cancel)
    }

    /// Searches page `offset / PAGE` of the studies matching the form on `server`.
    pub fn search(&mut self, server: Server, offset: usize) {
        let date = match self.query.date.trim() {
            "" => None,
            d => match DateRange::parse(d) {
                Ok(r) => Some(r),
                Err(e) => {
                    self.status = Some((true, format!("Date: {e}")));
                    return;
                }
            },
        };
        let text = |s: &str| Some(s.trim().to_string()).filter(|s| !s.is_empty());
        let query = StudyQuery {
            patient_name: text(&self.query.patient_name),
            patient_id: text(&self.query.patient_id),
            modality: text(&self.query.modality),
            date,
            accession: text(&self.query.accession),
            description: text(&self.query.description),
            limit: PAGE,
            offset,
        };
        self.offset = offset;
        self.searched = Some(server.clone());
        let (generation, _) = self.start(format!("search on {}", server.name()), None);
        let (tx, ctx) = (self.tx.clone(), self.ctx.clone());
        std::thread::spawn(move || {
            let result = groundglass_pacs::search_page(&server, &query).map_err(|e| e.to_string());
            let _ = tx.send(Message::Searched { generation, result });
            ctx.request_repaint();
        });
    }

    /// Fetches a preview of every series found, one after another, off the UI thread.
    fn fetch_thumbnails(&mut self) {
        self.stop_thumbnails.store(true, Ordering::Relaxed);
        self.stop_thumbnails = Arc::new(AtomicBool::new(false));
        self.thumbnails.clear();
        self.thumbnails_for += 1;
        let Some(server) = self.searched.clone() else {
            return;
        };
        let wanted: Vec<(String, String)> = self
            .studies
            .iter()
            .flat_map(|st| {
                st.series
                    .iter()
                    .map(|se| (st.study_uid.clone(), se.series_uid.clone()))
            })
            .collect();
        let (tx, ctx, stop) = (
            self.tx.clone(),
            self.ctx.clone(),
            self.stop_thumbnails.clone(),
        );
        let search = self.thumbnails_for;
        let scratch = std::env::temp_dir().join(format!(
            "groundglass-pacs-thumbs-{}-{search}",
            std::process::id()
        ));
        std::thread::spawn(move || {
            for (study, series) in wanted {
                if stop.load(Ordering::Relaxed) {
                    break;
                }
                // A preview that cannot be made is left out: the row still opens.
                let dir = scratch.join(&series);
                let image = groundglass_pacs::instances(&server, &study, &series)
                    .ok()
                    .and_then(|uids| uids.get(uids.len() / 2).cloned())
                    .and_then(|uid| {
                        groundglass_pacs::retrieve_instance(&server, &study, &series, &uid, &dir)
                            .ok()
                    })
                    .and_then(|_| groundglass_study::open(&dir).ok())
                    .and_then(|opened| opened.series.first().and_then(|s| s.thumbnail(64).ok()));
                let _ = std::fs::remove_dir_all(&dir);
                if let Some(image) = image {
                    let _ = tx.send(Message::Thumbnail {
                        search,
                        series_uid: series,
                        image,
                    });
                    ctx.request_repaint();
                }
            }
            let _ = std::fs::remove_dir_all(&scratch);
        });
    }

    pub fn echo(&mut self, server: Server) {
        let (generation, _) = self.start(format!("echo of {}", server.name()), None);
        let (tx, ctx) = (self.tx.clone(), self.ctx.clone());
        std::thread::spawn(move || {
            let result = groundglass_pacs::echo(&server).map_err(|e| e.to_string());
            let _ = tx.send(Message::Echoed { generation, result });
            ctx.request_repaint();
        });
    }

    /// Opens a series: from the cache when it is complete there, else retrieved into it.
    pub fn open_series(
        &mut self,
        server: Server,
        study_uid: &str,
        series_uid: &str,
        expected: Option<u64>,
    ) -> Option<Request> {
        let dir = match self
            .cache
            .folder(&server.name(), study_uid, Some(series_uid))
        {
            Ok(d) => d,
            Err(e) => {
                self.status = Some((true, e.to_string()));
                return None;
            }
        };
        if self.cache.reuse(&dir).is_some() {
            self.status = Some((false, format!("opened series {series_uid} from the cache")));
            return Some(Request::Open(dir));
        }
        let what = format!("retrieval of series {series_uid} from {}", server.name());
        let (generation, cancel) = self.start(what, Some((0, expected)));
        let (tx, ctx, cache) = (self.tx.clone(), self.ctx.clone(), self.cache.clone());
        let (study, series) = (study_uid.to_string(), series_uid.to_string());
        std::thread::spawn(move || {
            // Instances in the last preview (0: none yet).
            let mut shown = 0;
            let progress = |done: usize| {
                let preview = if shown == 0 {
                    // The first instance written (the sink names it by its UID).
                    let first = first_instance(&dir);
                    shown = usize::from(first.is_some());
                    first
                } else if preview_due(shown, done) {
                    shown = done;
                    Some(dir.clone())
                } else {
                    None
                };
                let _ = tx.send(Message::Arrived {
                    generation,
                    done,
                    preview,
                });
                ctx.request_repaint();
                if cancel.load(Ordering::Relaxed) {
                    std::ops::ControlFlow::Break(())
                } else {
                    std::ops::ControlFlow::Continue(())
                }
            };
            let result = groundglass_pacs::retrieve(&server, &study, Some(&series), &dir, progress)
                .map_err(|e| e.to_string())
                .and_then(|done| {
                    // Room for what came in: the least recently used series go.
                    cache.make_room(&dir).map_err(|e| e.to_string())?;
                    Ok((dir, done.instances))
                });
            let _ = tx.send(Message::Retrieved { generation, result });
            ctx.request_repaint();
        });
        None
    }

    /// Takes the workers' messages; returns what the viewer should open.
    pub fn pump(&mut self) -> Vec<Request> {
        let mut requests = Vec::new();
        while let Ok(message) = self.rx.try_recv() {
            let current = self.task.as_ref().map(|t| t.generation);
            let elapsed = self
                .task
                .as_ref()
                .map(|t| t.started.elapsed().as_secs_f64())
                .unwrap_or_default();
            match message {
                Message::Searched { generation, result } if Some(generation) == current => {
                    self.task = None;
                    match result {
                        Ok(page) => {
                            let studies = page.studies;
                            let mut text = format!(
                                "{} stud{} (page {}) in {elapsed:.1} s",
                                studies.len(),
                                if studies.len() == 1 { "y" } else { "ies" },
                                self.offset / PAGE + 1
                            );
                            // A server that caps its answers: paging cannot go past the cap.
                            self.more = page.more && page.server_limit.is_none();
                            if let Some(limit) = page.server_limit {
                                text += &format!("; the server sends at most {limit} matches for a search: narrow it to see the others");
                            }
                            self.status = Some((page.server_limit.is_some(), text));
                            self.studies = studies;
                            self.fetch_thumbnails();
                        }
                        Err(e) => self.status = Some((true, e)),
                    }
                }
                Message::Echoed { generation, result } if Some(generation) == current => {
                    self.task = None;
                    self.status = Some(match result {
                        Ok(()) => (false, format!("the server answers ({elapsed:.2} s)")),
                        Err(e) => (true, e),
                    });
                }
                Message::Arrived {
                    generation,
                    done,
                    preview,
                } if Some(generation) == current => {
                    if let Some(task) = &mut self.task {
                        task.arrived = Some((done, task.arrived.and_then(|a| a.1)));
                    }
                    if let Some(preview) = preview {
                        requests.push(Request::Preview(preview));
                    }
                }
                Message::Retrieved { generation, result } if Some(generation) == current => {
                    // The count of the finished transfer, not of its last progress report
                    // (C-MOVE reports at the PACS's pending answers, the last store after them).
                    self.task = None;
                    match result {
                        Ok((dir, done)) => {
                            self.status = Some((
                                false,
                                format!("{done} instance(s) retrieved in {elapsed:.1} s"),
                            ));
                            requests.push(Request::Open(dir));
                        }
                        Err(e) => self.status = Some((true, e)),
                    }
                }
                Message::Thumbnail {
                    search,
                    series_uid,
                    image,
                } if search == self.thumbnails_for => {
                    let texture = self.ctx.load_texture(
                        format!("pacs-thumb-{series_uid}"),
                        super::to_color_image(&image),
                        egui::TextureOptions::LINEAR,
                    );
                    self.thumbnails.insert(series_uid, texture);
                }
                // A job that was cancelled or replaced.
                _ => {}
            }
        }
        latest_previews(requests)
    }

    /// The window; `servers` and `secrets` are the viewer's (changed here, saved on request).
    pub fn show(
        &mut self,
        ctx: &egui::Context,
        servers: &mut Vec<PacsServer>,
        secrets: &mut Secrets,
    ) -> Vec<Request> {
        let mut requests = self.pump();
        if !self.open {
            return requests;
        }
        let mut open = self.open;
        egui::Window::new("Open from PACS")
            .open(&mut open)
            .default_size([720.0, 520.0])
            .show(ctx, |ui| {
                self.servers_ui(ui, servers, secrets, &mut requests);
                ui.separator();
                let server = servers
                    .get(self.selected)
                    .map(|entry| Self::server(entry, secrets));
                self.query_ui(ui, server.as_ref());
                ui.separator();
                self.status_ui(ui);
                if let Some(Ok(server)) = server {
                    self.results_ui(ui, &server, &mut requests);
                }
            });
        self.open = open;
        requests
    }

    fn servers_ui(
        &mut self,
        ui: &mut egui::Ui,
        servers: &mut Vec<PacsServer>,
        secrets: &mut Secrets,
        requests: &mut Vec<Request>,
    ) {
        ui.horizontal(|ui| {
            let label = ui.label("Server");
            let shown = servers
                .get(self.selected)
                .map(|s| format!("{} ({})", s.name, s.address))
                .unwrap_or_else(|| "(none configured)".into());
            egui::ComboBox::from_id_salt("pacs-server")
                .selected_text(shown)
                .show_ui(ui, |ui| {
                    for (i, s) in servers.iter().enumerate() {
                        if ui
                            .selectable_label(
                                i == self.selected,
                                format!("{} ({})", s.name, s.address),
                            )
                            .clicked()
                        {
                            self.selected = i;
                            self.studies.clear();
                        }
                    }
                })
                .response
                .labelled_by(label.id);
            if ui.button("Add server…").clicked() {
                self.form = ServerForm {
                    calling_ae: "GROUNDGLASS".into(),
                    ..Default::default()
                };
                self.editing = true;
            }
            if let Some(entry) = servers.get(self.selected) {
                if ui.button("Edit").clicked() {
                    self.form = ServerForm {
                        name: entry.name.clone(),
                        address: entry.address.clone(),
                        calling_ae: entry.calling_ae.clone(),
                        user: entry.user.clone().unwrap_or_default(),
                        secret: String::new(),
                        secret_is_token: matches!(
                            secrets.servers.get(&entry.name),
                            Some(Secret::Token(_))
                        ),
                        store_port: entry.store_port.map(|p| p.to_string()).unwrap_or_default(),
                    };
                    self.editing = true;
                }
                if ui
                    .button("Test")
                    .on_hover_text("C-ECHO, or a one-study search")
                    .clicked()
                {
                    match Self::server(entry, secrets) {
                        Ok(s) => self.echo(s),
                        Err(e) => self.status = Some((true, e)),
                    }
                }
                if ui.button("Remove").clicked() {
                    let name = entry.name.clone();
                    servers.remove(self.selected);
                    secrets.servers.remove(&name);
                    self.selected = 0;
                    self.studies.clear();
                    requests.push(Request::SaveSettings);
                }
            }
        });
        if self.editing {
            self.form_ui(ui, servers, secrets, requests);
        }
    }

    fn form_ui(
        &mut self,
        ui: &mut egui::Ui,
        servers: &mut Vec<PacsServer>,
        secrets: &mut Secrets,
        requests: &mut Vec<Request>,
    ) {
        egui::Grid::new("pacs-form").num_columns(2).show(ui, |ui| {
            let field =
                |ui: &mut egui::Ui, name: &str, value: &mut String, hint: &str, secret: bool| {
                    let label = ui.label(name);
                    // add_sized: a grid cell's width is unknown on its first frame, and a
                    // TextEdit's desired width is clamped to it (then remembered).
                    ui.add_sized(
                        [380.0, 20.0],
                        egui::TextEdit::singleline(value)
                            .hint_text(hint)
                            .password(secret),
                    )
                    .labelled_by(label.id);
                    ui.end_row();
                };
            field(
                ui,
                "Server name",
                &mut self.form.name,
                "e.g. Hospital PACS",
                false,
            );
            field(
                ui,
                "Address",
                &mut self.form.address,
                "https://host:port/dicom-web or dicom://AET@host:port",
                false,
            );
            field(
                ui,
                "Our AE title",
                &mut self.form.calling_ae,
                "DIMSE only",
                false,
            );
            field(
                ui,
                "Storage port",
                &mut self.form.store_port,
                "DIMSE: C-MOVE to this port (the PACS must know our AE title here); empty: C-GET",
                false,
            );
            field(
                ui,
                "User",
                &mut self.form.user,
                "DICOMweb basic authentication",
                false,
            );
            let secret_name = if self.form.secret_is_token {
                "Token"
            } else {
                "Password"
            };
            field(
                ui,
                secret_name,
                &mut self.form.secret,
                "kept in pacs-credentials.json (owner only); empty keeps the saved one",
                true,
            );
        });
        ui.horizontal(|ui| {
            ui.checkbox(
                &mut self.form.secret_is_token,
                "bearer token instead of a password",
            );
            if ui.button("Save server").clicked() {
                let f = &self.form;
                let name = f.name.trim().to_string();
                let store_port = parse_store_port(&f.store_port);
                let entry = PacsServer {
                    name: name.clone(),
                    address: f.address.trim().to_string(),
                    calling_ae: f.calling_ae.trim().to_string(),
                    user: Some(f.user.trim().to_string()).filter(|u| !u.is_empty()),
                    store_port: store_port.clone().ok().flatten(),
                };
                let check = if name.is_empty() {
                    Err("a server needs a name".to_string())
                } else {
                    Server::parse(&entry.address, &entry.calling_ae)
                        .map_err(|e| e.to_string())
                        .and_then(|server| match (server, store_port) {
                            (_, Err(e)) => Err(e),
                            (Server::Web(_), Ok(Some(_))) => Err(
                                "a storage port is for DIMSE servers (C-MOVE); a DICOMweb server sends over HTTP: leave it empty".to_string(),
                            ),
                            _ => Ok(()),
                        })
                };
                match check {
                    Err(e) => self.status = Some((true, e)),
                    Ok(()) => {
                        if !f.secret.is_empty() {
                            let secret = if f.secret_is_token {
                                Secret::Token(f.secret.clone())
                            } else {
                                Secret::Password(f.secret.clone())
                            };
                            secrets.servers.insert(name.clone(), secret);
                        }
                        match servers.iter().position(|s| s.name == name) {
                            Some(i) => {
                                servers[i] = entry;
                                self.selected = i;
                            }
                            None => {
                                servers.push(entry);
                                self.selected = servers.len() - 1;
                            }
                        }
                        self.form.secret.clear();
                        self.editing = false;
                        self.status = Some((false, format!("server {name} saved")));
                        requests.push(Request::SaveSettings);
                    }
                }
            }
            if ui.button("Close form").clicked() {
                self.editing = false;
            }
        });
    }

    fn query_ui(&mut self, ui: &mut egui::Ui, server: Option<&Result<Server, String>>) {
        egui::Grid::new("pacs-query").num_columns(4).show(ui, |ui| {
            let field = |ui: &mut egui::Ui, name: &str, value: &mut String, hint: &str| {
                let label = ui.label(name);
                ui.add_sized(
                    [180.0, 20.0],
                    egui::TextEdit::singleline(value).hint_text(hint),
                )
                .labelled_by(label.id);
            };
            let q = &mut self.query;
            field(ui, "Patient name", &mut q.patient_name, "DOE^* (wildcards)");
            field(ui, "Patient ID", &mut q.patient_id, "");
            ui.end_row();
            field(ui, "Modality", &mut q.modality, "CT, MR, …");
            field(ui, "Date", &mut q.date, "YYYYMMDD-YYYYMMDD");
            ui.end_row();
            field(ui, "Accession", &mut q.accession, "");
            field(ui, "Description", &mut q.description, "");
            ui.end_row();
        });
        ui.horizontal(|ui| {
            let ready = match server {
                Some(Ok(s)) => Some(s.clone()),
                Some(Err(e)) => {
                    ui.colored_label(Color32::LIGHT_RED, e);
                    None
                }
                None => {
                    ui.label("Add a server first.");
                    None
                }
            };
            if let Some(s) = ready {
                if ui.button("Search").clicked() {
                    self.search(s.clone(), 0);
                }
                if self.offset > 0 && ui.button("Previous page").clicked() {
                    self.search(s.clone(), self.offset.saturating_sub(PAGE));
                }
                if self.more && ui.button("Next page").clicked() {
                    self.search(s, self.offset + PAGE);
                }
            }
            if self.busy() && ui.button("Cancel").clicked() {
                self.cancel();
            }
        });
    }

    fn status_ui(&mut self, ui: &mut egui::Ui) {
        if let Some(task) = &self.task {
            ui.horizontal(|ui| {
                ui.spinner();
                match task.arrived {
                    Some((done, Some(total))) if total > 0 => {
                        ui.add(
                            egui::ProgressBar::new(done as f32 / total as f32)
                                .desired_width(240.0)
                                .text(format!("{done}/{total} instances")),
                        );
                    }
                    Some((done, _)) => {
                        ui.label(format!("{done} instances"));
                    }
                    None => {}
                }
                ui.label(format!(
                    "{} ({:.0} s)",
                    task.what,
                    task.started.elapsed().as_secs_f64()
                ));
            });
            // The elapsed time and the spinner move.
            ui.ctx()
                .request_repaint_after(std::time::Duration::from_millis(250));
        } else if let Some((error, text)) = &self.status {
            let color = if *error {
                Color32::LIGHT_RED
            } else {
                ui.visuals().text_color()
            };
            ui.label(RichText::new(text).color(color));
        }
    }

    fn results_ui(&mut self, ui: &mut egui::Ui, server: &Server, requests: &mut Vec<Request>) {
        let mut open = None;
        egui::ScrollArea::vertical().show(ui, |ui| {
            for study in &self.studies {
                ui.label(
                    RichText::new(format!(
                        "{}  {}  {}  {}  {}",
                        study.date,
                        study.patient_name,
                        study.patient_id,
                        study.modalities.join("/"),
                        study.description
                    ))
                    .strong(),
                );
                for series in &study.series {
                    ui.horizontal(|ui| {
                        ui.add_space(16.0);
                        match self.thumbnails.get(&series.series_uid) {
                            Some(t) => {
                                ui.add(
                                    egui::Image::new(t).fit_to_exact_size(egui::vec2(40.0, 40.0)),
                                );
                            }
                            None => {
                                ui.add_space(40.0);
                            }
                        }
                        let count = series
                            .instances
                            .map(|n| n.to_string())
                            .unwrap_or_else(|| "?".into());
                        let label = format!(
                            "{} {} ({count} images)",
                            series.modality, series.description
                        );
                        if ui
                            .button("Open")
                            .on_hover_text(format!("series {}", series.series_uid))
                            .clicked()
                        {
                            open = Some((
                                study.study_uid.clone(),
                                series.series_uid.clone(),
                                series.instances,
                            ));
                        }
                        ui.label(label);
                    });
                }
                ui.separator();
            }
        });
        if let Some((study, series, expected)) = open {
            requests.extend(self.open_series(server.clone(), &study, &series, expected));
        }
    }
}

/// Whether a series arriving should be shown again: the instances in (`done`) are at least
/// twice those of the last preview (`shown`).
pub fn preview_due(shown: usize, done: usize) -> bool {
    done >= 2 * shown.max(1)
}

/// Whether a preview is to be opened, `last_opened` being what the viewer was last asked to open:
/// the first instance always (the user asked for the series), the folder growing only while the
/// transfer is what the viewer shows (its first instance or an earlier look at the folder); the
/// user may have opened something else meanwhile.
pub fn preview_applies(preview: &std::path::Path, last_opened: Option<&std::path::Path>) -> bool {
    preview.is_file() || last_opened.is_some_and(|p| p == preview || p.parent() == Some(preview))
}

/// Of what one frame's messages ask, what is worth doing: the previews a later one replaces,
/// or that the whole series replaces, are left out.
fn latest_previews(requests: Vec<Request>) -> Vec<Request> {
    let last_preview = requests
        .iter()
        .rposition(|r| matches!(r, Request::Preview(_)));
    let last_open = requests.iter().rposition(|r| matches!(r, Request::Open(_)));
    requests
        .into_iter()
        .enumerate()
        .filter(|(i, r)| match r {
            Request::Preview(_) => Some(*i) == last_preview && last_open.is_none_or(|o| o < *i),
            _ => true,
        })
        .map(|(_, r)| r)
        .collect()
}

/// The first finished instance in `dir` (a `.dcm` not under its temporary name).
fn first_instance(dir: &std::path::Path) -> Option<PathBuf> {
    std::fs::read_dir(dir)
        .ok()?
        .filter_map(|e| e.ok())
        .map(|e| e.path())
        .find(|p| {
            p.extension().is_some_and(|x| x == "dcm")
                && !p
                    .file_name()
                    .is_some_and(|n| n.to_string_lossy().starts_with('.'))
        })
}

/// The storage port as typed: empty is none (C-GET); otherwise a port number from 1 to 65535.
fn parse_store_port(typed: &str) -> Result<Option<u16>, String> {
    match typed.trim() {
        "" => Ok(None),
        t => t
            .parse::<u16>()
            .ok()
            .filter(|&p| p > 0)
            .map(Some)
            .ok_or_else(|| {
                format!("storage port `{t}` is not a port number (1-65535; empty: C-GET)")
            }),
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_series_arriving_is_shown_again_each_time_it_doubles() {
        let mut shown = 1;
        let shown_at: Vec<usize> = (2..=300)
            .filter(|&done| {
                let due = preview_due(shown, done);
                if due {
                    shown = done;
                }
                due
            })
            .collect();
        assert_eq!(shown_at, [2, 4, 8, 16, 32, 64, 128, 256]);
        // The previews and then the series read less than three times the series.
        let read: usize = shown_at.iter().sum::<usize>() + 1 + 300;
        assert!(read < 3 * 300, "{read}");
    }

    #[test]
    fn a_growing_preview_opens_only_while_the_transfer_is_on_screen() {
        let dir = std::env::temp_dir().join(format!("gg-preview-{}", std::process::id()));
        std::fs::create_dir_all(&dir).expect("dir");
        let first = dir.join("1.2.3.dcm");
        std::fs::write(&first, b"x").expect("file");
        assert!(preview_applies(
            &first,
            Some(std::path::Path::new("/elsewhere"))
        ));
        assert!(
            preview_applies(&dir, Some(&first)),
            "after its first instance"
        );
        assert!(
            preview_applies(&dir, Some(&dir)),
            "after an earlier preview"
        );
        let other = std::path::Path::new("/studies/another");
        assert!(
            !preview_applies(&dir, Some(other)),
            "the user opened another study"
        );
        assert!(!preview_applies(&dir, None));
        let _ = std::fs::remove_dir_all(&dir);
    }

    #[test]
    fn only_the_latest_preview_of_a_frame_is_opened_and_none_before_the_series() {
        let (a, b, dir) = (
            PathBuf::from("a.dcm"),
            PathBuf::from("part"),
            PathBuf::from("whole"),
        );
        let got = latest_previews(vec![
            Request::Preview(a.clone()),
            Request::Preview(b.clone()),
        ]);
        assert_eq!(got, [Request::Preview(b.clone())]);
        let got = latest_previews(vec![
            Request::Preview(a),
            Request::Preview(b.clone()),
            Request::Open(dir.clone()),
            Request::SaveSettings,
        ]);
        assert_eq!(got, [Request::Open(dir.clone()), Request::SaveSettings]);
        let got = latest_previews(vec![
            Request::Open(dir.clone()),
            Request::Preview(b.clone()),
        ]);
        assert_eq!(
            got,
            [Request::Open(dir), Request::Preview(b)],
            "a later series' preview"
        );
    }
}
