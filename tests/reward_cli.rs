//! End-to-end tests of `temper reward`: the shipped example config and samples, bad lines kept
//! with their error, batching, and a bad config failing with the key named.

mod common;

use std::path::Path;

use common::{stderr, temper, temper_within};
use serde_json::Value;

fn read_jsonl(path: &Path) -> Vec<Value> {
    std::fs::read_to_string(path)
        .unwrap()
        .lines()
        .map(|l| serde_json::from_str(l).unwrap())
        .collect()
}

fn example(name: &str) -> String {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("examples")
        .join(name)
        .to_str()
        .unwrap()
        .to_string()
}

#[test]
fn scores_the_readme_example_and_keeps_bad_lines() {
    let dir = tempfile::tempdir().unwrap();
    let out = dir.path().join("scored.jsonl");
    for batch_size in ["64", "2"] {
        let run = temper(&[
            "reward",
            "--config",
            &example("rewards.toml"),
            "--input",
            &example("samples.jsonl"),
            "--out",
            out.to_str().unwrap(),
            "--batch-size",
            batch_size,
        ]);
        assert!(run.status.success(), "{}", stderr(&run));
        let summary = stderr(&run);
        assert!(
            summary.contains("lines 5, scored 4, not applicable 0, quarantined 1 (1 unreadable lines), mean reward"),
            "{summary}"
        );
        let lines = read_jsonl(&out);
        assert_eq!(lines.len(), 5);
        let by_id = |id: &str| lines.iter().find(|l| l["id"] == id).unwrap();
        // Correct and well formed: 1 + 0.1·1 + 0.5·0.
        let math1 = by_id("math-1");
        assert_eq!(math1["reward"], 1.1);
        assert_eq!(math1["components"]["exact_match"], 1.0);
        // Only markup and digits: no letters to judge, code_switching does not apply.
        assert_eq!(math1["components"]["code_switching"], Value::Null);
        assert_eq!(math1["error"], Value::Null);
        assert_eq!(math1["answer"], "5", "input fields are kept");
        // Wrong answer, well formed.
        assert_eq!(by_id("math-2")["reward"], 0.1);
        // Korean with an English sentence: penalised by its share.
        let ko = by_id("ko-1");
        let share = ko["components"]["code_switching/mixed_share"]
            .as_f64()
            .unwrap();
        assert!(share > 0.5 && share < 1.0, "{share}");
        let expected = 1.0 + 0.1 - 0.5 * share;
        assert!((ko["reward"].as_f64().unwrap() - expected).abs() < 1e-9);
        // No reference: exact_match does not apply (null), the others do.
        let open = by_id("open-1");
        assert_eq!(open["components"]["exact_match"], Value::Null);
        assert_eq!(open["reward"], 0.0);
        // The line without an id is written with its error.
        let broken = lines.iter().find(|l| l["name"] == "broken").unwrap();
        assert_eq!(broken["reward"], Value::Null);
        assert_eq!(broken["error"], "missing `id`");
        assert_eq!(broken["response"], "no id on this line");
    }
}

#[test]
fn invalid_json_lines_are_counted_and_the_run_goes_on() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(
        &input,
        "{\"id\": 1, \"response\": \"3\", \"answer\": \"3\"}\n{oops\n\n{\"id\": 2, \"response\": \"4\", \"answer\": \"3\"}\n",
    )
    .unwrap();
    let config = dir.path().join("r.toml");
    std::fs::write(&config, "[[rewards]]\nkind = \"exact_match\"\n").unwrap();
    let out = dir.path().join("out.jsonl");
    let run = temper(&[
        "reward",
        "--config",
        config.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ]);
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(stderr(&run).contains("lines 3, scored 2, not applicable 0, quarantined 1 (1 unreadable lines), mean reward 0.5000"));
    let lines = read_jsonl(&out);
    assert_eq!(lines[0]["reward"], 1.0);
    assert_eq!(lines[1]["line"], 2);
    assert_eq!(lines[1]["raw"], "{oops");
    assert!(
        lines[1]["error"]
            .as_str()
            .unwrap()
            .starts_with("invalid JSON")
    );
    assert_eq!(lines[2]["reward"], 0.0);
}

#[test]
fn a_bad_config_fails_naming_the_key() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, "{\"id\": 1, \"response\": \"3\"}\n").unwrap();
    let out = dir.path().join("out.jsonl");
    for (toml, needle) in [
        (
            "[[rewards]]\nkind = \"exact_match\"\nnormalise = true\n",
            "unknown field `normalise`",
        ),
        (
            "[[rewards]]\nkind = \"code_switching\"\nlanguage = \"klingon\"\n",
            "rewards[0].language",
        ),
        (
            "[[reward]]\nkind = \"exact_match\"\n",
            "unknown field `reward`",
        ),
    ] {
        let config = dir.path().join("r.toml");
        std::fs::write(&config, toml).unwrap();
        let run = temper(&[
            "reward",
            "--config",
            config.to_str().unwrap(),
            "--input",
            input.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ]);
        let err = stderr(&run);
        assert!(!run.status.success() && !err.contains("panicked"), "{err}");
        assert!(
            err.contains(needle) && err.contains("r.toml"),
            "{needle}: {err}"
        );
    }
}

/// `temper reward` with an exact-match config over `input`, writing `out`.
fn score(input: &Path, out: &Path, config: &Path) -> std::process::Output {
    temper(&[
        "reward",
        "--config",
        config.to_str().unwrap(),
        "--input",
        input.to_str().unwrap(),
        "--out",
        out.to_str().unwrap(),
    ])
}

fn exact_match_config(dir: &Path) -> std::path::PathBuf {
    let config = dir.join("r.toml");
    std::fs::write(&config, "[[rewards]]\nkind = \"exact_match\"\n").unwrap();
    config
}

const TWO_SAMPLES: &str = "{\"id\": 1, \"response\": \"3\", \"answer\": \"3\"}\n{\"id\": 2, \"response\": \"4\", \"answer\": \"3\"}\n";

/// Issue 11, defect 2: `--out` naming the input emptied it (the output was truncated before
/// the input was read). The same file — by path, through a symlink or a hard link — is refused
/// and the samples are untouched.
#[test]
fn out_equal_to_input_is_refused_and_the_input_kept() {
    let dir = tempfile::tempdir().unwrap();
    let config = exact_match_config(dir.path());
    let input = dir.path().join("s.jsonl");
    std::fs::write(&input, TWO_SAMPLES).unwrap();
    let link = dir.path().join("link.jsonl");
    std::os::unix::fs::symlink(&input, &link).unwrap();
    let hard = dir.path().join("hard.jsonl");
    std::fs::hard_link(&input, &hard).unwrap();
    let dotted = dir.path().join(".").join("s.jsonl");
    for out in [&input, &link, &hard, &dotted] {
        let run = score(&input, out, &config);
        let err = stderr(&run);
        assert!(!run.status.success(), "{}: {err}", out.display());
        assert!(err.contains("same file as --input"), "{err}");
        assert_eq!(std::fs::read_to_string(&input).unwrap(), TWO_SAMPLES);
    }
}

/// Issue 11, defect 2 (second half): the output goes through a temporary file, so a run that
/// fails (here: no samples) leaves an existing `--out` as it was and no temporary behind.
#[test]
fn a_failed_run_leaves_the_previous_output_intact() {
    let dir = tempfile::tempdir().unwrap();
    let config = exact_match_config(dir.path());
    let input = dir.path().join("empty.jsonl");
    std::fs::write(&input, "\n\n").unwrap();
    let out = dir.path().join("scored.jsonl");
    std::fs::write(&out, "previous scores\n").unwrap();
    let run = score(&input, &out, &config);
    assert!(!run.status.success());
    assert!(stderr(&run).contains("has no samples"), "{}", stderr(&run));
    assert_eq!(std::fs::read_to_string(&out).unwrap(), "previous scores\n");
    let names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    assert_eq!(names.len(), 3, "a temporary file was left: {names:?}");
}

/// Issue 11, defect 3: a directory as `--input` spun at 100% CPU forever (`lines()` yielding
/// `EISDIR` errors). It is a clear error now; the test would hang before the fix.
#[test]
fn a_directory_as_input_is_a_clear_error() {
    let dir = tempfile::tempdir().unwrap();
    let config = exact_match_config(dir.path());
    let out = dir.path().join("out.jsonl");
    let run = temper_within(
        &[
            "reward",
            "--config",
            config.to_str().unwrap(),
            "--input",
            dir.path().to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ],
        &[],
        60,
    );
    let err = stderr(&run);
    assert!(!run.status.success(), "{err}");
    assert!(
        err.contains("is a directory") && !err.contains("panicked"),
        "{err}"
    );
    assert!(!out.exists());
}

/// Issue 11, defect 3 (second half): `--input /dev/stdin` was read twice (once to count the
/// lines), so the second pass found nothing and the run said "no samples". Read once.
#[test]
fn samples_from_stdin_are_read_once() {
    use std::io::Write;
    let dir = tempfile::tempdir().unwrap();
    let config = exact_match_config(dir.path());
    let out = dir.path().join("out.jsonl");
    let mut child = std::process::Command::new(env!("CARGO_BIN_EXE_temper"))
        .args(["reward", "--config", config.to_str().unwrap()])
        .args(["--input", "/dev/stdin", "--out"])
        .arg(&out)
        .stdin(std::process::Stdio::piped())
        .stderr(std::process::Stdio::piped())
        .spawn()
        .unwrap();
    child
        .stdin
        .take()
        .unwrap()
        .write_all(TWO_SAMPLES.as_bytes())
        .unwrap();
    let run = child.wait_with_output().unwrap();
    let err = stderr(&run);
    assert!(run.status.success(), "{err}");
    assert!(err.contains("lines 2, scored 2"), "{err}");
    let lines = read_jsonl(&out);
    assert_eq!(
        (lines[0]["reward"].clone(), lines[1]["reward"].clone()),
        (1.0.into(), 0.0.into())
    );
}

/// Issue 11, defect 8 (second half): one line of invalid UTF-8 aborted the whole run and lost
/// the batch. It is quarantined with its error, like a line of invalid JSON.
#[test]
fn an_invalid_utf8_line_is_quarantined_not_fatal() {
    let dir = tempfile::tempdir().unwrap();
    let config = exact_match_config(dir.path());
    let input = dir.path().join("in.jsonl");
    let mut bytes = b"{\"id\": 1, \"response\": \"3\", \"answer\": \"3\"}\n".to_vec();
    bytes.extend_from_slice(b"{\"id\": 2, \"response\": \"\xff\xfe\"}\r\n");
    bytes.extend_from_slice(b"{\"id\": 3, \"response\": \"4\", \"answer\": \"3\"}\r\n");
    std::fs::write(&input, bytes).unwrap();
    let out = dir.path().join("out.jsonl");
    let run = score(&input, &out, &config);
    let err = stderr(&run);
    assert!(run.status.success(), "{err}");
    assert!(
        err.contains("lines 3, scored 2, not applicable 0, quarantined 1 (1 unreadable lines)"),
        "{err}"
    );
    let lines = read_jsonl(&out);
    assert_eq!(lines[0]["reward"], 1.0);
    assert_eq!(lines[1]["line"], 2);
    assert!(
        lines[1]["error"]
            .as_str()
            .unwrap()
            .contains("not valid UTF-8"),
        "{}",
        lines[1]
    );
    assert_eq!(lines[2]["id"], 3);
    assert_eq!(lines[2]["reward"], 0.0);
}

/// A server on 127.0.0.1 that answers every HTTP request with `status` (and counts them).
fn http_server(status: u16) -> (String, std::sync::Arc<std::sync::atomic::AtomicUsize>) {
    use std::io::{BufRead, BufReader, Read, Write};
    let listener = std::net::TcpListener::bind("127.0.0.1:0").unwrap();
    let url = format!("http://{}", listener.local_addr().unwrap());
    let count = std::sync::Arc::new(std::sync::atomic::AtomicUsize::new(0));
    let seen = count.clone();
    std::thread::spawn(move || {
        for stream in listener.incoming() {
            let Ok(mut stream) = stream else { continue };
            let mut reader = BufReader::new(stream.try_clone().unwrap());
            let mut length = 0usize;
            loop {
                let mut line = String::new();
                if reader.read_line(&mut line).unwrap_or(0) == 0 || line == "\r\n" {
                    break;
                }
                if let Some(v) = line.to_ascii_lowercase().strip_prefix("content-length:") {
                    length = v.trim().parse().unwrap_or(0);
                }
            }
            let mut body = vec![0; length];
            let _ = reader.read_exact(&mut body);
            seen.fetch_add(1, std::sync::atomic::Ordering::SeqCst);
            let reply = "{\"error\": \"invalid api key\"}";
            let _ = write!(
                stream,
                "HTTP/1.1 {status} X\r\nContent-Type: application/json\r\nContent-Length: {}\r\nConnection: close\r\n\r\n{reply}",
                reply.len()
            );
        }
    });
    (url, count)
}

/// Issue 11, defect 8: offline scoring exited 0 when a plug-in was down or refused the token
/// (every sample quarantined), although `python/README.md` says the run fails. A remote reward
/// whose service is not there, and a judge whose server refuses the key, now fail the run —
/// after the output (every line, quarantined) and the summary are written.
#[test]
fn an_unreachable_or_refusing_service_fails_the_run() {
    let dir = tempfile::tempdir().unwrap();
    let input = dir.path().join("in.jsonl");
    std::fs::write(&input, TWO_SAMPLES).unwrap();
    // A port nothing listens on: bind, read the port, close.
    let closed = std::net::TcpListener::bind("127.0.0.1:0")
        .unwrap()
        .local_addr()
        .unwrap();
    let (judge_url, requests) = http_server(401);
    for (name, toml) in [
        (
            "remote",
            format!(
                "[[rewards]]\nkind = \"exact_match\"\n\n[[rewards]]\nkind = \"remote\"\nname = \"plugin\"\n\
                 url = \"http://{closed}\"\ntoken_env = \"TEMPER_TEST_REWARD_TOKEN\"\nretries = 0\n"
            ),
        ),
        (
            "judge",
            format!(
                "[[rewards]]\nkind = \"exact_match\"\n\n[[rewards]]\nkind = \"judge\"\n\
                 backend = {{ type = \"http\", url = \"{judge_url}\", model = \"m\", \
                 api_key_env = \"TEMPER_TEST_JUDGE_KEY\", retries = 0 }}\n"
            ),
        ),
    ] {
        let config = dir.path().join(format!("{name}.toml"));
        std::fs::write(&config, toml).unwrap();
        let out = dir.path().join(format!("{name}.jsonl"));
        let run = temper_within(
            &[
                "reward",
                "--config",
                config.to_str().unwrap(),
                "--input",
                input.to_str().unwrap(),
                "--out",
                out.to_str().unwrap(),
            ],
            &[
                ("TEMPER_TEST_REWARD_TOKEN", "secret"),
                ("TEMPER_TEST_JUDGE_KEY", "wrong-key"),
            ],
            120,
        );
        let err = stderr(&run);
        assert!(
            !run.status.success(),
            "{name}: exit 0 with a dead service: {err}"
        );
        assert!(!err.contains("panicked"), "{err}");
        assert!(
            err.contains("lines 2, scored 0"),
            "{name}: no summary: {err}"
        );
        let url = if name == "remote" {
            format!("http://{closed}")
        } else {
            judge_url.clone()
        };
        assert!(
            err.contains("answered none of its 2 samples") && err.contains(&url),
            "{name}: {err}"
        );
        let lines = read_jsonl(&out);
        assert_eq!(lines.len(), 2, "{name}: every line is written");
        assert!(lines.iter().all(|l| l["error"].is_string()), "{name}");
        // The exact-match reward still scored them.
        assert_eq!(lines[0]["components"]["exact_match"], 1.0);
    }
    assert!(requests.load(std::sync::atomic::Ordering::SeqCst) >= 2);
}
