//! `groundglass bench serve --remote URL STUDY [--clients 1,2,4,8,16] [--requests N]
//! [--max-tokens T]`: a load test of a model server (`groundglass serve`): for each count of
//! concurrent clients, every client asks the same slice in turn; aggregate tokens/s and latency
//! percentiles as JSON lines. Bounded by count (requests per client), and each request by the
//! client's own timeouts.

use std::path::PathBuf;
use std::process::ExitCode;
use std::time::Instant;

use anyhow::Context;
use clap::Args;
use groundglass_model::prompt::{Lang, Request, Task};
use groundglass_model::AskInput;
use serde::Serialize;

#[derive(Args, Debug)]
pub struct BenchServeArgs {
    pub study: PathBuf,
    #[arg(long)]
    pub remote: String,
    #[arg(long, default_value = "1,2,4,8,16")]
    pub clients: String,
    /// Requests per client at each count.
    #[arg(long, default_value_t = 4)]
    pub requests: usize,
    #[arg(long, default_value_t = 32)]
    pub max_tokens: usize,
}

/// One answered request: its tokens, the server's time to the first token, its time queued.
type Answered = (usize, f64, f64);

#[derive(Serialize)]
struct Row {
    clients: usize,
    requests: usize,
    failed: usize,
    seconds: f64,
    tokens: usize,
    tokens_per_s: f64,
    p50_ms: f64,
    p99_ms: f64,
    /// Means over the answered requests of what the server measured: its time to the first
    /// token (the prompt's prefill) and the wait before the model took the request.
    mean_ttft_ms: f64,
    mean_queue_ms: f64,
}

pub fn run(args: BenchServeArgs) -> anyhow::Result<ExitCode> {
    let selection = super::selection::SliceSelection {
        series: 0,
        plane: "acquired".into(),
        index: None,
        volume: 0,
    };
    let selected = selection.select(&args.study)?;
    let request = Request {
        task: Task::Report,
        lang: Lang::En,
        clinical: None,
        question: None,
        options: vec![],
    };
    let token = super::token::for_client(None)?;
    // One client as every thread will be one (the CA read once, its error said before any load).
    let client = groundglass_serve::Remote::new(&args.remote, token).trusting_environment_ca()?;
    let counts: Vec<usize> = args
        .clients
        .split(',')
        .map(|c| {
            c.trim()
                .parse::<usize>()
                .with_context(|| format!("--clients {c:?}"))
        })
        .collect::<anyhow::Result<_>>()?;
    for clients in counts {
        let started = Instant::now();
        let results: Vec<(f64, Option<Answered>)> = std::thread::scope(|scope| {
            let handles: Vec<_> = (0..clients.max(1))
                .map(|_| {
                    let (slice, modality, request, mut remote) = (
                        &selected.slice,
                        &selected.series.modality,
                        &request,
                        client.clone(),
                    );
                    let (n, max_tokens) = (args.requests, args.max_tokens);
                    scope.spawn(move || {
                        // Every answer as long as asked: end-of-sequence held back.
                        remote.min_tokens = Some(max_tokens);
                        (0..n)
                            .map(|_| {
                                let input = AskInput {
                                    slice,
                                    modality,
                                    request,
                                    semsam: None,
                                    max_new_tokens: max_tokens,
                                    visual_prompt: None,
                                };
                                let t = Instant::now();
                                let tokens = remote
                                    .ask(&input)
                                    .ok()
                                    .map(|a| (a.answer.tokens, a.answer.ttft_ms, a.queue_ms));
                                (t.elapsed().as_secs_f64() * 1e3, tokens)
                            })
                            .collect::<Vec<_>>()
                    })
                })
                .collect();
            handles
                .into_iter()
                .flat_map(|h| h.join().unwrap_or_default())
                .collect()
        });
        let seconds = started.elapsed().as_secs_f64();
        let mut latencies: Vec<f64> = results
            .iter()
            .filter(|r| r.1.is_some())
            .map(|r| r.0)
            .collect();
        latencies.sort_by(f64::total_cmp);
        let pick = |q: f64| {
            latencies
                .get(((latencies.len() as f64 - 1.0) * q).round() as usize)
                .copied()
                .unwrap_or(f64::NAN)
        };
        let answered: Vec<Answered> = results.iter().filter_map(|r| r.1).collect();
        let tokens: usize = answered.iter().map(|a| a.0).sum();
        let mean = |f: fn(&Answered) -> f64| {
            answered.iter().map(f).sum::<f64>() / answered.len().max(1) as f64
        };
        let row = Row {
            clients,
            requests: results.len(),
            failed: results.iter().filter(|r| r.1.is_none()).count(),
            seconds,
            tokens,
            tokens_per_s: tokens as f64 / seconds,
            p50_ms: pick(0.5),
            p99_ms: pick(0.99),
            mean_ttft_ms: mean(|a| a.1),
            mean_queue_ms: mean(|a| a.2),
        };
        println!("{}", serde_json::to_string(&row)?);
    }
    Ok(ExitCode::SUCCESS)
}
