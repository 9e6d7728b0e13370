//! `progress.svg`: training reward per RL step and held-out accuracy per evaluation, over the
//! run's global step (SFT steps first, then RL steps), drawn with `plotters`.

use std::path::Path;

use plotters::prelude::*;
use serde_json::{Map, Value};

/// One point series: `(global step, value)`.
type Series = Vec<(f64, f64)>;

fn number(record: &Map<String, Value>, key: &str) -> Option<f64> {
    record.get(key).and_then(Value::as_f64)
}

/// Draws reward (mean per RL step), SFT loss and eval accuracy from the metrics records.
pub fn draw(records: &[Map<String, Value>], path: &Path) -> Result<(), String> {
    let mut reward: Series = Vec::new();
    let mut train_accuracy: Series = Vec::new();
    let mut eval_accuracy: Series = Vec::new();
    for record in records {
        let (Some(step), Some(stage)) = (
            number(record, "global_step"),
            record.get("stage").and_then(Value::as_str),
        ) else {
            continue;
        };
        match stage {
            "rl" => {
                if let Some(r) = number(record, "reward_mean") {
                    reward.push((step, r));
                }
                if let Some(a) = number(record, "train_accuracy") {
                    train_accuracy.push((step, a));
                }
            }
            "eval" => {
                if let Some(a) = number(record, "accuracy") {
                    eval_accuracy.push((step, a));
                }
            }
            _ => {}
        }
    }
    let last_step = records
        .iter()
        .filter_map(|r| number(r, "global_step"))
        .fold(1.0_f64, f64::max);
    let (low, high) = reward
        .iter()
        .chain(&eval_accuracy)
        .map(|p| p.1)
        .fold((0.0_f64, 1.0_f64), |(lo, hi), v| (lo.min(v), hi.max(v)));

    let root = SVGBackend::new(path, (900, 540)).into_drawing_area();
    let err = |e: &dyn std::fmt::Display| format!("drawing {}: {e}", path.display());
    root.fill(&WHITE).map_err(|e| err(&e))?;
    // The legend gets its own strip below the axes: inside them it covered the RL curves,
    // which run to the right edge at any height.
    let (plot_area, legend_area) = root.split_vertically(500);
    let mut chart = ChartBuilder::on(&plot_area)
        .caption("Temper: reward and held-out accuracy", ("sans-serif", 22))
        .margin(12)
        .x_label_area_size(40)
        .y_label_area_size(50)
        .build_cartesian_2d(0.0..last_step, low..high)
        .map_err(|e| err(&e))?;
    chart
        .configure_mesh()
        .x_desc("step (SFT, then RL)")
        .y_desc("reward / accuracy")
        .draw()
        .map_err(|e| err(&e))?;
    let blue = RGBColor(40, 90, 200);
    let grey = RGBColor(150, 150, 150);
    let red = RGBColor(210, 50, 40);
    chart
        .draw_series(LineSeries::new(smooth(&train_accuracy, 9), &grey))
        .map_err(|e| err(&e))?;
    chart
        .draw_series(LineSeries::new(smooth(&reward, 9), &blue))
        .map_err(|e| err(&e))?;
    chart
        .draw_series(LineSeries::new(eval_accuracy.clone(), red.stroke_width(2)))
        .map_err(|e| err(&e))?;
    chart
        .draw_series(
            eval_accuracy
                .iter()
                .map(|&p| Circle::new(p, 4, red.filled())),
        )
        .map_err(|e| err(&e))?;
    let mut x = 62;
    for (label, colour) in [
        (TRAIN_ACCURACY_LABEL, grey),
        (REWARD_LABEL, blue),
        (EVAL_ACCURACY_LABEL, red),
    ] {
        legend_area
            .draw(&PathElement::new(
                vec![(x, 20), (x + 24, 20)],
                colour.stroke_width(2),
            ))
            .map_err(|e| err(&e))?;
        legend_area
            .draw(&Text::new(label, (x + 30, 12), ("sans-serif", 14)))
            .map_err(|e| err(&e))?;
        x += 30 + 7 * label.len() as i32 + 30;
    }
    root.present().map_err(|e| err(&e))
}

/// Legend label of the training accuracy.
pub const TRAIN_ACCURACY_LABEL: &str = "train accuracy (RL samples, smoothed)";
/// Legend label of the reward curve.
pub const REWARD_LABEL: &str = "reward mean (smoothed)";
/// Legend label of the evaluations.
pub const EVAL_ACCURACY_LABEL: &str = "held-out accuracy";

/// Centred moving average over `width` points (noisy per-step rewards read better smoothed).
fn smooth(points: &Series, width: usize) -> Series {
    let half = width / 2;
    (0..points.len())
        .map(|i| {
            let lo = i.saturating_sub(half);
            let hi = (i + half + 1).min(points.len());
            let mean = points[lo..hi].iter().map(|p| p.1).sum::<f64>() / (hi - lo) as f64;
            (points[i].0, mean)
        })
        .collect()
}
