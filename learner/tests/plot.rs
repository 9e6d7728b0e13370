//! `progress.svg`: the legend is drawn outside the axes, so it never covers a curve.

use serde_json::{Map, Value, json};
use temper_learner::train::plot;

fn record(stage: &str, step: usize, key: &str, value: f64) -> Map<String, Value> {
    let Value::Object(map) = json!({"stage": stage, "global_step": step, key: value}) else {
        unreachable!()
    };
    map
}

/// The `y` attribute of the `<text>` element whose content (whitespace trimmed: plotters writes
/// it on its own line) is `label`.
fn text_y(svg: &str, label: &str) -> f64 {
    let (open, _) = svg
        .match_indices("<text")
        .find(|&(open, _)| {
            let rest = &svg[open..];
            let body_start = rest.find('>').map_or(rest.len(), |i| i + 1);
            let body_end = rest.find("</text>").unwrap_or(rest.len());
            body_start <= body_end && rest[body_start..body_end].trim() == label
        })
        .unwrap_or_else(|| panic!("no text {label:?}"));
    let tag = &svg[open..open + svg[open..].find('>').unwrap()];
    let y = &tag[tag.find(" y=\"").unwrap() + 4..];
    y[..y.find('"').unwrap()].parse().unwrap()
}

/// Defect: the legend sat inside the axes (lower right), over the RL curves, which run to the
/// right edge at any height.
#[test]
fn the_legend_sits_below_the_axes_not_over_the_rl_curves() {
    let mut records = vec![record("eval", 0, "accuracy", 0.2)];
    records.push(record("eval", 50, "accuracy", 0.3));
    for step in 51..=100 {
        // Low rewards and accuracies at the right: where a lower-right legend would sit.
        records.push(record("rl", step, "reward_mean", 0.1));
        let mut r = record("rl", step, "train_accuracy", 0.05);
        r.insert("reward_mean".into(), json!(0.1));
        records.push(r);
    }
    records.push(record("eval", 100, "accuracy", 0.1));
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path().join("progress.svg");
    plot::draw(&records, &path).unwrap();
    let svg = std::fs::read_to_string(&path).unwrap();
    // The x axis title is the lowest text of the axes; every legend entry is below it.
    let axis_title = text_y(&svg, "step (SFT, then RL)");
    for label in [
        "train accuracy (RL samples, smoothed)",
        "reward mean (smoothed)",
        "held-out accuracy",
    ] {
        let y = text_y(&svg, label);
        assert!(
            y > axis_title,
            "{label:?} at y {y}, inside the axes (title at {axis_title})"
        );
    }
}
