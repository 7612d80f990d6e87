//! `groundglass batch (--folder DIR | --pacs SERVER [search keys]) --task grounded|report|segment
//! (--model DIR | --remote URL...) [--planes axial,coronal,sagittal] [--lang en|de]
//! [--store-root DIR]`: the model over an archive, overnight. Each folder directly under DIR is a
//! study (DIR itself too when it holds files); from a PACS, each image series of the studies the
//! search finds is retrieved into the viewer's PACS cache (reused when it is complete there), so
//! the viewer opening it from the PACS finds its answers. Each series is asked about on its
//! middle slice in every plane named; each answer goes to the study's corrections store, where
//! the viewer shows it. What is in the store already is not asked again, so a killed run started
//! again repeats nothing it finished. With several `--remote` servers the questions of a series
//! go out to all of them at once. With `--send PACS`, once every plane of a DICOM series is
//! answered, the answers go to that PACS in the series' study: a DICOM SR of the findings (boxes
//! on whatever plane, classes, text) and, where the model drew masks, a DICOM SEG, both marked
//! as the model's and unverified; each store remembers what it sent (`sent.json`), so a run
//! started again sends nothing twice (and the UIDs follow the content, so a PACS that got a file
//! twice still holds one).

use std::collections::VecDeque;
use std::path::{Path, PathBuf};
use std::process::ExitCode;
use std::sync::mpsc::channel;
use std::sync::{Arc, Mutex};

use anyhow::{bail, Context};
use clap::Args;
use groundglass_feedback::export::dicom_parts::Derived;
use groundglass_feedback::export::{dicom_seg, model_answers, Deidentify};
use groundglass_feedback::store::{Delivery, SentLog};
use groundglass_feedback::{AskRecord, Corrections, Edit, SliceRef, Store};
use groundglass_grounding::LabelMap;
use groundglass_model::prompt::{Lang, Request, Task};
use groundglass_model::session::MAX_NEW_TOKENS;
use groundglass_model::{Answer, AskInput, ModelSession};
use groundglass_pacs::cache::Cache;
use groundglass_pacs::{SeriesInfo, Server, StudyInfo};
use groundglass_study::{
    extract, NoProgress, Plane, Series, SeriesSource, SliceImage, VolumeLayout,
};

#[derive(Args, Debug)]
pub struct BatchArgs {
    /// The archive: one study per folder under it.
    #[arg(long, required_unless_present = "pacs", conflicts_with = "pacs")]
    pub folder: Option<PathBuf>,
    /// A PACS instead: `http(s)://host:port/dicom-web` or `dicom://AET@host:port`; the studies
    /// its search keys find (--modality, --date, ...; credentials as for `pacs`).
    #[arg(long)]
    pub pacs: Option<String>,
    #[command(flatten)]
    pub query: super::pacs::QueryArgs,
    /// Our AE title, for DIMSE peers (--pacs, --send).
    #[arg(long, default_value = "GROUNDGLASS")]
    pub calling_ae: String,
    /// DICOMweb basic authentication for --pacs and --send: the user (the password comes from
    /// GROUNDGLASS_PACS_PASSWORD).
    #[arg(long)]
    pub user: Option<String>,
    /// Send each DICOM series' answers to this PACS (an address as for --pacs, often the same)
    /// once all its planes are answered: an SR of the findings and text, and a SEG of the masks
    /// where there are masks, in the source study, marked as the model's and unverified.
    #[arg(long)]
    pub send: Option<String>,
    /// Retrieve from a DIMSE peer by C-MOVE to our storage SCP on this port (else C-GET).
    #[arg(long, requires = "pacs")]
    pub store_port: Option<u16>,
    /// Where retrieved series are kept (default: the viewer's PACS cache).
    #[arg(long, requires = "pacs")]
    pub pacs_cache: Option<PathBuf>,
    /// report, grounded or segment.
    #[arg(long)]
    pub task: String,
    /// A checkpoint folder on this machine.
    #[arg(long, required_unless_present = "remote", conflicts_with = "remote")]
    pub model: Option<PathBuf>,
    /// Groundglass servers (repeat for several; one token for all, from --remote-token-file,
    /// else GROUNDGLASS_REMOTE_TOKEN).
    #[arg(long)]
    pub remote: Vec<String>,
    /// A file whose first line is the servers' bearer token (keep it chmod 600).
    #[arg(long, requires = "remote")]
    pub remote_token_file: Option<PathBuf>,
    /// The planes asked about, each on its middle slice.
    #[arg(long, default_value = "axial,coronal,sagittal")]
    pub planes: String,
    #[arg(long, default_value = "en")]
    pub lang: String,
    /// Stores under this folder, one per study (default: the user's data directory, where the
    /// viewer finds them).
    #[arg(long)]
    pub store_root: Option<PathBuf>,
    #[arg(long, default_value = "auto")]
    pub dtype: String,
}

/// One question: a slice of a series, and where its answer goes.
struct Job {
    slice: SliceImage,
    at: SliceRef,
    modality: String,
}

enum Backend {
    Local(Box<ModelSession>),
    Remote(groundglass_serve::Remote),
}

impl Backend {
    fn name(&self, model: Option<&Path>) -> String {
        match self {
            Backend::Local(_) => model.map(|m| m.display().to_string()).unwrap_or_default(),
            Backend::Remote(r) => r.base.clone(),
        }
    }

    fn ask(&mut self, job: &Job, request: &Request) -> anyhow::Result<Answer> {
        let input = AskInput {
            slice: &job.slice,
            modality: &job.modality,
            request,
            semsam: None,
            max_new_tokens: MAX_NEW_TOKENS,
            visual_prompt: None,
        };
        Ok(match self {
            Backend::Local(s) => s.ask(&input, |_| true)?,
            Backend::Remote(r) => r.ask(&input)?.answer,
        })
    }
}

/// Series that are not images: nothing on a slice to ask about.
const NOT_IMAGES: [&str; 8] = ["SR", "SEG", "PR", "KO", "RTSTRUCT", "RTPLAN", "DOC", "REG"];

fn pacs_server(args: &BatchArgs, address: &str) -> anyhow::Result<Server> {
    let mut server = super::pacs::server(&super::pacs::ServerArgs {
        server: address.to_string(),
        calling_ae: args.calling_ae.clone(),
        user: args.user.clone(),
    })?;
    super::pacs::set_store_port(&mut server, args.store_port)?;
    Ok(server)
}

/// Every study the search finds (page after page), each image series retrieved into the PACS
/// cache (or found complete there) and asked about like a folder.
fn from_pacs(args: &BatchArgs, server: &Server, batch: &mut Batch) -> anyhow::Result<()> {
    let mut query = args.query.query()?;
    query.limit = query.limit.max(1);
    let mut studies: Vec<StudyInfo> = Vec::new();
    loop {
        let page = groundglass_pacs::search_page(server, &query)
            .map_err(|e| super::pacs::credentials_hint(e.into()))?;
        studies.extend(page.studies);
        if let Some(limit) = page.server_limit {
            eprintln!(
                "warning: {} sends at most {limit} matches for a search (its own limit): this batch covers those; narrow the search (a date range, a modality) to reach the others",
                server.name()
            );
            break;
        }
        if !page.more {
            break;
        }
        query.offset += query.limit;
    }
    let cache = Cache::new(
        args.pacs_cache
            .clone()
            .unwrap_or_else(crate::viewer::default_pacs_cache),
        (crate::viewer::PACS_CACHE_GB * 1e9) as u64,
    );
    let series: Vec<(&StudyInfo, &SeriesInfo)> = studies
        .iter()
        .flat_map(|st| st.series.iter().map(move |se| (st, se)))
        .collect();
    eprintln!(
        "{} stud{} with {} series on {}",
        studies.len(),
        if studies.len() == 1 { "y" } else { "ies" },
        series.len(),
        server.name()
    );
    let progress = Progress::start("series", series.len());
    for (n, (study, se)) in series.iter().enumerate() {
        let label = progress.label(n);
        if NOT_IMAGES.contains(&se.modality.as_str()) {
            eprintln!(
                "{label} {} series {}: not images, left out",
                se.modality, se.series_uid
            );
            continue;
        }
        let dir = match cache.folder(&server.name(), &study.study_uid, Some(&se.series_uid)) {
            Ok(dir) => dir,
            Err(e) => {
                eprintln!("{label} {e}");
                batch.failed += 1;
                continue;
            }
        };
        if cache.reuse(&dir).is_some() {
            eprintln!("{label} series {} from the cache", se.series_uid);
        } else {
            let t = std::time::Instant::now();
            let got = groundglass_pacs::retrieve(
                server,
                &study.study_uid,
                Some(&se.series_uid),
                &dir,
                |_| std::ops::ControlFlow::Continue(()),
            );
            match got {
                Ok(done) => eprintln!(
                    "{label} series {}: {} instance(s) retrieved in {:.1} s",
                    se.series_uid,
                    done.instances,
                    t.elapsed().as_secs_f64()
                ),
                // A series that cannot be had does not stop the night's work.
                Err(e) => {
                    eprintln!("{label} {e}");
                    batch.failed += 1;
                    continue;
                }
            }
            if let Err(e) = cache.make_room(&dir) {
                eprintln!("{label} the PACS cache: {e}");
            }
        }
        batch.study(&label, &dir)?;
    }
    Ok(())
}

/// The studies under `folder`: its sub-folders, and itself when it holds files.
fn studies(folder: &Path) -> anyhow::Result<Vec<PathBuf>> {
    let mut dirs = Vec::new();
    let mut has_files = false;
    for entry in
        std::fs::read_dir(folder).with_context(|| format!("--folder {}", folder.display()))?
    {
        let path = entry?.path();
        if path.is_dir() {
            dirs.push(path);
        } else {
            has_files = true;
        }
    }
    dirs.sort();
    if has_files {
        dirs.insert(0, folder.to_path_buf());
    }
    Ok(dirs)
}

pub fn run(args: BatchArgs) -> anyhow::Result<ExitCode> {
    let task = super::ask::parse_task(&args.task)?;
    if task == Task::Vqa {
        bail!("--task vqa: a batch asks report, grounded or segment (no question to ask)");
    }
    let lang = super::ask::parse_lang(&args.lang)?;
    let planes: Vec<Plane> = args
        .planes
        .split(',')
        .map(|p| {
            Plane::parse(p.trim()).with_context(|| {
                format!("--planes {p:?}: expected acquired, axial, coronal or sagittal")
            })
        })
        .collect::<anyhow::Result<_>>()?;
    if args.user.is_some() && args.pacs.is_none() && args.send.is_none() {
        bail!("--user is the PACS user: give it with --pacs or --send");
    }
    // A wrong PACS address is said before the model loads.
    let send = args
        .send
        .as_deref()
        .map(|address| {
            super::pacs::server(&super::pacs::ServerArgs {
                server: address.to_string(),
                calling_ae: args.calling_ae.clone(),
                user: args.user.clone(),
            })
        })
        .transpose()?;
    // A PACS that will not answer is said now, not after a night of questions.
    if let Some(to) = &send {
        groundglass_pacs::echo(to)
            .map_err(|e| super::pacs::credentials_hint(e.into()))
            .with_context(|| format!("--send {}", to.name()))?;
    }
    let pacs = args
        .pacs
        .as_deref()
        .map(|address| pacs_server(&args, address))
        .transpose()?;
    let request = Request {
        task,
        lang,
        clinical: None,
        question: None,
        options: vec![],
    };
    let mut backends = Vec::new();
    // The model as a PACS names an algorithm: by its checkpoint folder.
    let mut algorithm = String::new();
    let name_of = |summary: &groundglass_model::session::ModelSummary| {
        let folder = summary
            .dir
            .file_name()
            .map(|f| f.to_string_lossy().into_owned())
            .unwrap_or_default();
        format!("Groundglass {folder}")
    };
    if let Some(model) = &args.model {
        let session = super::ask::load_session(model, &args.dtype, "auto")?;
        session.check_task(task)?;
        algorithm = name_of(&session.summary());
        backends.push(Backend::Local(Box::new(session)));
    }
    let token = super::token::for_client(args.remote_token_file.as_deref())?;
    for url in &args.remote {
        let remote =
            groundglass_serve::Remote::new(url, token.clone()).trusting_environment_ca()?;
        // Before any work: each server answers and can do the task.
        let summary = remote.summary()?;
        if !summary.tasks.contains(&task) {
            bail!("{url}: its checkpoint cannot answer {} requests", args.task);
        }
        if algorithm.is_empty() {
            algorithm = name_of(&summary);
        }
        backends.push(Backend::Remote(remote));
    }
    let names: Vec<String> = backends
        .iter()
        .map(|b| b.name(args.model.as_deref()))
        .collect();

    let mut batch = Batch {
        backends,
        names,
        request,
        planes,
        reviewer: crate::viewer::default_reviewer(),
        store_root: args.store_root.clone(),
        send,
        algorithm,
        asked: 0,
        skipped: 0,
        failed: 0,
        sent: 0,
        sent_before: 0,
    };
    match (&args.folder, &args.pacs) {
        (Some(folder), _) => {
            let studies = studies(folder)?;
            let progress = Progress::start("study", studies.len());
            for (n, study) in studies.iter().enumerate() {
                let label = progress.label(n);
                batch.study(&label, study)?;
            }
        }
        _ => match &pacs {
            Some(server) => from_pacs(&args, server, &mut batch)?,
            None => bail!("give --folder DIR or --pacs SERVER"),
        },
    }
    let Batch {
        asked,
        skipped,
        failed,
        sent,
        sent_before,
        send,
        ..
    } = batch;
    eprintln!("{asked} asked, {skipped} already done, {failed} failed");
    if let Some(to) = send {
        eprintln!(
            "{sent} series sent to {}, {sent_before} sent before",
            to.name()
        );
    }
    Ok(if failed == 0 {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}

/// The batch's backends and what it asks, and its counts.
struct Batch {
    backends: Vec<Backend>,
    names: Vec<String>,
    request: Request,
    planes: Vec<Plane>,
    reviewer: String,
    store_root: Option<PathBuf>,
    /// Where the answers go (`--send`).
    send: Option<Server>,
    /// The model's name as the DICOM it sends names the algorithm.
    algorithm: String,
    asked: usize,
    skipped: usize,
    /// Failed questions, studies, retrievals and sends.
    failed: usize,
    sent: usize,
    sent_before: usize,
}

impl Batch {
    /// Asks about every series of the study in `study` (a folder), each answer saved as it
    /// comes; `label` begins its lines in the log.
    fn study(&mut self, label: &str, study: &Path) -> anyhow::Result<()> {
        let (task, lang) = (self.request.task, self.request.lang);
        // One study that cannot be read does not stop the night's work: it is counted and said.
        let opened = match self.store_root.clone() {
            Some(root) => groundglass_study::open(study)
                .with_context(|| format!("opening {}", study.display()))
                .map(|opened| {
                    let key = groundglass_feedback::key::study_key(&opened.series);
                    (root.join(key), opened)
                }),
            None => super::review::store_dir(study, None),
        };
        let (dir, opened) = match opened {
            Ok(o) => o,
            Err(e) => {
                eprintln!("{label} {e:#}");
                self.failed += 1;
                return Ok(());
            }
        };
        if opened.series.is_empty() {
            eprintln!("{label} {}: no images", study.display());
            return Ok(());
        }
        let mut store = Store::open(&dir)?;
        super::review::report_store_damage(&store);
        let done = Corrections::replay(store.entries());
        let already = |at: &SliceRef| done.answers.iter().any(|a| answers(a, at, task, lang));
        for series in &opened.series {
            let mut jobs = VecDeque::new();
            let mut planned = Vec::new();
            let mut volume = None;
            for &plane in &self.planes {
                let vol = match &volume {
                    Some(v) => v,
                    None => match series.load(0, &NoProgress) {
                        Ok(v) => volume.insert(v),
                        Err(e) => {
                            eprintln!("{}: {e}", study.display());
                            self.failed += 1;
                            break;
                        }
                    },
                };
                let grid = groundglass_study::PlaneGrid::new(vol, plane);
                let index = grid.count / 2;
                let slice = extract(vol, plane, index);
                let at = SliceRef {
                    series_uid: series.uid.clone(),
                    volume: 0,
                    plane,
                    index,
                    size: [slice.width, slice.height],
                };
                planned.push(at.clone());
                if already(&at) {
                    self.skipped += 1;
                    continue;
                }
                jobs.push_back(Job {
                    slice,
                    at,
                    modality: series.modality.clone(),
                });
            }
            let layout: Option<VolumeLayout> = volume.as_deref().cloned();
            drop(volume);
            if !jobs.is_empty() {
                self.answer(label, study, series, jobs, &mut store, &dir)?;
            }
            if let (Some(to), Some(layout)) = (&self.send, &layout) {
                match self.send_series(to, &store, series, &planned, layout) {
                    Ok(Sent::Now(what)) => {
                        self.sent += 1;
                        eprintln!(
                            "{label} {} {:?}: {what} sent to {}",
                            study.display(),
                            series.description,
                            to.name()
                        );
                    }
                    Ok(Sent::Before) => self.sent_before += 1,
                    Ok(Sent::Not(why)) => {
                        eprintln!(
                            "{label} {} {:?}: nothing sent ({why})",
                            study.display(),
                            series.description
                        );
                    }
                    // A PACS that refuses does not stop the night's work; the next run tries again.
                    Err(e) => {
                        self.failed += 1;
                        eprintln!(
                            "{label} {} {:?}: sending to {}: {e:#}",
                            study.display(),
                            series.description,
                            to.name()
                        );
                    }
                }
            }
        }
        Ok(())
    }

    /// Asks the series' `jobs` (its planes not answered yet), each answer saved as it comes.
    fn answer(
        &mut self,
        label: &str,
        study: &Path,
        series: &Series,
        jobs: VecDeque<Job>,
        store: &mut Store,
        dir: &Path,
    ) -> anyhow::Result<()> {
        let (task, lang) = (self.request.task, self.request.lang);
        // The series' questions go to every backend at once; answers come back here, the
        // store's one writer.
        let total = jobs.len();
        let queue = Arc::new(Mutex::new(jobs));
        let (tx, rx) = channel();
        std::thread::scope(|scope| {
            for (backend, name) in self.backends.iter_mut().zip(&self.names) {
                let (queue, tx, request) = (queue.clone(), tx.clone(), &self.request);
                scope.spawn(move || loop {
                    let job = queue.lock().ok().and_then(|mut q| q.pop_front());
                    let Some(job) = job else { break };
                    let answer = backend.ask(&job, request);
                    if tx.send((job, answer, name.clone())).is_err() {
                        break;
                    }
                });
            }
            drop(tx);
            for (job, answer, by) in rx.iter().take(total) {
                match answer {
                    Ok(answer) => {
                        let findings = answer.findings.len();
                        let record = groundglass_feedback::AskRecord::new(
                            groundglass_feedback::now_unix_ms(),
                            job.at.clone(),
                            task,
                            lang,
                            None,
                            None,
                            false,
                            by.clone(),
                            answer,
                        );
                        store
                            .append(
                                Edit::Answer {
                                    record: Box::new(record),
                                },
                                &self.reviewer,
                            )
                            .with_context(|| format!("saving to {}", dir.display()))?;
                        self.asked += 1;
                        eprintln!(
                            "{label} {} {:?} {} {}: done by {by}, {findings} finding(s)",
                            study.display(),
                            series.description,
                            job.at.plane.name(),
                            job.at.index
                        );
                    }
                    Err(e) => {
                        self.failed += 1;
                        eprintln!(
                            "{label} {} {} {}: {e:#}",
                            study.display(),
                            job.at.plane.name(),
                            job.at.index
                        );
                    }
                }
            }
            anyhow::Ok(())
        })?;
        Ok(())
    }

    /// Sends the answers on the series' `planned` slices to `to`, once all are answered and only
    /// if this store has not sent them there before.
    fn send_series(
        &self,
        to: &Server,
        store: &Store,
        series: &Series,
        planned: &[SliceRef],
        layout: &VolumeLayout,
    ) -> anyhow::Result<Sent> {
        let SeriesSource::Dicom(plan) = &series.source else {
            return Ok(Sent::Not("not a DICOM series".into()));
        };
        let (task, lang) = (self.request.task, self.request.lang);
        let state = Corrections::replay(store.entries());
        let answers: Vec<&AskRecord> = planned
            .iter()
            .filter_map(|at| {
                state
                    .answers
                    .iter()
                    .rev()
                    .find(|a| answers(a, at, task, lang))
            })
            .collect();
        if answers.len() < planned.len() {
            return Ok(Sent::Not(format!(
                "{} of {} planes answered; sent once all are",
                answers.len(),
                planned.len()
            )));
        }
        // The same answers, the same key: and the same UIDs in what is sent.
        let ids: Vec<String> = answers.iter().map(|a| a.id.to_string()).collect();
        let key = format!("{}\n{task:?}\n{lang:?}\n{}", series.uid, ids.join(","));
        let dir = store.dir();
        let mut log = match SentLog::open(dir) {
            Ok(log) => log,
            Err(e) => {
                eprintln!("warning: {e}; sending again (the PACS keeps one copy of each instance)");
                SentLog::fresh(dir)
            }
        };
        if log.has(&key, &to.name()) {
            return Ok(Sent::Before);
        }
        let out = dir.join("sent");
        std::fs::create_dir_all(&out).with_context(|| format!("creating {}", out.display()))?;
        let stem = super::export::file_stem(&series.uid);
        let salt = dir.display().to_string();
        let version = env!("CARGO_PKG_VERSION");
        let sr = out.join(format!("{stem}_model_sr.dcm"));
        let placed = model_answers::write_sr(
            &sr,
            plan,
            &answers,
            &self.algorithm,
            &Derived::model_findings_sr(&self.algorithm, &key),
            Deidentify::No,
            &salt,
            version,
        )?;
        let mut files = vec![sr];
        let mut what = format!("SR ({placed} finding(s))");
        if answers.iter().any(|a| !a.masks.is_empty()) {
            let labels = model_answers::mask_labels(&answers, layout);
            if labels.labels.iter().any(|&l| l > 0) {
                let seg = out.join(format!("{stem}_model_seg.dcm"));
                let frames = dicom_seg::write(
                    &seg,
                    plan,
                    &labels,
                    &LabelMap::radgrounder(),
                    &Derived::model_masks_seg(&self.algorithm, &key),
                    Deidentify::No,
                    &salt,
                    version,
                )?;
                files.push(seg);
                what.push_str(&format!(" and SEG ({frames} frame(s))"));
            }
        }
        groundglass_pacs::store(to, &files).map_err(|e| super::pacs::credentials_hint(e.into()))?;
        log.record(Delivery {
            key,
            server: to.name(),
            files: files
                .iter()
                .filter_map(|f| f.file_name().map(|n| n.to_string_lossy().into_owned()))
                .collect(),
            at_unix_ms: groundglass_feedback::now_unix_ms(),
        })?;
        Ok(Sent::Now(what))
    }
}

/// Whether `a` answers the batch's question about the slice `at` (its size aside).
fn answers(a: &AskRecord, at: &SliceRef, task: Task, lang: Lang) -> bool {
    a.slice.series_uid == at.series_uid
        && a.slice.volume == at.volume
        && a.slice.plane == at.plane
        && a.slice.index == at.index
        && a.task == task
        && a.lang == lang
}

/// Where a night's work stands, for the lines of the log: "[series 4/20, 3 done in 2 min,
/// about 11 min left]".
struct Progress {
    what: &'static str,
    total: usize,
    started: std::time::Instant,
}

impl Progress {
    fn start(what: &'static str, total: usize) -> Progress {
        Progress {
            what,
            total,
            started: std::time::Instant::now(),
        }
    }

    /// The label of item `n` (from 0), as it starts.
    fn label(&self, n: usize) -> String {
        let head = format!("[{} {}/{}", self.what, n + 1, self.total);
        if n == 0 {
            return format!("{head}]");
        }
        let spent = self.started.elapsed().as_secs_f64();
        let left = spent / n as f64 * (self.total - n) as f64;
        format!(
            "{head}, {n} done in {}, about {} left]",
            minutes(spent),
            minutes(left)
        )
    }
}

/// A duration as people say it: "40 s", "3 min", "2 h 05 min".
fn minutes(seconds: f64) -> String {
    let s = seconds.round() as u64;
    match s {
        0..=59 => format!("{s} s"),
        60..=3599 => format!("{} min", (s + 30) / 60),
        _ => format!("{} h {:02} min", s / 3600, s % 3600 / 60),
    }
}

/// What [`Batch::send_series`] did.
enum Sent {
    Now(String),
    Before,
    Not(String),
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn durations_read_as_people_say_them() {
        assert_eq!(minutes(0.4), "0 s");
        assert_eq!(minutes(59.0), "59 s");
        assert_eq!(minutes(89.0), "1 min");
        assert_eq!(minutes(91.0), "2 min");
        assert_eq!(minutes(3600.0 + 5.0 * 60.0), "1 h 05 min");
    }

    #[test]
    fn the_first_label_has_no_estimate_and_the_others_do() {
        let p = Progress::start("series", 20);
        assert_eq!(p.label(0), "[series 1/20]");
        let later = p.label(4);
        assert!(
            later.starts_with("[series 5/20, 4 done in ") && later.contains(" left]"),
            "{later}"
        );
    }
}
