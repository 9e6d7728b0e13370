//! `temper train` config: the shipped configs parse, overrides apply, and every kind of bad
//! config fails with one error naming the key.

use std::path::Path;

use temper_learner::train::{ConfigError, TrainConfig};

fn tiny_text() -> String {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/tiny.toml");
    std::fs::read_to_string(path).unwrap()
}

fn load(overrides: &[&str]) -> Result<TrainConfig, ConfigError> {
    let overrides: Vec<String> = overrides.iter().map(|s| s.to_string()).collect();
    TrainConfig::from_toml_str(&tiny_text(), "configs/tiny.toml", &overrides)
}

fn error(overrides: &[&str]) -> String {
    load(overrides).unwrap_err().to_string()
}

#[test]
fn shipped_config_parses_and_overrides_apply() {
    let config = load(&[]).unwrap();
    assert_eq!(config.rl.loss.kind(), "gspo");
    let config = load(&[
        "rl.loss.kind=sapo",
        "rl.steps=17",
        "sft.optim.lr=5e-3",
        "seed=3",
        "rewards.0.weight=2.0",
    ])
    .unwrap();
    assert_eq!(config.rl.loss.kind(), "sapo");
    assert_eq!(config.rl.steps, 17);
    assert_eq!(config.sft.optim.lr, 5e-3);
    assert_eq!(config.seed, 3);
    // The written form reads back to the same config.
    let again = TrainConfig::from_toml_str(&config.to_toml(), "round trip", &[]).unwrap();
    assert_eq!(again, config);
}

#[test]
fn unknown_keys_are_named() {
    let e = error(&["rl.group_sise=4"]);
    assert!(e.contains("group_sise"), "{e}");
    let e = error(&["sft.optim.lrr=1"]);
    assert!(e.contains("lrr"), "{e}");
    let e = error(&["rl.loss.eps_hihg=0.1"]);
    assert!(e.contains("eps_hihg"), "{e}");
}

#[test]
fn wrong_types_are_named() {
    let e = error(&["rl.steps=\"many\""]);
    assert!(e.contains("steps"), "{e}");
    let e = error(&["rl.loss.kind=ppo"]);
    assert!(e.contains("ppo") || e.contains("kind"), "{e}");
}

#[test]
fn impossible_values_are_named() {
    let e = error(&["rl.group_size=1"]);
    assert!(e.contains("rl.group_size") && e.contains("gspo"), "{e}");
    let e = error(&["rl.mini_batches=3"]);
    assert!(e.contains("rl.mini_batches"), "{e}");
    let e = error(&["eval.examples=0"]);
    assert!(e.contains("eval.examples"), "{e}");
    let e = error(&["rl.optim.lr=-1"]);
    assert!(e.contains("rl.optim.lr"), "{e}");
    let e = error(&["rl.temperature=0"]);
    assert!(e.contains("rl.temperature"), "{e}");
    let e = error(&["rl.loss.eps_low=-0.1"]);
    assert!(e.contains("rl.loss") && e.contains("eps_low"), "{e}");
    let e = error(&["model.source=/no/such/dir"]);
    assert!(e.contains("model.source"), "{e}");
    let e = error(&["task.max_shapes=40"]);
    assert!(e.contains("max_shapes"), "{e}");
}

#[test]
fn malformed_overrides_are_explained() {
    let e = error(&["rl.steps"]);
    assert!(e.contains("KEY=VALUE"), "{e}");
    let e = error(&["rewards.x.weight=1"]);
    assert!(e.contains("number"), "{e}");
    let e = error(&["rewards.5.weight=1"]);
    assert!(e.contains("past the array"), "{e}");
}

/// The minimal `[[rewards]]` table of every reward kind: only its required options set.
const EVERY_REWARD_KIND: [(&str, &str); 12] = [
    (
        "exact_match",
        "kind = \"exact_match\"\nname = \"second_exact_match\"",
    ),
    ("numeric", "kind = \"numeric\""),
    ("choice", "kind = \"choice\""),
    ("regex", "kind = \"regex\"\npattern = '\\d'"),
    ("format", "kind = \"format\""),
    ("length", "kind = \"length\"\nweight = 0.1"),
    ("repetition", "kind = \"repetition\""),
    ("code_switching", "kind = \"code_switching\""),
    (
        "judge",
        "kind = \"judge\"\nbackend = { type = \"http\", url = \"http://127.0.0.1:9\", model = \"m\" }",
    ),
    ("tool_call", "kind = \"tool_call\""),
    ("remote", "kind = \"remote\"\nurl = \"http://127.0.0.1:9\""),
    ("custom", "kind = \"custom\"\nname = \"mine\""),
];

/// Defect: `temper train` panicked ("the config serialises: UnsupportedType(Some(\"unit\"))")
/// with a `judge`, `remote`, `length` or `code_switching` reward, whose unset optional fields
/// became nulls that TOML cannot write.
#[test]
fn every_reward_kind_with_unset_optional_fields_writes_and_reads_back() {
    for (kind, table) in EVERY_REWARD_KIND {
        let text = format!("{}\n[[rewards]]\n{table}\n", tiny_text());
        let config = TrainConfig::from_toml_str(&text, "t.toml", &[])
            .unwrap_or_else(|e| panic!("{kind}: {e}"));
        assert_eq!(config.rewards[1].reward.kind(), kind);
        let written = config.to_toml();
        let again = TrainConfig::from_toml_str(&written, "written", &[])
            .unwrap_or_else(|e| panic!("{kind}: {e}\n{written}"));
        assert_eq!(again, config, "{kind}: {written}");
    }
}

/// The tiny config with `replace` substituted for `find` (a defect placed on a known line).
fn tiny_with(find: &str, replace: &str) -> String {
    let text = tiny_text();
    assert!(text.contains(find), "{find}");
    text.replacen(find, replace, 1)
}

fn line_of(text: &str, needle: &str) -> usize {
    1 + text[..text.find(needle).unwrap()].matches('\n').count()
}

/// Defect: typed errors were reported against the re-serialised TOML (line 24 for an error on
/// line 42), without the table (`steps` is in `[sft]` and `[rl]`) and in Rust type names
/// (`expected usize`, `internally tagged enum PolicyLoss`).
#[test]
fn type_errors_name_the_full_key_the_users_line_and_the_expected_value_in_words() {
    // A wrong type in the file: the `[rl]` table's `steps`, on its own line of the user's file.
    let text = tiny_with("steps = 280", "steps = \"many\"");
    let e = TrainConfig::from_toml_str(&text, "t.toml", &[])
        .unwrap_err()
        .to_string();
    let line = line_of(&text, "steps = \"many\"");
    assert!(e.contains("`rl.steps`"), "{e}");
    assert!(e.contains(&format!("t.toml line {line}")), "{e}");
    assert!(e.contains("whole number"), "{e}");
    assert!(!e.contains("usize"), "{e}");

    // An unknown key in the file.
    let text = tiny_with("group_size = 8", "group_size = 8\ngroup_sise = 8");
    let e = TrainConfig::from_toml_str(&text, "t.toml", &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("`rl.group_sise`"), "{e}");
    assert!(
        e.contains(&format!("t.toml line {}", line_of(&text, "group_sise"))),
        "{e}"
    );

    // The objective given as a number: words, not serde's enum name.
    let text = tiny_with("loss = { kind = \"gspo\" }", "loss = 3");
    let e = TrainConfig::from_toml_str(&text, "t.toml", &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("`rl.loss`") && e.contains("`kind`"), "{e}");
    assert!(!e.contains("internally tagged"), "{e}");

    // A reward field: the entry's index and the field.
    let text = tiny_with("weight = 1.0", "weight = \"heavy\"");
    let e = TrainConfig::from_toml_str(&text, "t.toml", &[])
        .unwrap_err()
        .to_string();
    assert!(e.contains("`rewards.0.weight`"), "{e}");

    // Set by an override: the override is named, not a line.
    let e = error(&["sft.steps=\"ten\""]);
    assert!(
        e.contains("`sft.steps`") && e.contains("--set sft.steps=\"ten\""),
        "{e}"
    );
    let e = error(&["rl.group_sise=4"]);
    assert!(
        e.contains("`rl.group_sise`") && e.contains("--set rl.group_sise=4"),
        "{e}"
    );

    // Validation errors carry the line too.
    let text = tiny_with("group_size = 8", "group_size = 1");
    let e = TrainConfig::from_toml_str(&text, "t.toml", &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("rl.group_size")
            && e.contains(&format!("t.toml line {}", line_of(&text, "group_size = 1"))),
        "{e}"
    );
}

/// Defect: warm-ups longer than a short smoke run's stage were rejected one key at a time.
#[test]
fn warmups_longer_than_a_short_stage_are_clamped() {
    let config = load(&["sft.steps=3", "rl.steps=2"]).unwrap();
    assert_eq!(config.sft.optim.warmup_steps, 3);
    assert_eq!(config.rl.optim.warmup_steps, 2);
    // A stage long enough keeps its warm-up.
    let config = load(&["sft.steps=30"]).unwrap();
    assert_eq!(config.sft.optim.warmup_steps, 5);
}

/// Defect: `rl.loss.kl_coef > 0` was accepted, then failed at the first RL update (the trainer
/// keeps no reference policy).
#[test]
fn positive_kl_coef_is_rejected_up_front_naming_the_key() {
    for set in [
        vec!["rl.loss.kl_coef=0.1"],
        vec!["rl.loss.kind=sapo", "rl.loss.kl_coef=0.05"],
        vec!["rl.loss.kind=grpo", "rl.loss.kl_coef=0.04"],
    ] {
        let e = error(&set);
        assert!(
            e.contains("rl.loss.kl_coef") && e.contains("reference"),
            "{set:?}: {e}"
        );
    }
    assert!(load(&["rl.loss.kl_coef=0"]).is_ok());
}

/// Defect: absurd sizes crashed or hung the trainer (`task.image_size=100000` SIGABRT,
/// `rl.group_size=1e11` SIGABRT after SFT, `rl.prompts_per_step=1e9` hang) and a
/// `rl.max_new_tokens` beyond the context failed only after SFT.
#[test]
fn absurd_sizes_are_config_errors_before_any_work() {
    for (set, key) in [
        ("task.image_size=100000", "task.image_size"),
        ("rl.group_size=1e11", "rl.group_size"),
        ("rl.group_size=100000000000", "rl.group_size"),
        ("rl.prompts_per_step=1000000000", "rl.prompts_per_step"),
        ("rl.group_size=4611686018427387904", "rl.group_size"),
        ("sft.batch_size=1000000000000", "sft.batch_size"),
        ("rl.dynamic_sampling.max_rounds=1000000000000", "max_rounds"),
        ("rl.max_new_tokens=5000", "rl.max_new_tokens"),
        ("eval.max_new_tokens=5000", "eval.max_new_tokens"),
    ] {
        let e = error(&[set]);
        assert!(e.contains(key), "{set}: {e}");
    }
    let e = error(&[
        "eval.examples=1000000000000",
        "eval.batch_size=1000000000000",
    ]);
    assert!(e.contains("eval.batch_size") && e.contains("memory"), "{e}");
    let e = error(&["rl.max_new_tokens=5000"]);
    assert!(e.contains("context") && e.contains("1024"), "{e}");
}

/// Accuracy is a named reward of the stack: `eval.metric`, by default the first answer rule.
#[test]
fn eval_metric_names_a_reward_of_the_stack_and_defaults_to_the_first_answer_rule() {
    assert_eq!(load(&[]).unwrap().eval_metric().unwrap(), "exact_match");
    // A shaping reward before the rule does not become the accuracy.
    let text = tiny_with(
        "[[rewards]]\nkind = \"exact_match\"",
        "[[rewards]]\nkind = \"format\"\nweight = 0.1\n\n[[rewards]]\nkind = \"numeric\"\nname = \
         \"digit\"\n\n[[rewards]]\nkind = \"exact_match\"",
    );
    let config = TrainConfig::from_toml_str(&text, "tiny.toml", &[]).unwrap();
    assert_eq!(config.eval_metric().unwrap(), "digit");
    let overrides = vec!["eval.metric=\"exact_match\"".to_string()];
    let config = TrainConfig::from_toml_str(&text, "tiny.toml", &overrides).unwrap();
    assert_eq!(config.eval_metric().unwrap(), "exact_match");

    let e = error(&["eval.metric=\"accuracy\""]);
    assert!(
        e.contains("eval.metric") && e.contains("\"accuracy\"") && e.contains("`exact_match`"),
        "{e}"
    );
    let shaping_only = tiny_with(
        "[[rewards]]\nkind = \"exact_match\"",
        "[[rewards]]\nkind = \"format\"",
    );
    let e = TrainConfig::from_toml_str(&shaping_only, "tiny.toml", &[])
        .unwrap_err()
        .to_string();
    assert!(
        e.contains("eval.metric") && e.contains("no answer rule") && e.contains("`format`"),
        "{e}"
    );
}

/// `configs/qwen3-vl-2b-gspo.toml`, the documented starting point for a real run, loads and
/// validates: against the tiny fixture checkpoint standing in for the 2B download (the limits
/// check reads its config and tokenizer), with the dataset paths given on the command line.
#[test]
fn the_qwen3_vl_2b_config_loads_and_validates() {
    let root = Path::new(env!("CARGO_MANIFEST_DIR")).join("..");
    let path = root.join("configs/qwen3-vl-2b-gspo.toml");
    let dir = tempfile::tempdir().unwrap();
    for name in ["train.jsonl", "eval.jsonl"] {
        std::fs::write(
            dir.path().join(name),
            "{\"messages\": [{\"role\": \"user\", \"content\": \"1+1?\"}], \"answer\": \"2\"}\n",
        )
        .unwrap();
    }
    // The stand-in: the fixture's tokenizer and pixel settings, its config with Qwen3-VL-2B's
    // context (262,144 positions), so the lengths are checked against the real limit while the
    // memory estimate stays the tiny model's.
    let fixture = root.join("model/tests/data/qwen3vl-tiny-a");
    let stand_in = dir.path().join("Qwen3-VL-2B-Instruct");
    std::fs::create_dir(&stand_in).unwrap();
    for name in ["tokenizer.json", "preprocessor_config.json"] {
        std::fs::copy(fixture.join(name), stand_in.join(name)).unwrap();
    }
    let mut model: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture.join("config.json")).unwrap())
            .unwrap();
    model["text_config"]["max_position_embeddings"] = 262_144.into();
    std::fs::write(stand_in.join("config.json"), model.to_string()).unwrap();
    let overrides = vec![
        format!("model.source={:?}", stand_in.display().to_string()),
        format!(
            "data.train={:?}",
            dir.path().join("train.jsonl").display().to_string()
        ),
        format!(
            "data.eval={:?}",
            dir.path().join("eval.jsonl").display().to_string()
        ),
    ];
    let config = TrainConfig::load(&path, &overrides).unwrap();
    assert_eq!(
        config.model.precision,
        temper_learner::train::config::Precision::Bf16
    );
    assert_eq!(config.rl.loss.kind(), "gspo");
    assert!((8..=16).contains(&config.rl.group_size));
    assert_eq!(config.eval_metric().unwrap(), "math");
    assert_eq!(config.sft.steps, 0);
    // SAPO is one override away.
    let mut sapo = overrides.clone();
    sapo.push("rl.loss.kind=\"sapo\"".into());
    assert_eq!(
        TrainConfig::load(&path, &sapo).unwrap().rl.loss.kind(),
        "sapo"
    );
    // As shipped, before the download, the error says which key to fix.
    let e = TrainConfig::load(&path, &[]).unwrap_err().to_string();
    assert!(
        e.contains("model.source") && e.contains("Qwen3-VL-2B-Instruct"),
        "{e}"
    );
}
