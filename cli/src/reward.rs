//! `temper reward`: scores a JSONL file of responses offline with a `[[rewards]]` config.
//!
//! Each input line is a JSON object: `id` (required), `messages` (chat messages,
//! `{role, content}`; content may be a string or a list of `{type: "text", text}` parts),
//! optional `prompt` (rendered text), `response` (text) or `turns` (the turns of a multi-turn
//! rollout; the last turn's text is then the response), `answer` (the reference, or null) and
//! optional `metadata`. Each output line is the input object with three fields added:
//! `reward` (the total, or null), `components` (each reward's score and each of its components
//! as `reward/component`, null where not applicable) and `error` (null, or why the sample was
//! quarantined or the line could not be read). A bad line (invalid JSON, not UTF-8, missing
//! fields) is written with its error and the run goes on; a summary goes to stderr.
//!
//! The input is read once (it may be stdin or a pipe); the output goes through a temporary
//! file renamed over `--out` at the end, and `--out` may not be the input itself. A `remote` or
//! HTTP `judge` reward that answers none of its samples (its service is down or refuses the
//! token) fails the run after the output and the summary are written.

use std::fs::File;
use std::io::{BufRead, BufReader, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value, json};
use temper_model::output_file::OutputFile;
use temper_rewards::builtin::judge::{JudgeBackendConfig, JudgeConfig};
use temper_rewards::{
    Message, RewardConfig, RewardRegistry, RewardSet, RewardSetConfig, Sample, ScoredBatch, Turn,
};

#[derive(Args)]
pub struct RewardArgs {
    /// TOML file with `[[rewards]]` entries.
    #[arg(long)]
    pub(crate) config: PathBuf,
    /// JSONL file of samples (`id`, `messages`, `response` or `turns`, `answer`, `metadata`).
    #[arg(long)]
    pub(crate) input: PathBuf,
    /// Where to write the scored JSONL.
    #[arg(long)]
    pub(crate) out: PathBuf,
    /// Lines scored together (judge and remote rewards batch their requests).
    #[arg(long, default_value_t = 64, value_parser = clap::value_parser!(u64).range(1..))]
    pub(crate) batch_size: u64,
}

/// Reads and validates a reward config file; errors name the file and the bad key or field.
pub fn load_reward_config(path: &Path) -> Result<RewardSetConfig> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the reward config {}", path.display()))?;
    toml::from_str(&text).with_context(|| format!("invalid reward config {}", path.display()))
}

/// One input line: its object (kept for the output) and its sample, or why it is unusable.
struct Line {
    object: Map<String, Value>,
    sample: Result<Sample, String>,
}

fn parse_line(number: usize, text: &str) -> Line {
    let object = match serde_json::from_str::<Value>(text) {
        Ok(Value::Object(object)) => object,
        Ok(other) => {
            let mut object = Map::new();
            object.insert("line".into(), number.into());
            object.insert("raw".into(), other);
            return Line {
                object,
                sample: Err("the line is not a JSON object".into()),
            };
        }
        Err(e) => {
            let mut object = Map::new();
            object.insert("line".into(), number.into());
            object.insert("raw".into(), text.into());
            return Line {
                object,
                sample: Err(format!("invalid JSON: {e}")),
            };
        }
    };
    let sample = to_sample(&object);
    Line { object, sample }
}

fn to_sample(object: &Map<String, Value>) -> Result<Sample, String> {
    match object.get("id") {
        Some(Value::String(_) | Value::Number(_)) => {}
        Some(other) => return Err(format!("`id` must be a string or a number, got {other}")),
        None => return Err("missing `id`".into()),
    }
    let messages = match object.get("messages") {
        None | Some(Value::Null) => Vec::new(),
        Some(Value::Array(items)) => items
            .iter()
            .enumerate()
            .map(|(i, m)| message(m).map_err(|e| format!("`messages[{i}]`: {e}")))
            .collect::<Result<_, _>>()?,
        Some(_) => return Err("`messages` must be a list of {role, content}".into()),
    };
    let turns: Vec<Turn> = match object.get("turns") {
        None | Some(Value::Null) => Vec::new(),
        Some(v) => serde_json::from_value(v.clone()).map_err(|e| format!("`turns`: {e}"))?,
    };
    let response = match object.get("response") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Null) | None => match turns.last() {
            Some(turn) => turn.assistant.clone(),
            None => return Err("missing `response` (or `turns`)".into()),
        },
        Some(other) => return Err(format!("`response` must be a string, got {other}")),
    };
    let reference = match object.get("answer") {
        None | Some(Value::Null) => None,
        Some(Value::String(s)) => Some(s.clone()),
        Some(v @ (Value::Number(_) | Value::Bool(_))) => Some(v.to_string()),
        Some(other) => {
            return Err(format!(
                "`answer` must be a string, a number or null, got {other}"
            ));
        }
    };
    let prompt = match object.get("prompt") {
        None | Some(Value::Null) => String::new(),
        Some(Value::String(s)) => s.clone(),
        Some(other) => return Err(format!("`prompt` must be a string, got {other}")),
    };
    Ok(Sample {
        prompt,
        messages,
        response,
        reference,
        metadata: object.get("metadata").filter(|m| !m.is_null()).cloned(),
        turns,
        ..Sample::default()
    })
}

/// A chat message in the chat template's layout: `content` a string, a list of parts or null.
fn message(value: &Value) -> Result<Message, String> {
    if value.get("role").and_then(Value::as_str).is_none() {
        return Err("needs a string `role`".into());
    }
    serde_json::from_value(value.clone()).map_err(|e| {
        format!("{e}; write `content` as a string or a list of {{\"type\": \"text\", \"text\": ...}} parts")
    })
}

/// Running totals for the summary.
#[derive(Default)]
struct Summary {
    lines: usize,
    scored: usize,
    not_applicable: usize,
    quarantined: usize,
    bad_lines: usize,
    reward_sum: f64,
    /// Per reward, in config order.
    rewards: Vec<RewardTally>,
}

/// What one reward did over the whole run.
#[derive(Default, Clone)]
struct RewardTally {
    /// Samples it was given.
    given: usize,
    /// Samples it answered (a score, or "does not apply").
    answered: usize,
    /// Why it quarantined its first quarantined sample.
    first_reason: Option<String>,
}

/// A reward that scores through a service: if it answers no sample at all, the service was
/// down, refused the token or does not serve the reward, and the run fails.
struct ServiceReward {
    index: usize,
    name: String,
    kind: &'static str,
    url: String,
}

fn service_rewards(config: &RewardSetConfig) -> Vec<ServiceReward> {
    config
        .rewards
        .iter()
        .enumerate()
        .filter_map(|(index, entry)| {
            let url = match &entry.reward {
                RewardConfig::Remote(c) => c.url.clone(),
                RewardConfig::Judge(JudgeConfig {
                    backend: JudgeBackendConfig::Http(c),
                    ..
                }) => c.url.clone(),
                _ => return None,
            };
            Some(ServiceReward {
                index,
                name: entry.metric_name().to_string(),
                kind: entry.reward.kind(),
                url,
            })
        })
        .collect()
}

/// Scores one batch of lines and writes them.
fn score_batch(
    runtime: &tokio::runtime::Runtime,
    set: &RewardSet,
    batch: Vec<Line>,
    out: &mut impl Write,
    summary: &mut Summary,
) -> std::io::Result<()> {
    let samples: Vec<Sample> = batch
        .iter()
        .filter_map(|l| l.sample.as_ref().ok().cloned())
        .collect();
    let scored: ScoredBatch = runtime.block_on(set.score(&samples));
    if summary.rewards.len() < scored.rewards.len() {
        summary
            .rewards
            .resize(scored.rewards.len(), RewardTally::default());
    }
    for (tally, r) in summary.rewards.iter_mut().zip(&scored.rewards) {
        tally.given += r.scores.len();
        tally.answered += r.scores.iter().filter(|s| s.is_ok()).count();
        if tally.first_reason.is_none() {
            tally.first_reason = r
                .scores
                .iter()
                .find_map(|s| s.as_ref().err().map(|q| q.reason.clone()));
        }
    }
    let mut k = 0;
    for line in batch {
        let mut object = line.object;
        summary.lines += 1;
        let (reward, components, error) = match line.sample {
            Err(reason) => {
                summary.bad_lines += 1;
                summary.quarantined += 1;
                (Value::Null, Map::new(), Value::String(reason))
            }
            Ok(_) => {
                let i = k;
                k += 1;
                let mut components = Map::new();
                for r in &scored.rewards {
                    let score = r.scores[i].as_ref().ok().copied().flatten();
                    components.insert(r.name.clone(), json!(score));
                    for (name, values) in &r.components {
                        components.insert(format!("{}/{name}", r.name), json!(values[i]));
                    }
                }
                match &scored.totals[i] {
                    Ok(Some(total)) => {
                        summary.scored += 1;
                        summary.reward_sum += total;
                        (json!(total), components, Value::Null)
                    }
                    Ok(None) => {
                        summary.not_applicable += 1;
                        (Value::Null, components, Value::Null)
                    }
                    Err(q) => {
                        summary.quarantined += 1;
                        (Value::Null, components, Value::String(q.reason.clone()))
                    }
                }
            }
        };
        object.insert("reward".into(), reward);
        object.insert("components".into(), Value::Object(components));
        object.insert("error".into(), error);
        serde_json::to_writer(&mut *out, &Value::Object(object))?;
        out.write_all(b"\n")?;
    }
    Ok(())
}

/// Opens the samples for one pass, refusing what would spin (a directory) or be destroyed (the
/// output file itself); returns the reader and its size in bytes when it is a regular file.
fn open_input(args: &RewardArgs) -> Result<(BufReader<File>, Option<u64>)> {
    let input = &args.input;
    let file = File::open(input)
        .with_context(|| format!("cannot read the samples {}", input.display()))?;
    let meta = file
        .metadata()
        .with_context(|| format!("cannot read the samples {}", input.display()))?;
    if meta.is_dir() {
        bail!(
            "--input {} is a directory; give a JSONL file of samples",
            input.display()
        );
    }
    if let Ok(out) = std::fs::metadata(&args.out) {
        use std::os::unix::fs::MetadataExt;
        let same_path = std::fs::canonicalize(input).ok() == std::fs::canonicalize(&args.out).ok();
        if (out.dev(), out.ino()) == (meta.dev(), meta.ino()) || (out.is_file() && same_path) {
            bail!(
                "--out {} is the same file as --input {}: scoring would overwrite the samples; \
                 write the scores to another file",
                args.out.display(),
                input.display()
            );
        }
    }
    let size = meta.is_file().then_some(meta.len());
    Ok((BufReader::new(file), size))
}

/// Reads the next line (without its `\n` or `\r\n`) into `line`; `false` at the end.
fn next_line(reader: &mut impl BufRead, line: &mut Vec<u8>) -> std::io::Result<(bool, usize)> {
    line.clear();
    let read = reader.read_until(b'\n', line)?;
    if line.last() == Some(&b'\n') {
        line.pop();
        if line.last() == Some(&b'\r') {
            line.pop();
        }
    }
    Ok((read > 0, read))
}

/// A line that is not UTF-8: kept (lossily) with its error, like any other unreadable line.
fn not_utf8(number: usize, bytes: &[u8], error: std::str::Utf8Error) -> Line {
    let mut object = Map::new();
    object.insert("line".into(), number.into());
    object.insert(
        "raw".into(),
        String::from_utf8_lossy(bytes).into_owned().into(),
    );
    Line {
        object,
        sample: Err(format!(
            "the line is not valid UTF-8 (byte {} is not); re-encode the file as UTF-8",
            error.valid_up_to()
        )),
    }
}

pub fn run(args: RewardArgs) -> Result<()> {
    let config = load_reward_config(&args.config)?;
    let set = RewardRegistry::new()
        .build(&config)
        .with_context(|| format!("invalid reward config {}", args.config.display()))?;
    let services = service_rewards(&config);
    // One pass over the input: stdin and pipes cannot be read twice.
    let (mut reader, size) = open_input(&args)?;
    let mut out = OutputFile::create(&args.out)?;
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let progress = match size {
        Some(bytes) => ProgressBar::new(bytes).with_style(
            ProgressStyle::with_template("{bar:40} {bytes}/{total_bytes}, {msg}, eta {eta}")
                .expect("valid template"),
        ),
        None => ProgressBar::new_spinner().with_style(
            ProgressStyle::with_template("{spinner} {bytes} read, {msg}").expect("valid template"),
        ),
    };
    let batch_size = args.batch_size as usize;
    let mut summary = Summary::default();
    let mut batch = Vec::with_capacity(batch_size);
    let mut bytes = Vec::new();
    let mut number = 0;
    let write_error = |out: &OutputFile, e: std::io::Error| anyhow::Error::new(out.error(e));
    loop {
        let (more, read) = next_line(&mut reader, &mut bytes).with_context(|| {
            format!(
                "cannot read line {} of {}",
                number + 1,
                args.input.display()
            )
        })?;
        if !more {
            break;
        }
        number += 1;
        progress.inc(read as u64);
        progress.set_message(format!("{number} lines"));
        let line = match std::str::from_utf8(&bytes) {
            Ok(text) if text.trim().is_empty() => continue,
            Ok(text) => parse_line(number, text),
            Err(e) => not_utf8(number, &bytes, e),
        };
        batch.push(line);
        if batch.len() == batch_size {
            let lines = std::mem::take(&mut batch);
            score_batch(&runtime, &set, lines, &mut out, &mut summary)
                .map_err(|e| write_error(&out, e))?;
        }
    }
    if !batch.is_empty() {
        score_batch(&runtime, &set, batch, &mut out, &mut summary)
            .map_err(|e| write_error(&out, e))?;
    }
    progress.finish_and_clear();
    if summary.lines == 0 {
        bail!("{} has no samples", args.input.display());
    }
    out.commit()?;
    let mean = if summary.scored > 0 {
        format!("{:.4}", summary.reward_sum / summary.scored as f64)
    } else {
        "n/a".into()
    };
    eprintln!(
        "lines {}, scored {}, not applicable {}, quarantined {} ({} unreadable lines), mean reward {mean}",
        summary.lines,
        summary.scored,
        summary.not_applicable,
        summary.quarantined,
        summary.bad_lines
    );
    tracing::info!(
        lines = summary.lines,
        scored = summary.scored,
        quarantined = summary.quarantined,
        out = %args.out.display(),
        "scored the samples"
    );
    let unreachable: Vec<String> = services
        .iter()
        .filter_map(|s| {
            let tally = summary.rewards.get(s.index)?;
            (tally.given > 0 && tally.answered == 0).then(|| {
                format!(
                    "reward `{}` (kind = \"{}\", url {}) answered none of its {} samples: {}",
                    s.name,
                    s.kind,
                    s.url,
                    tally.given,
                    tally.first_reason.as_deref().unwrap_or("no reason given")
                )
            })
        })
        .collect();
    if !unreachable.is_empty() {
        bail!(
            "{}; is the service running, and does it accept this run's token? {} has every \
             sample, with these quarantined",
            unreachable.join("; "),
            args.out.display()
        );
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn lines_become_samples_or_say_what_is_wrong() {
        let line = parse_line(
            1,
            r#"{"id": 7, "messages": [{"role": "user", "content": [{"type": "text", "text": "2+2?"}]}],
                "response": "4", "answer": 4, "metadata": {"language": "en"}}"#,
        );
        let sample = line.sample.unwrap();
        assert_eq!(sample.messages[0].text(), "2+2?");
        assert_eq!(sample.reference.as_deref(), Some("4"));
        assert_eq!(sample.metadata.unwrap()["language"], "en");

        let turns = parse_line(
            2,
            r#"{"id": "a", "turns": [{"assistant": "x"}, {"assistant": "final"}]}"#,
        );
        assert_eq!(turns.sample.unwrap().response, "final");

        for (text, want) in [
            (r#"{"response": "4"}"#, "missing `id`"),
            (r#"{"id": 1}"#, "missing `response` (or `turns`)"),
            (r#"{"id": 1, "response": 4}"#, "`response` must be a string"),
            (
                r#"{"id": 1, "response": "4", "messages": [{"content": "x"}]}"#,
                "`messages[0]`: needs a string `role`",
            ),
            ("{not json", "invalid JSON"),
            ("[1, 2]", "not a JSON object"),
        ] {
            let err = parse_line(3, text).sample.unwrap_err();
            assert!(err.contains(want), "{text}: {err}");
        }
    }
}
