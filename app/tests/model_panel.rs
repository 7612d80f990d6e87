//! The model panel driven like a user would, on the real CT, with the tiny scripted checkpoint
//! (tests/fixtures/tiny-scripted: real weights through the real model path, set so greedy decoding
//! writes one known grounded answer with a box for "liver" and a mask for "spleen").

use std::path::PathBuf;
use std::time::{Duration, Instant};

use eframe::egui::{self, Key};
use egui_kittest::kittest::Queryable as _;
use egui_kittest::Harness;
use groundglass_app::viewer::inference::{AskJob, ModelMessage, ModelWorker};
use groundglass_app::viewer::{Options, ViewerApp};
use groundglass_feedback::Verdict;
use groundglass_model::prompt::{Lang, Request, Task};
use groundglass_study::Plane;

fn root() -> PathBuf {
    PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("..")
}

fn scripted() -> PathBuf {
    root().join("tests/fixtures/tiny-scripted")
}

fn ct_path() -> PathBuf {
    root().join("../shared/testdata/dicom/series/ct_head_invesalius")
}

fn until(h: &mut Harness<'static, ViewerApp>, what: &str, done: impl Fn(&ViewerApp) -> bool) {
    let deadline = Instant::now() + Duration::from_secs(120);
    while !done(h.state()) {
        h.step();
        assert!(Instant::now() < deadline, "timed out waiting for {what}");
        std::thread::sleep(Duration::from_millis(5));
    }
    h.run_steps(2);
}

fn fresh_stores(name: &str) -> PathBuf {
    let d = std::path::PathBuf::from(env!("CARGO_TARGET_TMPDIR"))
        .join(format!("gg-panel-{name}-{}", std::process::id()));
    let _ = std::fs::remove_dir_all(&d);
    d
}

fn ready_with(stores: PathBuf) -> Harness<'static, ViewerApp> {
    ready_with_model(stores, scripted())
}

fn ready_with_model(stores: PathBuf, model: PathBuf) -> Harness<'static, ViewerApp> {
    let mut h = Harness::builder()
        .with_size(egui::vec2(1100.0, 700.0))
        .with_step_dt(1.0 / 60.0)
        .wgpu()
        .build_eframe(move |cc| {
            ViewerApp::new(
                cc,
                Options {
                    path: Some(ct_path()),
                    model: Some(model),
                    store_root: Some(stores),
                    ..Default::default()
                },
            )
        });
    until(&mut h, "the study", |a| a.loading_stopped());
    until(&mut h, "the model", |a| {
        a.model_ready() || a.model_panel.error.is_some()
    });
    assert!(h.state().model_ready(), "{:?}", h.state().model_panel.error);
    h
}

fn ready(name: &str) -> Harness<'static, ViewerApp> {
    ready_with(fresh_stores(name))
}

const ANSWER: &str = "the <p bbox= <loc0100> <loc0140> <loc0300> <loc0380> id= <seg005> > liver </p> is enlarged, <seg> spleen </seg> normal.";

#[test]
fn a_grounded_answer_comes_back_and_its_box_and_mask_are_drawn() {
    let mut h = ready("grounded");
    let summary = h.state().model_panel.summary.clone().expect("summary");
    assert!(summary.mask_head);
    assert_eq!(summary.device, "CPU");
    h.set_render_every_step(true);
    h.get_by_label("Grounded report (masks)").click();
    h.run_steps(1);
    assert!(h.state().model_panel.running.is_some(), "the click asked");
    until(&mut h, "the answer", |a| a.model_panel.running.is_none());
    let app = h.state();
    assert_eq!(app.corrections.answers.len(), 1);
    let record = &app.corrections.answers[0];
    assert_eq!(record.text, ANSWER);
    assert_eq!(record.task, Task::Segment);
    assert_eq!(record.slice.plane, Plane::Acquired);
    assert_eq!(record.slice.index, app.views[0].index);
    assert_eq!(record.findings.len(), 2);
    assert_eq!(record.findings[0].class_name.as_deref(), Some("liver"));
    // The box names bins 100..300 x 140..380 of 512 on a 256-pixel slice.
    assert_eq!(record.findings[0].box_px, Some([50.0, 70.0, 150.0, 190.0]));
    assert_eq!(record.findings[1].mask_index, Some(0));
    assert!(record.masks[0].inside > 0, "the spleen mask is empty");
    // Both are drawn: the box over the viewport, the mask as labels on the GPU.
    assert_eq!(app.shown, Some(record.id));
    assert_eq!(app.finding_overlays().len(), 2);
    let labels = app.labels.as_ref().expect("label volume");
    assert_eq!(
        labels.counts()[1],
        record.masks[0].inside,
        "spleen is class 1"
    );
    assert!(app.mask_opacity() > 0.0);
    let stats = app.upload_stats().expect("render context");
    assert!(stats.label_writes > 0 && stats.label_bytes > 0);
    // Keywords are in the panel, coloured and clickable; clicking one selects and zooms to it.
    let zoom_before = h.state().views[0].zoom;
    h.get_all_by_label("liver").next().expect("keyword").click();
    h.run_steps(2);
    let id = h.state().corrections.answers[0].id;
    assert_eq!(
        h.state().selected_annotation.as_deref(),
        Some(format!("r{id}.f0").as_str())
    );
    assert_ne!(h.state().views[0].zoom, zoom_before);
    // Let the grid settle its column widths after the selection changed the keyword's style.
    h.run_steps(4);
    // Verdicts: the buttons, then the keys on the selected finding.
    h.get_all_by_label("Accept (a)")
        .next()
        .expect("accept")
        .click();
    h.run_steps(1);
    assert_eq!(
        h.state().corrections.verdict(id, 0),
        Some(Verdict::Accepted)
    );
    h.key_press(Key::X);
    h.run_steps(1);
    assert_eq!(
        h.state().corrections.verdict(id, 0),
        Some(Verdict::Rejected)
    );
    h.key_press(Key::X);
    h.run_steps(1);
    assert_eq!(
        h.state().corrections.verdict(id, 0),
        None,
        "x again clears it"
    );
    // Every verdict is an entry in the store, with who gave it.
    let store = h.state().store.as_ref().expect("store");
    assert!(store.entries().len() >= 4);
    assert!(store.entries().iter().all(|e| !e.reviewer.is_empty()));
}

#[test]
fn cancel_stops_the_answer_at_once() {
    let mut h = ready("cancel");
    h.state_mut().ask(Task::Segment);
    h.state_mut().cancel_ask();
    until(&mut h, "the cancelled answer", |a| {
        a.model_panel.running.is_none()
    });
    let record = &h.state().corrections.answers[0];
    assert!(record.cancelled);
    assert!(record.tokens <= 1, "{} tokens after cancel", record.tokens);
}

#[test]
fn answers_belong_to_their_slice() {
    let mut h = ready("slices");
    let first_index = h.state().views[0].index;
    h.state_mut().ask(Task::Segment);
    until(&mut h, "answer 1", |a| a.model_panel.running.is_none());
    let first = h.state().shown.expect("shown");
    // Another slice: no answer there yet, the first one stays listed for its own slice.
    h.hover_at(egui::pos2(300.0, 350.0));
    h.key_press(Key::ArrowDown);
    h.run_steps(2);
    assert_eq!(h.state().views[0].index, first_index + 1);
    h.state_mut().model_panel.lang = Lang::De;
    h.state_mut().ask(Task::Report);
    until(&mut h, "answer 2", |a| a.model_panel.running.is_none());
    let second = h.state().shown.expect("shown");
    assert_ne!(first, second);
    // Back on the first slice, its answer is shown again.
    h.key_press(Key::ArrowUp);
    h.run_steps(2);
    assert_eq!(h.state().shown, Some(first));
    h.key_press(Key::ArrowDown);
    h.run_steps(2);
    assert_eq!(h.state().shown, Some(second));
}

#[test]
fn tokens_stream_from_the_model_thread_as_they_are_made() {
    let worker = ModelWorker::spawn(egui::Context::default());
    worker.load(scripted(), None);
    let (_, volume) = {
        let study = groundglass_study::open(&ct_path()).expect("opens");
        let series = study.series[0].clone();
        let volume = series
            .load(0, &groundglass_study::NoProgress)
            .expect("loads");
        (series, volume)
    };
    let slice = groundglass_study::extract(&volume, Plane::Axial, 50);
    worker.ask(AskJob {
        id: 7,
        slice,
        modality: "CT".into(),
        request: Request {
            task: Task::Segment,
            lang: Lang::En,
            clinical: None,
            question: None,
            options: vec![],
        },
        semsam: None,
        visual_prompt: None,
    });
    let mut streamed: Vec<String> = Vec::new();
    loop {
        match worker
            .rx
            .recv_timeout(Duration::from_secs(120))
            .expect("a message")
        {
            ModelMessage::Loaded(_)
            | ModelMessage::SemSamProgress(_)
            | ModelMessage::SemSamReady => {}
            ModelMessage::Connected { .. } | ModelMessage::AnsweredBy { .. } => {
                panic!("a local model answers here")
            }
            ModelMessage::SemSamFailed(error) => panic!("{error}"),
            ModelMessage::Token { id, text } => {
                assert_eq!(id, 7);
                streamed.push(text);
            }
            ModelMessage::Done { id, answer } => {
                assert_eq!(id, 7);
                assert_eq!(answer.text, ANSWER);
                // One message per token, each extending the last.
                assert_eq!(streamed.len(), answer.tokens);
                for pair in streamed.windows(2) {
                    assert!(pair[1].len() >= pair[0].len(), "{pair:?}");
                }
                assert_eq!(streamed.last().map(String::as_str), Some(ANSWER));
                break;
            }
            ModelMessage::LoadFailed { error, .. } | ModelMessage::Failed { error, .. } => {
                panic!("{error}")
            }
        }
    }
}

fn drag(h: &mut Harness<'static, ViewerApp>, from: egui::Pos2, to: egui::Pos2) {
    h.hover_at(from);
    h.run_steps(1);
    h.event(egui::Event::PointerButton {
        pos: from,
        button: egui::PointerButton::Primary,
        pressed: true,
        modifiers: egui::Modifiers::NONE,
    });
    h.run_steps(1);
    for i in 1..=8 {
        h.hover_at(from + (to - from) * (i as f32 / 8.0));
        h.run_steps(1);
    }
    h.event(egui::Event::PointerButton {
        pos: to,
        button: egui::PointerButton::Primary,
        pressed: false,
        modifiers: egui::Modifiers::NONE,
    });
    h.run_steps(2);
}

fn ctrl(h: &mut Harness<'static, ViewerApp>, key: Key) {
    h.event(egui::Event::Key {
        key,
        physical_key: None,
        pressed: true,
        repeat: false,
        modifiers: egui::Modifiers::CTRL,
    });
    h.run_steps(1);
}

#[test]
fn annotators_draw_move_paint_undo_and_find_it_all_again() {
    let stores = fresh_stores("edit");
    let mut h = ready_with(stores.clone());
    h.set_render_every_step(true);
    let window_before = h.state().views[0].window;
    // Draw a box with the box tool.
    h.hover_at(egui::pos2(300.0, 300.0));
    h.key_press(Key::B);
    h.run_steps(1);
    drag(&mut h, egui::pos2(300.0, 300.0), egui::pos2(400.0, 380.0));
    let app = h.state();
    assert_eq!(
        app.views[0].window, window_before,
        "the tool drag did not window"
    );
    let manual: Vec<_> = app
        .corrections
        .annotations
        .values()
        .filter(|a| a.origin == groundglass_feedback::Origin::Manual)
        .collect();
    assert_eq!(manual.len(), 1);
    let drawn = manual[0].box_px.expect("box");
    assert!(
        drawn[2] - drawn[0] > 10.0 && drawn[3] - drawn[1] > 10.0,
        "{drawn:?}"
    );
    let id = manual[0].id.clone();
    assert_eq!(app.selected_annotation.as_deref(), Some(id.as_str()));
    // Move it: drag from inside the selected box (the reading tool holds it).
    drag(&mut h, egui::pos2(350.0, 340.0), egui::pos2(380.0, 360.0));
    let moved = h.state().corrections.annotations[&id].box_px.expect("box");
    assert!(
        moved[0] > drawn[0] && moved[1] > drawn[1],
        "{drawn:?} -> {moved:?}"
    );
    assert!(
        ((moved[2] - moved[0]) - (drawn[2] - drawn[0])).abs() < 1e-6,
        "same size"
    );
    // Undo and redo.
    ctrl(&mut h, Key::Z);
    assert_eq!(h.state().corrections.annotations[&id].box_px, Some(drawn));
    ctrl(&mut h, Key::Y);
    assert_eq!(h.state().corrections.annotations[&id].box_px, Some(moved));
    // Paint a mask stroke with the brush (class: liver, the default).
    h.hover_at(egui::pos2(200.0, 200.0));
    h.key_press(Key::P);
    h.run_steps(1);
    drag(&mut h, egui::pos2(200.0, 200.0), egui::pos2(260.0, 220.0));
    assert_eq!(h.state().corrections.strokes.len(), 1);
    let painted = h.state().labels.as_ref().expect("labels").counts()[5];
    assert!(painted > 20, "{painted} liver voxels");
    // Relabel through the class picker, then delete with the key.
    h.key_press(Key::Escape);
    h.run_steps(1);
    h.state_mut().focus_annotation(&id);
    h.run_steps(2);
    let filter = h.get_by_label("Class");
    filter.click();
    h.run_steps(1);
    h.get_by_label("Class").type_text("milz");
    h.run_steps(2);
    h.get_by_label_contains("001 spleen").click();
    h.run_steps(2);
    assert_eq!(h.state().corrections.annotations[&id].class_id, Some(1));
    assert_eq!(h.state().corrections.annotations[&id].keyword, "spleen");
    h.hover_at(egui::pos2(300.0, 300.0));
    h.run_steps(1);
    h.state_mut().selected_annotation = Some(id.clone());
    h.key_press(Key::Delete);
    h.run_steps(1);
    assert!(h.state().corrections.annotations[&id].deleted);
    let entries = h.state().store.as_ref().expect("store").entries().len();
    drop(h);

    // Reopening the study finds every correction in the store.
    let h = ready_with(stores);
    let c = &h.state().corrections;
    let store = h.state().store.as_ref();
    assert!(store.is_some(), "{:?}", h.state().notices);
    assert_eq!(store.map(|s| s.entries().len()), Some(entries));
    assert!(c.annotations[&id].deleted);
    assert_eq!(c.annotations[&id].class_id, Some(1));
    assert_eq!(c.strokes.len(), 1);
}

/// RadGrounder's checkpoints as its training scripts save them (pytorch_model.bin) load in the panel,
/// which offers only the grounding the checkpoint was trained for, and answer as the safetensors copy.
#[test]
fn a_pytorch_checkpoint_loads_in_the_panel_and_offers_only_its_tasks() {
    let fixtures = root().join("tests/fixtures");
    let mut texts = Vec::new();
    for name in ["tiny-paligemma2-bin", "tiny-paligemma2"] {
        let mut h = ready_with_model(fresh_stores(name), fixtures.join(name));
        let summary = h.state().model_panel.summary.clone().expect("summary");
        assert_eq!(summary.tasks, vec![Task::Report, Task::Segment, Task::Vqa]);
        h.run_steps(2);
        assert!(h.query_by_label("Grounded report (masks)").is_some());
        assert!(
            h.query_by_label("Grounded report (boxes)").is_none(),
            "a segmentation checkpoint is not offered boxes"
        );
        h.get_by_label("Grounded report (masks)").click();
        h.run_steps(1);
        until(&mut h, "the answer", |a| a.model_panel.running.is_none());
        texts.push(h.state().corrections.answers[0].text.clone());
        if name == "tiny-paligemma2-bin" {
            assert_eq!(
                summary.weights,
                groundglass_model::checkpoint::WeightFormat::Pytorch
            );
        }
    }
    assert!(!texts[0].is_empty());
    assert_eq!(texts[0], texts[1]);
}

/// Switching SemSam on builds its neighbour table on the model thread, reporting progress, and
/// caches it beside the model; the panel shows the bar while it builds.
#[test]
fn semsam_table_builds_in_the_background_with_progress() {
    let model = fresh_stores("semsam-model");
    std::fs::create_dir_all(&model).expect("dir");
    for f in ["config.json", "model.safetensors", "tokenizer.json"] {
        std::fs::copy(
            root().join("tests/fixtures/tiny-paligemma2").join(f),
            model.join(f),
        )
        .expect("copy");
    }
    let mut h = ready_with_model(fresh_stores("semsam"), model.clone());
    h.state_mut().model_panel.semsam = true;
    h.state_mut().prepare_semsam();
    assert!(
        h.state().model_panel.semsam_progress.is_some(),
        "the bar shows"
    );
    until(&mut h, "the table", |a| {
        a.model_panel.semsam_progress.is_none()
    });
    assert!(model.join("semsam_neighbours_k8.safetensors").exists());
    let worker = ModelWorker::spawn(egui::Context::default());
    worker.load(model.clone(), None);
    worker.prepare_semsam(3);
    let mut progress = Vec::new();
    loop {
        match worker
            .rx
            .recv_timeout(Duration::from_secs(120))
            .expect("a message")
        {
            ModelMessage::Loaded(_) => {}
            ModelMessage::SemSamProgress(f) => progress.push(f),
            ModelMessage::SemSamReady => break,
            ModelMessage::SemSamFailed(e) | ModelMessage::LoadFailed { error: e, .. } => {
                panic!("{e}")
            }
            _ => {}
        }
    }
    assert_eq!(progress.last().copied(), Some(1.0), "{progress:?}");
    assert!(model.join("semsam_neighbours_k3.safetensors").exists());
}

/// A radiologist marks a region and asks what it is: the mark goes into the model's input, the
/// answer keeps it, and the panel says plainly that the demo model knows phantoms only when the
/// study in view (a real head CT) is not one.
#[test]
fn a_marked_region_is_asked_about_and_kept_with_its_answer() {
    let demo = root().join("assets/models/demo");
    let mut h = ready_with_model(fresh_stores("region"), demo);
    h.set_render_every_step(true);
    assert!(
        h.query_by_label_contains("trained on Groundglass phantoms only")
            .is_some(),
        "no warning that the head CT is not what the demo model knows"
    );
    h.hover_at(egui::pos2(300.0, 300.0));
    h.key_press(Key::Q);
    h.run_steps(1);
    drag(&mut h, egui::pos2(280.0, 280.0), egui::pos2(380.0, 360.0));
    let mark = h.state().region_on_slice().cloned();
    assert!(
        matches!(
            mark,
            Some(groundglass_model::visual_prompt::VisualPrompt::Box { .. })
        ),
        "{mark:?}"
    );
    h.get_by_label("What is this?").click();
    h.run_steps(1);
    until(&mut h, "the answer", |a| a.model_panel.running.is_none());
    let record = h.state().corrections.answers.last().expect("an answer");
    assert_eq!(record.mark, mark);
    assert_eq!(
        record.question.as_deref(),
        Some("what is the marked structure ?")
    );
    // A click marks a point instead; Clear forgets it.
    h.hover_at(egui::pos2(320.0, 320.0));
    h.run_steps(1);
    h.event(egui::Event::PointerButton {
        pos: egui::pos2(320.0, 320.0),
        button: egui::PointerButton::Primary,
        pressed: true,
        modifiers: egui::Modifiers::NONE,
    });
    h.event(egui::Event::PointerButton {
        pos: egui::pos2(320.0, 320.0),
        button: egui::PointerButton::Primary,
        pressed: false,
        modifiers: egui::Modifiers::NONE,
    });
    h.run_steps(2);
    assert!(matches!(
        h.state().region_on_slice(),
        Some(groundglass_model::visual_prompt::VisualPrompt::Point { .. })
    ));
    h.get_by_label("Clear").click();
    h.run_steps(1);
    assert!(h.state().region_on_slice().is_none());
}

/// The panel asks a model server (`groundglass serve`, a real process on loopback in a private
/// network namespace) instead of its own model: the same answer, masks included, and the panel
/// says where it was made; a wrong token is refused with the server's message.
#[test]
fn the_panel_asks_a_model_server() {
    if groundglass_tests::netns::in_private_network("the_panel_asks_a_model_server") {
        panel_asks_a_model_server();
    }
}

fn panel_asks_a_model_server() {
    const URL: &str = "http://127.0.0.1:18093";
    let mut serve = std::process::Command::new(env!("CARGO_BIN_EXE_groundglass"));
    // No SemSam table: building one would write its cache into the fixture.
    serve.args(["serve", "--model"]).arg(scripted()).args([
        "--listen",
        "127.0.0.1:18093",
        "--token",
        "t0ken",
        "--semsam-k",
        "none",
    ]);
    let server = groundglass_tests::serving::Serving::start(serve);

    let mut h = ready("remote");
    // A wrong token first: the server's refusal, named.
    h.state_mut()
        .connect_model_server(URL.into(), Some("guess".into()));
    until(&mut h, "the refusal", |a| a.model_panel.error.is_some());
    let e = h.state().model_panel.error.clone().expect("error");
    assert!(e.contains("401") && e.contains(URL), "{e}");

    // Through the panel's own fields.
    h.get_by_label("Model server").click();
    h.run_steps(2);
    h.get_by_label("Server URL").click();
    h.run_steps(1);
    h.get_by_label("Server URL").type_text(URL);
    h.get_by_label("Server token").click();
    h.run_steps(1);
    h.get_by_label("Server token").type_text("t0ken");
    h.run_steps(1);
    h.get_by_label("Connect").click();
    h.run_steps(1);
    until(&mut h, "the connection", |a| {
        a.model_ready() || a.model_panel.error.is_some()
    });
    assert!(h.state().model_ready(), "{:?}", h.state().model_panel.error);
    assert_eq!(h.state().model_panel.remote.as_deref(), Some(URL));
    assert!(
        h.state()
            .model_panel
            .summary
            .as_ref()
            .expect("summary")
            .mask_head
    );

    h.get_by_label("Grounded report (masks)").click();
    h.run_steps(1);
    until(&mut h, "the answer", |a| a.model_panel.running.is_none());
    let app = h.state();
    let record = app.corrections.answers.last().expect("an answer");
    assert_eq!(record.text, ANSWER, "the server's answer is the local one");
    assert_eq!(record.findings.len(), 2);
    assert!(!record.masks.is_empty(), "masks came over the wire");
    assert!(record.model.starts_with(URL), "{}", record.model);
    let origin = app.model_panel.origin.clone().unwrap_or_default();
    assert!(
        origin.starts_with(&format!("answered by {URL} in ")),
        "{origin}"
    );

    // The same server taken as an OpenAI-compatible one (the panel's checkbox): known by its
    // served name from /v1/models; a name it does not serve is refused with the ones it does;
    // such a server offers no masks.
    let served = scripted()
        .file_name()
        .map(|n| n.to_string_lossy().into_owned())
        .expect("a name");
    h.get_by_label("OpenAI-compatible (vLLM)").click();
    h.run_steps(1);
    h.state_mut().model_panel.server_model = "not-served".into();
    h.get_by_label("Connect").click();
    h.run_steps(1);
    until(&mut h, "the refusal", |a| a.model_panel.error.is_some());
    let e = h.state().model_panel.error.clone().expect("error");
    assert!(e.contains("not-served") && e.contains(&served), "{e}");
    h.state_mut().model_panel.server_model = served.clone();
    h.get_by_label("Connect").click();
    h.run_steps(1);
    until(&mut h, "the OpenAI connection", |a| {
        a.model_ready() || a.model_panel.error.is_some()
    });
    assert!(h.state().model_ready(), "{:?}", h.state().model_panel.error);
    let summary = h.state().model_panel.summary.clone().expect("summary");
    assert!(
        summary.architecture.contains("over the OpenAI API"),
        "{summary:?}"
    );
    assert!(!summary.mask_head && !summary.tasks.contains(&Task::Segment));
    // Back to the Groundglass protocol for what follows.
    h.get_by_label("OpenAI-compatible (vLLM)").click();
    h.run_steps(1);
    h.get_by_label("Connect").click();
    h.run_steps(1);
    until(&mut h, "the connection again", |a| {
        a.model_ready() || a.model_panel.error.is_some()
    });
    assert!(
        h.state()
            .model_panel
            .summary
            .as_ref()
            .expect("summary")
            .mask_head
    );

    // The server killed mid-request: frozen (SIGSTOP) before the ask, so the request waits
    // unread, then killed (SIGKILL). The panel says the server went away, and
    // the viewer goes on: the slice still moves, and the next ask is taken.
    server.signal("STOP");
    h.state_mut().ask(Task::Segment);
    h.run_steps(1);
    until(&mut h, "the request under way", |a| {
        a.model_panel.running.is_some()
    });
    let deadline = Instant::now() + Duration::from_secs(30);
    while !groundglass_tests::netns::request_waiting(18093) {
        assert!(Instant::now() < deadline, "the panel did not connect");
        h.step();
        std::thread::sleep(Duration::from_millis(20));
    }
    server.signal("KILL");
    until(&mut h, "the error", |a| a.model_panel.running.is_none());
    let said = |a: &ViewerApp| -> String {
        a.notices
            .iter()
            .filter(|n| n.error)
            .map(|n| n.text.clone())
            .collect::<Vec<_>>()
            .join(" | ")
    };
    let e = said(h.state());
    assert!(
        e.contains(URL) && e.contains("closed the connection before it answered"),
        "{e}"
    );
    let index = h.state().views[0].index;
    h.hover_at(egui::pos2(300.0, 350.0));
    h.key_press(Key::ArrowDown);
    h.run_steps(2);
    assert_eq!(
        h.state().views[0].index,
        index + 1,
        "the viewer still reads"
    );
    h.state_mut().ask(Task::Segment);
    h.run_steps(1);
    until(&mut h, "the second error", |a| {
        a.model_panel.running.is_none() && said(a).contains("could not connect")
    });
    let e = said(h.state());
    assert!(e.contains("could not connect"), "nobody there now: {e}");
}
