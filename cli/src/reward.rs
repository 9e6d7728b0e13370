//! `temper reward`: scores a JSONL file of responses offline with a `[[rewards]]` config.
//!
//! Each input line is a JSON object: `id` (required), `messages` (chat messages,
//! `{role, content}`; content may be a string or a list of `{type: "text", text}` parts),
//! optional `prompt` (rendered text), `response` (text) or `turns` (the turns of a multi-turn
//! rollout; the last turn's text is then the response), `answer` (the reference, or null) and
//! optional `metadata`. Each output line is the input object with three fields added:
//! `reward` (the total, or null), `components` (each reward's score and each of its components
//! as `reward/component`, null where not applicable) and `error` (null, or why the sample was
//! quarantined or the line could not be read). A bad line is written with its error and the run
//! goes on; a summary goes to stderr.

use std::fs::File;
use std::io::{BufRead, BufReader, BufWriter, Write};
use std::path::{Path, PathBuf};

use anyhow::{Context, Result, bail};
use clap::Args;
use indicatif::{ProgressBar, ProgressStyle};
use serde_json::{Map, Value, json};
use temper_rewards::{
    Message, RewardRegistry, RewardSet, RewardSetConfig, Sample, ScoredBatch, Turn,
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
pub fn load_reward_set(path: &Path) -> Result<RewardSet> {
    let text = std::fs::read_to_string(path)
        .with_context(|| format!("cannot read the reward config {}", path.display()))?;
    let config: RewardSetConfig = toml::from_str(&text)
        .with_context(|| format!("invalid reward config {}", path.display()))?;
    RewardRegistry::new()
        .build(&config)
        .with_context(|| format!("invalid reward config {}", path.display()))
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

/// A chat message whose content is a string or a list of parts (text parts joined).
fn message(value: &Value) -> Result<Message, String> {
    let role = value
        .get("role")
        .and_then(Value::as_str)
        .ok_or("needs a string `role`")?
        .to_string();
    let content = match value.get("content") {
        Some(Value::String(s)) => s.clone(),
        Some(Value::Array(parts)) => parts
            .iter()
            .filter_map(|p| p.get("text").and_then(Value::as_str))
            .collect::<Vec<_>>()
            .join("\n"),
        Some(Value::Null) | None => String::new(),
        Some(other) => {
            return Err(format!(
                "`content` must be a string or a list of parts, got {other}"
            ));
        }
    };
    Ok(Message { role, content })
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
}

/// Scores one batch of lines and writes them.
fn score_batch(
    runtime: &tokio::runtime::Runtime,
    set: &RewardSet,
    batch: Vec<Line>,
    out: &mut impl Write,
    summary: &mut Summary,
) -> Result<()> {
    let samples: Vec<Sample> = batch
        .iter()
        .filter_map(|l| l.sample.as_ref().ok().cloned())
        .collect();
    let scored: ScoredBatch = runtime.block_on(set.score(&samples));
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

pub fn run(args: RewardArgs) -> Result<()> {
    let set = load_reward_set(&args.config)?;
    let open = || {
        File::open(&args.input)
            .with_context(|| format!("cannot read the samples {}", args.input.display()))
    };
    let total = BufReader::new(open()?).lines().count() as u64;
    let out_file =
        File::create(&args.out).with_context(|| format!("cannot create {}", args.out.display()))?;
    let mut out = BufWriter::new(out_file);
    let runtime = tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
        .context("cannot start the async runtime")?;
    let progress = ProgressBar::new(total);
    progress.set_style(
        ProgressStyle::with_template("{bar:40} {pos}/{len} lines, {per_sec}, eta {eta}")
            .expect("valid template"),
    );
    let batch_size = args.batch_size as usize;
    let mut summary = Summary::default();
    let mut batch = Vec::with_capacity(batch_size);
    for (i, text) in BufReader::new(open()?).lines().enumerate() {
        let text = text
            .with_context(|| format!("cannot read line {} of {}", i + 1, args.input.display()))?;
        progress.inc(1);
        if text.trim().is_empty() {
            continue;
        }
        batch.push(parse_line(i + 1, &text));
        if batch.len() == batch_size {
            score_batch(
                &runtime,
                &set,
                std::mem::take(&mut batch),
                &mut out,
                &mut summary,
            )?;
        }
    }
    if !batch.is_empty() {
        score_batch(&runtime, &set, batch, &mut out, &mut summary)?;
    }
    out.flush()
        .with_context(|| format!("cannot write {}", args.out.display()))?;
    progress.finish_and_clear();
    if summary.lines == 0 {
        bail!("{} has no samples", args.input.display());
    }
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
        assert_eq!(sample.messages[0].content, "2+2?");
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
