//! `rel up [--detach | --dry-run]`, `rel up status`, `rel up logs`, `rel down`: the local stage.

use std::io::Write as _;

use crate::cli::{DownArgs, ListFormat, UpAction, UpArgs, UpLogsArgs, UpStartArgs, UpStatusArgs};
use crate::commands::{Context, print_stdout, progress};
use crate::stage::{self as ops, UpOptions};
use crate::{Error, Exit};

/// Talk (not data) goes to stderr, unless `--quiet`.
fn say(text: &str) {
    if progress::verbosity() == progress::Verbosity::Quiet {
        return;
    }
    let _ = std::io::stderr().write_all(text.as_bytes());
}

pub(super) fn up(ctx: &Context, args: UpArgs) -> Result<Exit, Error> {
    match args.action {
        Some(UpAction::Status(a)) => status(ctx, a),
        Some(UpAction::Logs(a)) => logs(ctx, a),
        None => start(ctx, args.start),
    }
}

fn runtime() -> Result<tokio::runtime::Runtime, Error> {
    tokio::runtime::Builder::new_multi_thread()
        .worker_threads(2)
        .enable_all()
        .build()
        .map_err(|e| Error::io("start the async runtime", "tokio", e))
}

fn start(ctx: &Context, args: UpStartArgs) -> Result<Exit, Error> {
    let config = ctx.project()?;
    config.environment(&args.env)?;
    let mut opts = UpOptions {
        env: args.env.clone(),
        images: args.images.clone(),
        ready_timeout: args.ready_timeout,
        key: args.key.source(),
        cancel: None,
    };
    if args.dry_run {
        let plan = ops::dry_run(&config, &opts)?;
        match args.format {
            ListFormat::Json => print_stdout(&format!(
                "{}\n",
                serde_json::to_string_pretty(&plan).unwrap_or_default()
            )),
            ListFormat::Table => print_stdout(&plan_table(&plan)),
        }
        return Ok(Exit::Ok);
    }
    if args.supervise {
        let secrets = ops::read_handoff(&mut std::io::stdin().lock())?;
        let rt = runtime()?;
        return rt.block_on(async {
            let mut stop = shutdown_flag()?;
            let mut hangups = stage::run::hangups()
                .map_err(|e| Error::io("install the SIGHUP handler", "signal", e))?;
            opts.cancel = Some(stop.clone());
            let stage = ops::up(&config, &opts, secrets.clone()).await?;
            // SIGHUP (`request_converge`, used by `rel deploy`): roll to the overlay as it is now.
            loop {
                tokio::select! {
                    _ = stop.wait_for(|s| *s) => break,
                    _ = hangups.recv() => {
                        // The outcome lands in the state file (`converges`, `message`), where
                        // `request_converge` reads it.
                        if let Err(e) = ops::converge(&config, &opts, &stage, secrets.clone()).await {
                            tracing::warn!("converge failed: {e}");
                        }
                    }
                }
            }
            stage.stop().await;
            Ok(Exit::Ok)
        });
    }
    let secrets = ops::cluster_secrets(&config, &opts)?;
    if args.detach {
        let spinner = progress::spinner(&format!(
            "starting stage `{}` in the background...",
            args.env
        ));
        let state = ops::detach(&config, &opts, secrets);
        spinner.finish_and_clear();
        let state = state?;
        emit_state(&state, args.format);
        say(&format!(
            "stage `{}` is ready in the background; `rel up status --env {0}`, `rel up logs --env {0}`, `rel down --env {0}`\n",
            args.env
        ));
        return Ok(Exit::Ok);
    }
    let rt = runtime()?;
    rt.block_on(async {
        progress::say(&format!("starting stage `{}`...", args.env));
        let mut stop = shutdown_flag()?;
        opts.cancel = Some(stop.clone());
        let stage = with_workload_progress(&ops::stage_dir(&config, &args.env), async {
            ops::up(&config, &opts, secrets).await
        })
        .await?;
        emit_state(&stage.state(), args.format);
        say("ready; Ctrl-C stops every pod\n");
        let _ = stop.wait_for(|s| *s).await;
        say("stopping...\n");
        stage.stop().await;
        say("stopped\n");
        Ok(Exit::Ok)
    })
}

/// Run `work` (a stage starting) while showing each workload's readiness from the stage's state
/// file, as it changes: a spinner per workload on a terminal, a line per change elsewhere.
async fn with_workload_progress<T>(
    dir: &std::path::Path,
    work: impl std::future::Future<Output = T>,
) -> T {
    let mut shown = progress::Progress::new();
    let mut tick = tokio::time::interval(std::time::Duration::from_millis(200));
    let show = |shown: &mut progress::Progress, last: bool| {
        // Only this start's state: a stale file of an earlier run says Stopped or Failed.
        let Ok(Some(state)) = stage::read(dir) else {
            return;
        };
        if !last && state.phase != stage::state::Phase::Starting {
            return;
        }
        for w in &state.workloads {
            let what = format!("{} {}: {}/{} ready", w.kind, w.name, w.ready, w.replicas);
            if last || (w.replicas > 0 && w.ready >= w.replicas) {
                shown.finish(&w.name, &what);
            } else {
                shown.update(&w.name, &what);
            }
        }
    };
    tokio::pin!(work);
    let out = loop {
        tokio::select! {
            out = &mut work => break out,
            _ = tick.tick() => show(&mut shown, false),
        }
    };
    show(&mut shown, true);
    out
}

fn shutdown_flag() -> Result<tokio::sync::watch::Receiver<bool>, Error> {
    stage::run::shutdown_flag()
        .map_err(|e| Error::io("install the SIGTERM and SIGINT handlers", "signal", e))
}

fn status(ctx: &Context, args: UpStatusArgs) -> Result<Exit, Error> {
    let config = ctx.project()?;
    match ops::status(&config, &args.env)? {
        Some(state) if args.pods => print_stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(&state.live_pod_list()).unwrap_or_default()
        )),
        Some(state) => emit_state(&state, args.format),
        None => {
            say(&format!(
                "no stage for `{}` (start one with `rel up --env {0}`)\n",
                args.env
            ));
            if args.format == ListFormat::Json {
                print_stdout("null\n");
            }
        }
    }
    Ok(Exit::Ok)
}

fn logs(ctx: &Context, args: UpLogsArgs) -> Result<Exit, Error> {
    let config = ctx.project()?;
    let logs = ops::logs(&config, &args.env, args.pod.as_deref(), args.tail)?;
    if logs.is_empty() {
        say("no logs\n");
    }
    for log in logs {
        print_stdout(&format!(
            "==> {} ({}) <==\n{}\n",
            log.pod, log.container, log.text
        ));
    }
    Ok(Exit::Ok)
}

pub(super) fn down(ctx: &Context, args: DownArgs) -> Result<Exit, Error> {
    let config = ctx.project()?;
    let report = ops::down(&config, &args.env, args.grace)?;
    if report.nothing {
        say(&format!("no stage for `{}`: nothing to stop\n", args.env));
    } else {
        match report.supervisor {
            Some(pid) => say(&format!(
                "stopped the supervisor (pid {pid}) and its pods\n"
            )),
            None => say("no supervisor was running\n"),
        }
        if !report.killed.is_empty() {
            say(&format!(
                "killed {} leftover process group(s): {:?}\n",
                report.killed.len(),
                report.killed
            ));
        }
    }
    Ok(Exit::Ok)
}

fn emit_state(state: &stage::StageState, format: ListFormat) {
    match format {
        ListFormat::Json => print_stdout(&format!(
            "{}\n",
            serde_json::to_string_pretty(state).unwrap_or_default()
        )),
        ListFormat::Table => print_stdout(&state_table(state)),
    }
}

fn table(rows: &[Vec<String>]) -> String {
    let mut widths = Vec::new();
    for row in rows {
        for (i, cell) in row.iter().enumerate() {
            if widths.len() <= i {
                widths.push(0);
            }
            widths[i] = widths[i].max(cell.chars().count());
        }
    }
    let mut out = String::new();
    for row in rows {
        let line: Vec<String> = row
            .iter()
            .enumerate()
            .map(|(i, c)| format!("{c:<w$}", w = widths[i]))
            .collect();
        out.push_str(line.join("  ").trim_end());
        out.push('\n');
    }
    out
}

fn short(digest: &str) -> String {
    digest.chars().take(19).collect()
}

fn state_table(state: &stage::StageState) -> String {
    let mut out = format!(
        "stage {} ({:?}) on {}\n",
        state.env, state.phase, state.block
    )
    .to_lowercase();
    if let Some(m) = &state.message {
        out.push_str(&format!("note: {m}\n"));
    }
    out.push('\n');
    let mut rows = vec![
        ["POD", "ADDRESS", "READY", "RESTARTS", "PID", "IMAGE"]
            .map(String::from)
            .to_vec(),
    ];
    for p in &state.pods {
        let phase = match p.phase {
            stage::state::PodPhase::Succeeded => "completed".to_owned(),
            stage::state::PodPhase::Failed => "failed".to_owned(),
            _ if p.ready() => "yes".to_owned(),
            _ => "no".to_owned(),
        };
        rows.push(vec![
            p.name.clone(),
            p.ip.to_string(),
            phase,
            p.restarts().to_string(),
            p.containers
                .iter()
                .map(|c| c.process.map_or("-".to_owned(), |x| x.pid.to_string()))
                .collect::<Vec<_>>()
                .join(","),
            p.containers
                .iter()
                .map(|c| short(&c.digest))
                .collect::<Vec<_>>()
                .join(","),
        ]);
    }
    out.push_str(&table(&rows));
    out.push('\n');
    let mut rows = vec![
        ["SERVICE", "ADDRESS", "PORT", "ENDPOINTS"]
            .map(String::from)
            .to_vec(),
    ];
    for s in &state.services {
        let endpoints = state
            .pods
            .iter()
            .filter(|p| {
                p.namespace == s.namespace
                    && p.ready()
                    && !s.selector.is_empty()
                    && s.selector.iter().all(|(k, v)| p.labels.get(k) == Some(v))
            })
            .count();
        for port in &s.ports {
            rows.push(vec![
                format!("{}.{}", s.name, s.namespace),
                port.address.clone(),
                format!("{} → {}", port.port, port.target),
                endpoints.to_string(),
            ]);
        }
    }
    out.push_str(&table(&rows));
    out
}

fn plan_table(plan: &stage::Plan) -> String {
    let mut out = format!("addresses: {}\n\n", plan.block);
    let mut rows = vec![
        ["ORDER", "WORKLOAD", "POD", "ADDRESS", "PROGRAM"]
            .map(String::from)
            .to_vec(),
    ];
    for w in &plan.workloads {
        let order = if w.hook {
            "hook".to_owned()
        } else {
            format!("wave {}", w.wave)
        };
        for p in &w.pods {
            rows.push(vec![
                order.clone(),
                w.id(),
                p.name.clone(),
                p.ip.to_string(),
                p.containers
                    .iter()
                    .map(|c| {
                        std::iter::once(c.program.display().to_string())
                            .chain(c.args.iter().cloned())
                            .collect::<Vec<_>>()
                            .join(" ")
                    })
                    .collect::<Vec<_>>()
                    .join("; "),
            ]);
        }
    }
    out.push_str(&table(&rows));
    out.push('\n');
    let mut rows = vec![["SERVICE", "ADDRESS", "PORT"].map(String::from).to_vec()];
    for s in &plan.services {
        for p in &s.ports {
            rows.push(vec![
                format!("{}.{}", s.name, s.namespace),
                format!("{}:{}", s.ip, p.proxy_port),
                p.port.to_string(),
            ]);
        }
    }
    out.push_str(&table(&rows));
    out.push_str("\nrewrites:\n");
    for r in &plan.rewrites {
        out.push_str(&format!("  {} {}: {} → {}\n", r.pod, r.field, r.from, r.to));
    }
    for s in &plan.skipped {
        out.push_str(&format!("skipped: {s}\n"));
    }
    out
}
