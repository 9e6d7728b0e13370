//! Answers per second of the `math` reward, single-threaded, over two inputs:
//!
//! - the test table's 597 responses (every answer form, nasty and gaming cases), cycled to 10 000;
//! - with `MATH_BENCH_JSONL=path`, a `temper reward` input file such as the 10 000 rollouts of
//!   `tools/bench/math_reward_jsonl.py` (~1.5 kB of reasoning before each final answer).
//!
//! `cargo bench -p temper-rewards --bench math`. Prints answers/s (best of 5 passes) and how many
//! scored 1.0, so a change that speeds scoring up by skipping work shows in the count.

use std::time::Instant;

use temper_rewards::builtin::math::{MathAnswer, MathConfig};

fn pairs_from_jsonl(text: &str, reference_key: &str, response_key: &str) -> Vec<(String, String)> {
    text.lines()
        .filter(|l| !l.trim().is_empty())
        .map(|l| {
            let v: serde_json::Value = serde_json::from_str(l).expect("a JSON line");
            let field = |k: &str| v[k].as_str().unwrap_or_default().to_string();
            (field(reference_key), field(response_key))
        })
        .collect()
}

fn run(name: &str, pairs: &[(String, String)]) {
    let reward = MathAnswer::new(MathConfig::default());
    let mut best = f64::INFINITY;
    let mut correct = 0;
    for _ in 0..5 {
        let start = Instant::now();
        correct = pairs
            .iter()
            .filter(|(reference, response)| reward.verdict(reference, response) == Ok(Some(1.0)))
            .count();
        best = best.min(start.elapsed().as_secs_f64());
    }
    println!(
        "{name}: {} answers in {:.3} s = {:.0} answers/s ({correct} scored 1.0)",
        pairs.len(),
        best,
        pairs.len() as f64 / best
    );
}

fn main() {
    let table = pairs_from_jsonl(
        include_str!("../tests/data/math_cases.jsonl"),
        "reference",
        "response",
    );
    let cycled: Vec<_> = table.iter().cycle().take(10_000).cloned().collect();
    run("test-table responses", &cycled);
    if let Ok(path) = std::env::var("MATH_BENCH_JSONL") {
        let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path}: {e}"));
        run(&path, &pairs_from_jsonl(&text, "answer", "response"));
    }
}
