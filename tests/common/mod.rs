//! Helpers shared by the end-to-end tests of the `temper` binary.

use std::process::{Command, Output};

/// Runs the `temper` binary built for these tests with `args`.
pub fn temper(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_temper"))
        .args(args)
        .output()
        .expect("temper runs")
}

/// The run's standard error as text.
pub fn stderr(out: &Output) -> String {
    String::from_utf8_lossy(&out.stderr).into_owned()
}

/// Runs `temper` with `args` and extra environment variables, failing the test instead of
/// hanging when it does not finish within `secs` (a hang is one of the defects tested).
#[allow(dead_code)]
pub fn temper_within(args: &[&str], env: &[(&str, &str)], secs: u64) -> Output {
    use std::process::Stdio;
    use std::time::{Duration, Instant};
    let mut child = Command::new(env!("CARGO_BIN_EXE_temper"))
        .args(args)
        .envs(env.iter().copied())
        .stdin(Stdio::null())
        .stdout(Stdio::piped())
        .stderr(Stdio::piped())
        .spawn()
        .expect("temper runs");
    let deadline = Instant::now() + Duration::from_secs(secs);
    while child.try_wait().expect("temper runs").is_none() {
        if Instant::now() > deadline {
            child.kill().expect("kill temper");
            let out = child.wait_with_output().expect("temper ends");
            panic!(
                "temper {args:?} did not finish in {secs} s: {}",
                String::from_utf8_lossy(&out.stderr)
            );
        }
        std::thread::sleep(Duration::from_millis(50));
    }
    child.wait_with_output().expect("temper ends")
}
