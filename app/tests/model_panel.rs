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

fn ready() -> Harness<'static, ViewerApp> {
    let mut h = Harness::builder()
        .with_size(egui::vec2(1100.0, 700.0))
        .wgpu()
        .build_eframe(|cc| {
            ViewerApp::new(
                cc,
                Options {
                    path: Some(ct_path()),
                    model: Some(scripted()),
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

const ANSWER: &str = "the <p bbox= <loc0100> <loc0140> <loc0300> <loc0380> id= <seg005> > liver </p> is enlarged, <seg> spleen </seg> normal.";

#[test]
fn a_grounded_answer_comes_back_and_its_box_and_mask_are_drawn() {
    let mut h = ready();
    let summary = h.state().model_panel.summary.clone().expect("summary");
    assert!(summary.mask_head);
    assert_eq!(summary.device, "CPU");
    h.set_render_every_step(true);
    h.get_by_label("Grounded report (masks)").click();
    h.run_steps(1);
    assert!(h.state().model_panel.running.is_some(), "the click asked");
    until(&mut h, "the answer", |a| a.model_panel.running.is_none());
    let app = h.state();
    assert_eq!(app.history.records.len(), 1);
    let record = &app.history.records[0];
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
        labels.counts()[2],
        record.masks[0].inside,
        "spleen = finding 1 = label 2"
    );
    assert!(app.mask_opacity() > 0.0);
    let stats = app.upload_stats().expect("render context");
    assert!(stats.label_writes > 0 && stats.label_bytes > 0);
    // Keywords are in the panel, coloured and clickable; clicking one selects and zooms to it.
    let zoom_before = h.state().views[0].zoom;
    h.get_all_by_label("liver").next().expect("keyword").click();
    h.run_steps(2);
    assert_eq!(h.state().selected_finding, Some(0));
    assert_ne!(h.state().views[0].zoom, zoom_before);
    // Verdicts: the buttons, then the keys on the selected finding.
    h.get_all_by_label("Accept (a)")
        .next()
        .expect("accept")
        .click();
    h.run_steps(1);
    let id = h.state().history.records[0].id;
    assert_eq!(h.state().history.verdict(id, 0), Some(Verdict::Accepted));
    h.key_press(Key::X);
    h.run_steps(1);
    assert_eq!(h.state().history.verdict(id, 0), Some(Verdict::Rejected));
    h.key_press(Key::X);
    h.run_steps(1);
    assert_eq!(h.state().history.verdict(id, 0), None, "x again clears it");
}

#[test]
fn cancel_stops_the_answer_at_once() {
    let mut h = ready();
    h.state_mut().ask(Task::Grounded);
    h.state_mut().cancel_ask();
    until(&mut h, "the cancelled answer", |a| {
        a.model_panel.running.is_none()
    });
    let record = &h.state().history.records[0];
    assert!(record.cancelled);
    assert!(record.tokens <= 1, "{} tokens after cancel", record.tokens);
}

#[test]
fn answers_belong_to_their_slice() {
    let mut h = ready();
    let first_index = h.state().views[0].index;
    h.state_mut().ask(Task::Grounded);
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
    worker.load(scripted());
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
        photometric: volume.photometric,
        request: Request {
            task: Task::Grounded,
            lang: Lang::En,
            clinical: None,
            question: None,
            options: vec![],
        },
        semsam: None,
    });
    let mut streamed: Vec<String> = Vec::new();
    loop {
        match worker
            .rx
            .recv_timeout(Duration::from_secs(120))
            .expect("a message")
        {
            ModelMessage::Loaded(_) => {}
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
