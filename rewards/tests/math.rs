//! The `math` reward against its test table, `tests/data/math_cases.jsonl` (written by
//! `tests/data/math_cases.py`; several hundred reference/response pairs with the verdict a careful
//! grader gives, by category). Prints a per-category table of agreement, false positives (scored
//! 1 where the verdict is "not equal": the failure a policy learns to game) and false negatives,
//! and asserts: no false positive, and every disagreement is one of the accepted false negatives
//! the table marks with `accept_fn` and its reason.
//!
//! Also: the cases of `numeric`'s own tests keep their verdict under `math`, except the changes
//! listed (and argued) in `NUMERIC_CHANGES`; and the kind is reachable through the config.

use std::collections::BTreeMap;

use serde::Deserialize;
use temper_rewards::builtin::math::{MathAnswer, MathConfig};
use temper_rewards::{RewardSet, RewardSetConfig, Sample};

#[derive(Deserialize)]
struct Case {
    category: String,
    reference: String,
    response: String,
    expected: String,
    #[serde(default)]
    config: Option<serde_json::Value>,
    #[serde(default)]
    accept_fn: Option<String>,
}

#[derive(Default)]
struct Row {
    cases: usize,
    agree: usize,
    false_pos: usize,
    false_neg: usize,
    quarantine_wrong: usize,
}

fn verdict(config: &MathConfig, reference: &str, response: &str) -> &'static str {
    match MathAnswer::new(config.clone()).verdict(reference, response) {
        Ok(Some(s)) => {
            if s == 1.0 {
                "equal"
            } else {
                "not_equal"
            }
        }
        Ok(None) => "not_applicable",
        Err(_) => "quarantine",
    }
}

#[test]
fn the_table_has_no_false_positive_and_only_accepted_false_negatives() {
    let text = include_str!("data/math_cases.jsonl");
    let mut rows: BTreeMap<String, Row> = BTreeMap::new();
    let mut unexpected = vec![];
    let mut accepted = vec![];
    let mut total = 0;
    for (i, line) in text.lines().enumerate() {
        let case: Case =
            serde_json::from_str(line).unwrap_or_else(|e| panic!("line {}: {e}", i + 1));
        let config: MathConfig = match &case.config {
            Some(c) => {
                serde_json::from_value(c.clone()).unwrap_or_else(|e| panic!("line {}: {e}", i + 1))
            }
            None => MathConfig::default(),
        };
        config.validate().unwrap();
        let got = verdict(&config, &case.reference, &case.response);
        let row = rows.entry(case.category.clone()).or_default();
        row.cases += 1;
        total += 1;
        let describe = || {
            format!(
                "line {} [{}] reference `{}` response `{}`: expected {}, got {got}",
                i + 1,
                case.category,
                case.reference,
                case.response.chars().take(80).collect::<String>(),
                case.expected
            )
        };
        if got == case.expected {
            row.agree += 1;
            assert!(
                case.accept_fn.is_none(),
                "{} — marked accept_fn but agrees now: unmark it",
                describe()
            );
            continue;
        }
        match (case.expected.as_str(), got) {
            ("not_equal", "equal") => {
                row.false_pos += 1;
                unexpected.push(format!("FALSE POSITIVE {}", describe()));
            }
            ("equal", "not_equal") => {
                row.false_neg += 1;
                match &case.accept_fn {
                    Some(why) => accepted.push(format!("{} ({why})", describe())),
                    None => unexpected.push(format!("false negative {}", describe())),
                }
            }
            _ => {
                row.quarantine_wrong += 1;
                unexpected.push(format!("wrong outcome {}", describe()));
            }
        }
    }
    println!(
        "{:<12} {:>5} {:>6} {:>7} {:>3} {:>3} {:>3}",
        "category", "cases", "agree", "agree%", "FP", "FN", "Q?"
    );
    let (mut agree, mut fp, mut fneg) = (0, 0, 0);
    for (name, r) in &rows {
        println!(
            "{:<12} {:>5} {:>6} {:>6.1}% {:>3} {:>3} {:>3}",
            name,
            r.cases,
            r.agree,
            100.0 * r.agree as f64 / r.cases as f64,
            r.false_pos,
            r.false_neg,
            r.quarantine_wrong
        );
        agree += r.agree;
        fp += r.false_pos;
        fneg += r.false_neg;
    }
    println!(
        "{:<12} {:>5} {:>6} {:>6.1}% {:>3} {:>3}",
        "all",
        total,
        agree,
        100.0 * agree as f64 / total as f64,
        fp,
        fneg
    );
    for a in &accepted {
        println!("accepted FN: {a}");
    }
    assert!(total >= 300, "the table has only {total} cases");
    assert!(
        unexpected.is_empty(),
        "{} disagreements:\n{}",
        unexpected.len(),
        unexpected.join("\n")
    );
}

/// Cases from `numeric`'s tests (response, reference) whose verdict `math` changes, and why.
const NUMERIC_CHANGES: &[(&str, &str, &str)] = &[
    (
        "3 or 4",
        "4",
        "hedging: `numeric` reads the last number, `math` reads no answer",
    ),
    (
        "50%",
        "50",
        "`math` defaults to `percent = \"either\"` (`50\\%` answers \"what percent\"); `numeric` to `fraction`",
    ),
];

/// `numeric`'s scored cases (response, reference, numeric's verdict), copied from its tests.
const NUMERIC_CASES: &[(&str, &str, f64)] = &[
    ("The answer is 3", "3", 1.0),
    ("3.0000001", "3", 1.0),
    ("3.001", "3", 0.0),
    (r"\boxed{\frac{1}{2}}", "0.5", 1.0),
    ("0.5", r"\frac{1}{2}", 1.0),
    (r"\boxed{1,234}", "1234", 1.0),
    ("1e-3", "0.001", 1.0),
    ("50%", "0.5", 1.0),
    ("50%", "50%", 1.0),
    ("0.5", "50%", 1.0),
    ("50%", "50", 0.0),
    (r"maybe 4, so \boxed{3}. Check: 4 - 1 = 3", "3", 1.0),
    (r"\boxed{3} then 4", "4", 0.0),
    (r"\boxed{4} no wait \boxed{3}", "3", 1.0),
    (r"\boxed{3 \text{ or } 4}", "3", 0.0),
    (r"\boxed{3, 4}", "4", 0.0),
    ("3 or 4", "3", 0.0),
    ("3 or 4", "4", 1.0),
    ("1 2 3 4 5 6 7 8 9 10", "3", 0.0),
    ("<answer>1, 2, 3, 4, 5</answer>", "3", 0.0),
    ("<answer>3</answer> (or maybe 4)", "3", 1.0),
    ("", "3", 0.0),
    ("I don't know", "0", 0.0),
    ("NaN", "0", 0.0),
    ("inf", "1e308", 0.0),
    ("1e999", "1e308", 0.0),
    ("1e308", "5", 0.0),
    ("12345678901234567890", "1.234567890123456789e19", 1.0),
];

fn score(kind: &str, response: &str, reference: &str) -> Option<f64> {
    let config: RewardSetConfig =
        serde_json::from_str(&format!(r#"{{"rewards": [{{"kind": "{kind}"}}]}}"#)).unwrap();
    let set = RewardSet::from_config(&config).unwrap();
    let batch = set
        .score_blocking(&[Sample::new("", response).with_reference(reference)])
        .unwrap();
    batch.totals[0].clone().unwrap()
}

#[test]
fn numeric_cases_keep_their_verdict_except_the_argued_changes() {
    let mut cases: Vec<(String, String, f64)> = NUMERIC_CASES
        .iter()
        .map(|(a, b, v)| (a.to_string(), b.to_string(), *v))
        .collect();
    cases.push(("9".repeat(400), "5".into(), 0.0));
    for (response, reference, numeric_verdict) in &cases {
        assert_eq!(
            score("numeric", response, reference),
            Some(*numeric_verdict),
            "the copy of numeric's case `{response}` vs `{reference}` is out of date"
        );
        let math = score("math", response, reference);
        let changed = NUMERIC_CHANGES
            .iter()
            .find(|c| c.0 == response && c.1 == reference);
        match changed {
            Some((_, _, why)) => assert_ne!(
                math,
                Some(*numeric_verdict),
                "listed change no longer applies: {why}"
            ),
            None => assert_eq!(
                math,
                Some(*numeric_verdict),
                "`{response}` vs `{reference}`"
            ),
        }
    }
}

#[test]
fn math_is_a_config_kind_with_its_options() {
    let config: RewardSetConfig = toml::from_str(
        r#"
        [[rewards]]
        kind = "math"
        rel_tol = 1e-4
        strict_equations = true
        extract = ["boxed", "last_line"]
        "#,
    )
    .unwrap();
    config.validate().unwrap();
    let err = toml::from_str::<RewardSetConfig>("[[rewards]]\nkind = \"math\"\ntolerance = 1\n")
        .unwrap_err()
        .to_string();
    assert!(err.contains("unknown field `tolerance`"), "{err}");
    let set = RewardSet::from_config(&config).unwrap();
    let batch = set
        .score_blocking(&[
            Sample::new("", r"so \boxed{x = 3}").with_reference("x = 3"),
            Sample::new("", r"so \boxed{3}").with_reference("x = 3"),
            Sample::new("", "3"),
        ])
        .unwrap();
    assert_eq!(batch.totals[0], Ok(Some(1.0)));
    assert_eq!(batch.totals[1], Ok(Some(0.0)));
    assert_eq!(batch.totals[2], Ok(None));
}
