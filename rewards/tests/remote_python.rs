//! End to end: the Python example plug-in (`python/examples/length_reward.py`) serves a reward
//! on 127.0.0.1, and a `RewardSet` built from TOML with `kind = "remote"` scores through it.
//!
//! Needs `python3` (≥ 3.9, with `venv` and `pip`; `$TEMPER_PYTHON` picks another interpreter)
//! and PyPI. Without them the test fails, saying what is missing: it never skips. The venv
//! lives in the target dir and its dependencies are installed once; the package itself is
//! reinstalled from a copy of `python/` each run, so the stubs always match `proto/`. The
//! package's own Python unit tests run in the same venv.

use std::io::{BufRead, BufReader};
use std::path::{Path, PathBuf};
use std::process::{Child, Command, Stdio};
use std::sync::mpsc;
use std::time::Duration;

use temper_rewards::{RewardSet, RewardSetConfig, Sample};

const TOKEN_ENV: &str = "TEMPER_E2E_REWARD_TOKEN";
const WRONG_TOKEN_ENV: &str = "TEMPER_E2E_WRONG_TOKEN";
const TOKEN: &str = "e2e-shared-token";

fn repo_root() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .parent()
        .unwrap()
        .to_path_buf()
}

/// Runs `cmd`, panicking with `what`, the command and its output when it fails.
fn run(cmd: &mut Command, what: &str) {
    let out = cmd
        .output()
        .unwrap_or_else(|e| panic!("{what}: cannot run {cmd:?}: {e}"));
    assert!(
        out.status.success(),
        "{what}: {cmd:?} failed ({}):\n{}\n{}",
        out.status,
        String::from_utf8_lossy(&out.stdout),
        String::from_utf8_lossy(&out.stderr)
    );
}

/// Copies `from` to `to`, leaving out build outputs.
fn copy_tree(from: &Path, to: &Path) {
    std::fs::create_dir_all(to).unwrap();
    for entry in std::fs::read_dir(from).unwrap() {
        let entry = entry.unwrap();
        let name = entry.file_name();
        let name_str = name.to_string_lossy();
        if name_str == "build" || name_str == "__pycache__" || name_str.ends_with(".egg-info") {
            continue;
        }
        if entry.file_type().unwrap().is_dir() {
            copy_tree(&entry.path(), &to.join(&name));
        } else {
            std::fs::copy(entry.path(), to.join(&name)).unwrap();
        }
    }
}

/// The venv's interpreter, with grpcio, grpcio-tools and a fresh install of `temper-plugins`.
fn venv_python() -> PathBuf {
    let python = std::env::var("TEMPER_PYTHON").unwrap_or_else(|_| "python3".into());
    let version = Command::new(&python).arg("--version").output();
    assert!(
        matches!(&version, Ok(out) if out.status.success()),
        "`{python} --version` failed ({version:?}): this test needs Python >= 3.9 with venv and \
         pip (install python3 and python3-venv, or set TEMPER_PYTHON to an interpreter)"
    );
    let tmp = Path::new(env!("CARGO_TARGET_TMPDIR"));
    let venv = tmp.join("temper-plugins-venv");
    let venv_python = venv.join("bin").join("python");
    let stamp = venv.join("temper-deps-installed");
    if !stamp.exists() {
        let _ = std::fs::remove_dir_all(&venv);
        run(
            Command::new(&python).args(["-m", "venv"]).arg(&venv),
            "creating a venv (is python3-venv installed?)",
        );
        run(
            Command::new(&venv_python).args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "grpcio",
                "grpcio-tools",
                "setuptools",
                "wheel",
            ]),
            "installing grpcio and grpcio-tools from PyPI",
        );
        std::fs::write(&stamp, "grpcio grpcio-tools setuptools wheel\n").unwrap();
    }
    // Build from a copy so the checkout gets no build/ or egg-info.
    let source = tmp.join("temper-plugins-src");
    let _ = std::fs::remove_dir_all(&source);
    copy_tree(&repo_root().join("python"), &source);
    run(
        Command::new(&venv_python)
            .args([
                "-m",
                "pip",
                "install",
                "--quiet",
                "--disable-pip-version-check",
                "--no-deps",
                "--no-build-isolation",
                "--force-reinstall",
            ])
            .arg(&source)
            .env("TEMPER_PROTO_DIR", repo_root().join("proto")),
        "installing the temper-plugins package",
    );
    venv_python
}

/// The plug-in process; killed when dropped, so a failing assertion does not leak it.
struct Plugin(Child);

impl Drop for Plugin {
    fn drop(&mut self) {
        let _ = self.0.kill();
        let _ = self.0.wait();
    }
}

/// Starts the example on 127.0.0.1 with a free port; returns it and its address.
fn start_example(python: &Path) -> (Plugin, String) {
    let mut child = Command::new(python)
        .arg(repo_root().join("python/examples/length_reward.py"))
        .args(["--host", "127.0.0.1", "--port", "0", "--target", "5"])
        .env("TEMPER_REWARD_TOKEN", TOKEN)
        .stdout(Stdio::piped())
        .stderr(Stdio::inherit())
        .spawn()
        .expect("cannot start the example plug-in");
    let stdout = child.stdout.take().unwrap();
    let plugin = Plugin(child);
    let (tx, rx) = mpsc::channel();
    std::thread::spawn(move || {
        let mut line = String::new();
        let _ = BufReader::new(stdout).read_line(&mut line);
        let _ = tx.send(line);
    });
    let line = rx
        .recv_timeout(Duration::from_secs(60))
        .expect("the example plug-in did not report its address within 60 s");
    let address = line
        .trim()
        .strip_prefix("listening on ")
        .unwrap_or_else(|| panic!("unexpected first line from the plug-in: {line:?}"))
        .to_string();
    (plugin, address)
}

fn reward_set(address: &str, token_env: &str) -> RewardSet {
    let config: RewardSetConfig = toml::from_str(&format!(
        r#"
        [[rewards]]
        kind = "remote"
        name = "length_py"
        url = "http://{address}"
        token_env = "{token_env}"
        timeout_s = 30
        call_timeout_s = 10
        max_batch = 2
        "#
    ))
    .unwrap();
    RewardSet::from_config(&config).unwrap()
}

#[test]
fn python_plugin_scores_through_a_remote_reward_set() {
    // SAFETY: the only test of this binary, and no other thread reads the environment yet.
    unsafe {
        std::env::set_var(TOKEN_ENV, TOKEN);
        std::env::set_var(WRONG_TOKEN_ENV, "not-the-token");
    }
    let python = venv_python();

    run(
        Command::new(&python)
            .args(["-m", "unittest", "discover", "-s", "."])
            .current_dir(repo_root().join("python/tests")),
        "the temper-plugins unit tests",
    );

    let (_plugin, address) = start_example(&python);
    let set = reward_set(&address, TOKEN_ENV);
    let meta = |v: serde_json::Value| Some(v);
    let samples = [
        Sample::new("p", "one two three four five"),
        Sample::new("p", "a b c d e f"),
        Sample::new("p", "anything at all"),
        Sample::new("p", "x"),
        Sample::new("p", "a b c d e"),
    ];
    let metadata = [
        meta(serde_json::json!({"target_words": 5})),
        meta(serde_json::json!({"target_words": 4})),
        meta(serde_json::json!({"free_length": true})),
        meta(serde_json::json!({"target_words": "many"})),
        None,
    ];
    let samples: Vec<Sample> = samples
        .into_iter()
        .zip(metadata)
        .map(|(mut s, m)| {
            s.metadata = m;
            s
        })
        .collect();

    let batch = set.score_blocking(&samples).unwrap();
    assert_eq!(batch.totals[0], Ok(Some(1.0)));
    assert_eq!(batch.totals[1], Ok(Some(0.5))); // 6 words for 4: 1 - 2/4
    assert_eq!(batch.totals[2], Ok(None));
    let reason = &batch.totals[3].as_ref().unwrap_err().reason;
    assert!(
        reason.contains("target_words must be a positive integer, got 'many'")
            && reason.contains(&address),
        "{reason}"
    );
    assert_eq!(batch.totals[4], Ok(Some(1.0))); // the plug-in's --target 5
    let components = &batch.reward("length_py").unwrap().components;
    assert_eq!(
        components["words"],
        [Some(5.0), Some(6.0), None, None, Some(5.0)]
    );
    assert_eq!(
        components["target"],
        [Some(5.0), Some(4.0), None, None, Some(5.0)]
    );
    let metrics = batch.metrics.to_map();
    assert_eq!(metrics["reward/length_py/quarantined"], 1.0);
    assert_eq!(metrics["reward/length_py/not_applicable"], 1.0);

    // The plug-in refuses a caller with another token, and says so.
    let wrong = reward_set(&address, WRONG_TOKEN_ENV);
    let batch = wrong.score_blocking(&samples[..1]).unwrap();
    let reason = &batch.totals[0].as_ref().unwrap_err().reason;
    assert!(
        reason.contains("UNAUTHENTICATED") && reason.contains(WRONG_TOKEN_ENV),
        "{reason}"
    );
}
