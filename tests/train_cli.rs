//! End-to-end tests of `temper train` on the CPU: a short run of the embedded default writes
//! everything a user looks at; a bad config fails before any work with the key named; Ctrl-C
//! finishes the step, checkpoints, and the run resumes to the end.

use std::path::{Path, PathBuf};
use std::process::{Command, Output, Stdio};
use std::time::{Duration, Instant};

use serde_json::Value;

fn tiny_config() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("configs/tiny.toml")
}

/// Overrides that shrink the embedded default to a few seconds.
const SHORT: [&str; 10] = [
    "sft.steps=3",
    "sft.batch_size=8",
    "rl.steps=3",
    "rl.prompts_per_step=2",
    "rl.group_size=4",
    "rl.eval_every=2",
    "eval.examples=8",
    "eval.batch_size=8",
    "sft.optim.warmup_steps=1",
    "rl.optim.warmup_steps=1",
];

fn train_command(run_dir: &Path, extra: &[&str]) -> Command {
    train_command_with(&tiny_config(), run_dir, extra)
}

fn train_command_with(config: &Path, run_dir: &Path, extra: &[&str]) -> Command {
    let mut command = Command::new(env!("CARGO_BIN_EXE_temper"));
    command
        .arg("train")
        .arg("--config")
        .arg(config)
        .arg("--run-dir")
        .arg(run_dir)
        .arg("--no-progress");
    for s in SHORT.iter().chain(extra) {
        command.arg("--set").arg(s);
    }
    command
}

fn run(command: &mut Command) -> Output {
    command.output().expect("temper runs")
}

fn read_json(path: &Path) -> Value {
    serde_json::from_str(&std::fs::read_to_string(path).unwrap()).unwrap()
}

#[test]
fn short_run_writes_metrics_summary_plot_and_checkpoints() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let out = run(&mut train_command(&run_dir, &[]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");

    let summary = read_json(&run_dir.join("summary.json"));
    for key in [
        "eval_accuracy_initial",
        "eval_accuracy_after_sft",
        "eval_accuracy_final",
        "wall_seconds",
    ] {
        assert!(summary[key].is_number(), "summary lacks {key}: {summary}");
    }
    let metrics = std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap();
    let records: Vec<Value> = metrics
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let count = |stage: &str| records.iter().filter(|r| r["stage"] == stage).count();
    assert_eq!(count("sft"), 3);
    assert_eq!(count("rl"), 3);
    // initial, after SFT, one periodic (after RL step 2), final
    assert_eq!(count("eval"), 4);
    for r in &records {
        assert!(r["step"].is_u64(), "record without step: {r}");
    }
    // With dynamic sampling a step whose groups all scored alike makes no update (and has no
    // loss metrics); the others carry the full set.
    for r in records.iter().filter(|r| r["stage"] == "rl") {
        if r["updates"] == 0 {
            assert_eq!(r["dynamic_sampling/kept_groups"], 0, "{r}");
        }
    }
    let rl = records
        .iter()
        .find(|r| r["stage"] == "rl" && r["updates"].as_u64() > Some(0))
        .expect("at least one RL step updates the policy");
    for key in [
        "loss",
        "reward_mean",
        "reward_std",
        "advantage_mean",
        "clip_fraction",
        "ratio_mean",
        "seq_ratio_mean",
        "entropy",
        "approx_kl",
        "grad_norm",
        "lr",
        "response_length_mean",
        "tokens_per_second",
        "logprob_mismatch_mean",
    ] {
        assert!(rl[key].is_number(), "rl record lacks {key}: {rl}");
    }
    // Sampling and the learner see the same weights: log-probs agree.
    assert!(rl["logprob_mismatch_max"].as_f64().unwrap() < 1e-3, "{rl}");
    let svg = std::fs::read_to_string(run_dir.join("progress.svg")).unwrap();
    assert!(svg.starts_with("<svg") && svg.contains("held-out accuracy"));
    let latest = std::fs::read_to_string(run_dir.join("checkpoints/latest")).unwrap();
    let checkpoint = run_dir.join("checkpoints").join(latest.trim());
    for file in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "optimizer.safetensors",
        "trainer_state.json",
    ] {
        assert!(checkpoint.join(file).is_file(), "checkpoint lacks {file}");
    }

    // The final checkpoint is a model `temper generate` loads.
    let out = Command::new(env!("CARGO_BIN_EXE_temper"))
        .args(["generate", "--model"])
        .arg(&checkpoint)
        .args([
            "--prompt",
            "How many red squares are there?",
            "--max-new-tokens",
            "3",
        ])
        .output()
        .unwrap();
    assert!(
        out.status.success(),
        "{}",
        String::from_utf8_lossy(&out.stderr)
    );

    // A second run into the same directory without --resume is refused.
    let out = run(&mut train_command(&run_dir, &[]));
    assert!(!out.status.success());
    assert!(String::from_utf8_lossy(&out.stderr).contains("--resume"));
}

#[test]
fn bad_config_fails_before_any_work_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    for (set, needle) in [
        ("rl.group_size=1", "rl.group_size"),
        ("rl.unknown_knob=3", "unknown_knob"),
        ("rl.steps=\"ten\"", "rl.steps"),
        // Absurd sizes: config errors, not an abort or a hang (defect 9).
        ("task.image_size=100000", "task.image_size"),
        ("rl.group_size=1e11", "rl.group_size"),
        ("rl.group_size=100000000000", "rl.group_size"),
        ("rl.prompts_per_step=1000000000", "rl.prompts_per_step"),
        ("rl.max_new_tokens=5000", "rl.max_new_tokens"),
        // No reference policy: refused up front, not at the first RL update (defect 15).
        ("rl.loss.kl_coef=0.1", "rl.loss.kl_coef"),
    ] {
        let out = run(&mut train_command(&run_dir, &[set]));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{set} accepted");
        assert!(stderr.contains(needle), "{set}: {stderr}");
        assert!(!stderr.contains("panicked"), "{stderr}");
        assert!(!run_dir.exists(), "work started despite a bad config");
    }
}

#[cfg(unix)]
#[test]
fn ctrl_c_checkpoints_and_the_run_resumes_to_the_end() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    // Long enough that the interrupt lands mid-run.
    let child = train_command(&run_dir, &["rl.steps=30"])
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let metrics = run_dir.join("metrics.jsonl");
    let started = Instant::now();
    // Wait until RL steps are being written, then interrupt.
    loop {
        let text = std::fs::read_to_string(&metrics).unwrap_or_default();
        if text.contains("\"stage\":\"rl\"") {
            break;
        }
        assert!(started.elapsed() < Duration::from_secs(300), "no RL step");
        std::thread::sleep(Duration::from_millis(100));
    }
    let status = Command::new("kill")
        .args(["-INT", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    assert!(stderr.contains("--resume"), "{stderr}");
    let latest = std::fs::read_to_string(run_dir.join("checkpoints/latest")).unwrap();
    assert!(latest.starts_with("rl-"), "{latest}");

    let out = run(train_command(&run_dir, &["rl.steps=30"]).arg("--resume"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let summary = read_json(&run_dir.join("summary.json"));
    assert_eq!(summary["rl_steps"], 30);
    let records: Vec<Value> = std::fs::read_to_string(&metrics)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let rl_steps: Vec<u64> = records
        .iter()
        .filter(|r| r["stage"] == "rl")
        .map(|r| r["step"].as_u64().unwrap())
        .collect();
    assert_eq!(
        rl_steps,
        (1..=30).collect::<Vec<u64>>(),
        "each step once, none lost"
    );
}

#[test]
fn metrics_endpoint_serves_the_live_run_to_the_token_holder() {
    use std::io::{BufRead, BufReader, Read, Write};
    use std::net::TcpStream;
    use std::process::Stdio;

    let dir = tempfile::tempdir().unwrap();
    // Without a token the endpoint is refused before any work starts.
    let run_dir = dir.path().join("no-token");
    let out = run(train_command(&run_dir, &[])
        .args(["--metrics-addr", "127.0.0.1:0"])
        .env_remove("TEMPER_METRICS_TOKEN"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(!out.status.success());
    assert!(stderr.contains("TEMPER_METRICS_TOKEN"), "{stderr}");
    assert!(!run_dir.exists(), "work started without a token");

    // A long enough run to scrape while it trains; killed once the RL gauges are seen.
    let run_dir = dir.path().join("run");
    let mut child = train_command(&run_dir, &["rl.steps=200"])
        .args(["--metrics-addr", "127.0.0.1:0"])
        .env("TEMPER_METRICS_TOKEN", "scrape-me")
        .stderr(Stdio::piped())
        .spawn()
        .unwrap();
    let mut lines = BufReader::new(child.stderr.take().unwrap()).lines();
    let addr = lines
        .by_ref()
        .map_while(Result::ok)
        .find_map(|line| {
            let rest = line.strip_prefix("metrics: http://")?;
            Some(rest.split('/').next()?.to_string())
        })
        .expect("the address is announced on stderr");
    // Keep draining stderr so the child never blocks on a full pipe.
    std::thread::spawn(move || lines.for_each(drop));
    let scrape = |token: &str| -> String {
        let mut stream = TcpStream::connect(&addr).unwrap();
        write!(
            stream,
            "GET /metrics HTTP/1.1\r\nHost: t\r\nAuthorization: Bearer {token}\r\nConnection: close\r\n\r\n"
        )
        .unwrap();
        let mut response = String::new();
        stream.read_to_string(&mut response).unwrap();
        response
    };
    assert!(scrape("wrong").starts_with("HTTP/1.1 401"));
    // Step records of a step that made no update (dynamic sampling kept no group) lack the
    // update's gauges, so wait until every expected gauge has been published.
    let gauges = [
        "temper_reward_mean{stage=\"rl\"}",
        "temper_grad_norm{stage=\"rl\"}",
        "temper_loss{stage=\"sft\"}",
        "temper_accuracy{stage=\"eval\"}",
    ];
    let deadline = std::time::Instant::now() + std::time::Duration::from_secs(120);
    let body = loop {
        let body = scrape("scrape-me");
        if gauges.iter().all(|g| body.contains(g)) {
            break body;
        }
        assert!(
            child.try_wait().unwrap().is_none(),
            "the run ended before every gauge was served: {body}"
        );
        assert!(
            std::time::Instant::now() < deadline,
            "gauges missing: {body}"
        );
        std::thread::sleep(std::time::Duration::from_millis(200));
    };
    child.kill().unwrap();
    child.wait().unwrap();
    assert!(body.starts_with("HTTP/1.1 200"), "{body}");
}

/// Runs `command` until RL step records appear in `run_dir`'s metrics, returning the child.
#[cfg(unix)]
// The caller owns the returned child and waits on it.
#[allow(clippy::zombie_processes)]
fn spawn_until_rl(command: &mut Command, run_dir: &Path) -> std::process::Child {
    let mut child = command
        .stderr(Stdio::piped())
        .stdout(Stdio::null())
        .spawn()
        .unwrap();
    let metrics = run_dir.join("metrics.jsonl");
    let started = Instant::now();
    loop {
        let text = std::fs::read_to_string(&metrics).unwrap_or_default();
        if text.contains("\"stage\":\"rl\"") {
            return child;
        }
        if started.elapsed() > Duration::from_secs(300) {
            child.kill().unwrap();
            child.wait().unwrap();
            panic!("no RL step");
        }
        std::thread::sleep(Duration::from_millis(100));
    }
}

/// Defect 11: SIGTERM (what Slurm and Kubernetes send) exited at once without a checkpoint.
/// Defect 7: the printed resume hint dropped the `--set` flags; now it is `--run-dir D
/// --resume` and pasting it continues the same run.
#[cfg(unix)]
#[test]
fn sigterm_checkpoints_like_ctrl_c_and_the_printed_hint_resumes_the_same_run() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let child = spawn_until_rl(&mut train_command(&run_dir, &["rl.steps=30"]), &run_dir);
    let status = Command::new("kill")
        .args(["-TERM", &child.id().to_string()])
        .status()
        .unwrap();
    assert!(status.success());
    let out = child.wait_with_output().unwrap();
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert_eq!(out.status.code(), Some(130), "{stderr}");
    let latest = std::fs::read_to_string(run_dir.join("checkpoints/latest")).unwrap();
    assert!(latest.starts_with("rl-"), "{latest}");

    let hint = stderr
        .lines()
        .find_map(|l| {
            l.split_once("resume with: temper train ")
                .map(|(_, rest)| rest)
        })
        .unwrap_or_else(|| panic!("no resume hint: {stderr}"));
    let hint = hint.split(" (checkpoint").next().unwrap();
    assert!(
        !hint.contains("--set") && !hint.contains("--config"),
        "{hint}"
    );
    let out = run(Command::new(env!("CARGO_BIN_EXE_temper"))
        .arg("train")
        .args(hint.split_whitespace())
        .arg("--no-progress"));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    let summary = read_json(&run_dir.join("summary.json"));
    assert_eq!(summary["rl_steps"], 30, "the resumed run kept its 30 steps");
    let records: Vec<Value> = std::fs::read_to_string(run_dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    let rl_steps: Vec<u64> = records
        .iter()
        .filter(|r| r["stage"] == "rl")
        .map(|r| r["step"].as_u64().unwrap())
        .collect();
    assert_eq!(rl_steps, (1..=30).collect::<Vec<u64>>());
}

/// Defect 4: two trainings in one run dir corrupted each other; now the second is refused,
/// naming the pid of the first.
#[cfg(unix)]
#[test]
fn a_second_training_in_a_busy_run_dir_is_refused_naming_the_pid() {
    let dir = tempfile::tempdir().unwrap();
    let run_dir = dir.path().join("run");
    let mut first = spawn_until_rl(&mut train_command(&run_dir, &["rl.steps=200"]), &run_dir);
    let before = std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap();
    for extra in [&[][..], &["--resume"][..]] {
        let out = run(train_command(&run_dir, &["rl.steps=200"]).args(extra));
        let stderr = String::from_utf8_lossy(&out.stderr);
        assert!(!out.status.success(), "{stderr}");
        assert!(
            stderr.contains(&format!("pid {}", first.id())) && stderr.contains("in use"),
            "{stderr}"
        );
    }
    first.kill().unwrap();
    first.wait().unwrap();
    let after = std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap();
    assert!(
        after.starts_with(&before),
        "the refused runs touched the metrics"
    );
}

/// Defect 1: `temper train` panicked (`UnsupportedType(Some("unit"))`) with a `length` reward
/// (and `judge`, `remote`, `code_switching`) whose optional fields were unset.
#[test]
fn a_length_reward_with_unset_options_trains() {
    let dir = tempfile::tempdir().unwrap();
    let config = dir.path().join("t.toml");
    let text = std::fs::read_to_string(tiny_config()).unwrap();
    std::fs::write(
        &config,
        format!("{text}\n[[rewards]]\nkind = \"length\"\nweight = 0.1\n"),
    )
    .unwrap();
    let run_dir = dir.path().join("len");
    let out = run(&mut train_command_with(&config, &run_dir, &["rl.steps=1"]));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");
    assert!(!stderr.contains("panicked"), "{stderr}");
    let written = std::fs::read_to_string(run_dir.join("config.toml")).unwrap();
    assert!(written.contains("\"length\""), "{written}");
}

/// `temper train` on a user's JSONL dataset: `[data]` paths relative to the config file's folder,
/// a bad record skipped into `data_errors.jsonl` and counted in every step record, the run to the
/// end, and the run's own config.toml holding the paths absolute.
#[test]
fn a_jsonl_dataset_trains_through_the_cli_with_bad_records_logged() {
    let dir = tempfile::tempdir().unwrap();
    let data = dir.path().join("data");
    std::fs::create_dir(&data).unwrap();
    image::RgbImage::from_pixel(32, 32, image::Rgb([220, 40, 40]))
        .save(data.join("red.png"))
        .unwrap();
    let record = |id: &str, image: &str| {
        serde_json::json!({"id": id, "messages": [{"role": "user", "content": [
            {"type": "image", "image": image},
            {"type": "text", "text": "How many red squares are there? Answer with a digit."}]}],
            "answer": "1"})
        .to_string()
    };
    let good: Vec<String> = (0..4)
        .map(|i| record(&format!("q{i}"), "red.png"))
        .collect();
    let mut train = good.clone();
    train.insert(2, record("broken", "missing.png"));
    std::fs::write(data.join("train.jsonl"), train.join("\n") + "\n").unwrap();
    std::fs::write(data.join("eval.jsonl"), good.join("\n") + "\n").unwrap();

    // The shipped config with `[data]` in place of `[task]` (its header to the next blank line).
    let tiny = std::fs::read_to_string(tiny_config()).unwrap();
    let mut text = String::new();
    let mut in_task = false;
    for line in tiny.lines() {
        in_task = (in_task || line.starts_with("[task]")) && !line.trim().is_empty();
        if !in_task {
            text.push_str(line);
            text.push('\n');
        }
    }
    text.push_str(
        "\n[data]\ntrain = \"data/train.jsonl\"\neval = \"data/eval.jsonl\"\nmax_prompt_tokens = 200\n",
    );
    let config = dir.path().join("mine.toml");
    std::fs::write(&config, text).unwrap();

    let run_dir = dir.path().join("run");
    let out = run(&mut train_command_with(
        &config,
        &run_dir,
        &["eval.examples=4", "eval.batch_size=4"],
    ));
    let stderr = String::from_utf8_lossy(&out.stderr);
    assert!(out.status.success(), "{stderr}");

    let errors = std::fs::read_to_string(run_dir.join("data_errors.jsonl")).unwrap();
    let errors: Vec<Value> = errors
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect();
    assert_eq!(errors.len(), 1, "{errors:?}");
    assert_eq!(errors[0]["id"], "broken");
    assert_eq!(errors[0]["line"], 3);
    assert!(
        errors[0]["error"].as_str().unwrap().contains("missing.png"),
        "{errors:?}"
    );
    let metrics = std::fs::read_to_string(run_dir.join("metrics.jsonl")).unwrap();
    let steps: Vec<Value> = metrics
        .lines()
        .map(|l| serde_json::from_str::<Value>(l).unwrap())
        .filter(|r| r["stage"] == "sft" || r["stage"] == "rl")
        .collect();
    assert!(
        !steps.is_empty() && steps.iter().all(|r| r["data/skipped"] == 1),
        "{metrics}"
    );
    let summary = read_json(&run_dir.join("summary.json"));
    assert!(summary["eval_accuracy_final"].is_number(), "{summary}");
    let written = std::fs::read_to_string(run_dir.join("config.toml")).unwrap();
    let absolute = data.join("train.jsonl");
    assert!(
        written.contains(&absolute.display().to_string()),
        "{written}"
    );
}
