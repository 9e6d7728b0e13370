//! `temper`: the single binary. Subcommands so far: `forward` (HF-compatible logits and
//! log-probs for an inputs file), `generate` (token ids for an inputs file, or text for a
//! prompt with images / a video), `convert` (re-save a checkpoint), `train`, `bench` and
//! `reward` (score a JSONL file of responses offline).

mod bench;
mod chat;
mod convert;
mod device;
mod forward;
mod generate;
mod metrics_server;
mod reward;
mod train;

use std::num::NonZeroUsize;
use std::process::ExitCode;

use anyhow::Result;
use clap::{Parser, Subcommand};

#[derive(Parser)]
#[command(
    name = "temper",
    version,
    about = "RL post-training of vision-language models"
)]
struct Cli {
    /// CPU threads for the model's kernels (default: `TEMPER_THREADS`, else every core).
    #[arg(long, global = true)]
    threads: Option<NonZeroUsize>,
    #[command(subcommand)]
    command: Command,
}

#[derive(Subcommand)]
enum Command {
    /// Run the model over an inputs file and write logits, token log-probs and position ids.
    Forward(forward::ForwardArgs),
    /// Generate continuations, from an inputs file (ids out) or a text prompt (text out).
    Generate(generate::GenerateArgs),
    /// Re-save a checkpoint under HF names in another dtype / shard size.
    Convert(convert::ConvertArgs),
    /// Train: SFT then RL (GSPO, SAPO, ...) on a TOML run config, in one process.
    Train(train::TrainArgs),
    /// Measure prefill / decode / training throughput on a random model of a given shape.
    Bench(bench::BenchArgs),
    /// Score a JSONL file of responses with a `[[rewards]]` config, offline.
    Reward(reward::RewardArgs),
}

/// Errors end the run with one `error: …` line (the context chain joined with `: `) and exit
/// code 1. anyhow's own report would add a backtrace of the error's creation whenever
/// `RUST_BACKTRACE` is set — 40 lines for every bad input; backtraces are for panics, whose
/// hook still prints them.
fn main() -> ExitCode {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env().unwrap_or_else(|_| "warn".into()),
        )
        .with_writer(std::io::stderr)
        .init();
    let cli = Cli::parse();
    match run(cli.threads, cli.command) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            // The chain joined with `: `, leaving out causes a message already quotes
            // (`ModelError`s include their I/O source in their own text).
            let mut line = String::new();
            for cause in e.chain().map(|c| c.to_string()) {
                if !line.contains(&cause) {
                    if !line.is_empty() {
                        line.push_str(": ");
                    }
                    line.push_str(&cause);
                }
            }
            eprintln!("error: {line}");
            ExitCode::FAILURE
        }
    }
}

fn run(threads: Option<NonZeroUsize>, command: Command) -> Result<()> {
    let threads = temper_model::threads::configure(threads)?;
    tracing::debug!(threads, "CPU thread pool");
    match command {
        Command::Forward(args) => forward::run(args),
        Command::Generate(args) => generate::run(args),
        Command::Convert(args) => convert::run(args),
        Command::Train(args) => train::run(args),
        Command::Bench(args) => bench::run(args),
        Command::Reward(args) => reward::run(args),
    }
}
