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
