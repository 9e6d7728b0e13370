//! End-to-end tests of `temper reward`: the shipped example config and samples, bad lines kept
//! with their error, batching, and a bad config failing with the key named.

mod common;

use std::path::Path;

use common::{stderr, temper};
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
