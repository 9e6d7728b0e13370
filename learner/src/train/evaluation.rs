//! Held-out evaluation: greedy answers to the first `eval.examples` prompts of the eval split,
//! decoded through the rollout source and scored there by the run's reward stack. The accuracy
//! is the mean of one named reward of that stack (`eval.metric`, by default the first answer
//! rule); a prompt the reward did not score counts as wrong.

use burn::tensor::backend::AutodiffBackend;
use temper_model::SamplingParams;
use temper_rewards::RolloutError;
use temper_rewards::rollout::Group;

use super::TrainError;
use super::observer::Progress;
use super::records::{EvalPoint, EvalRecord, StepRecord};
use super::trainer::Trainer;
use crate::tasks::task::Split;

/// The values of the reward `metric` over `group`'s samples, unscored as 0.
pub(super) fn metric_values<'a>(
    group: &'a Group,
    metric: &str,
) -> Result<impl Iterator<Item = f64> + 'a, TrainError> {
    let component = group
        .components
        .iter()
        .find(|c| c.name == metric)
        .ok_or_else(|| {
            TrainError::Rollout(RolloutError::new(format!(
                "the rollout source's groups carry no `{metric}` reward (they have: {}); a \
                 source scores with the run's [[rewards]]",
                group
                    .components
                    .iter()
                    .map(|c| format!("`{}`", c.name))
                    .collect::<Vec<_>>()
                    .join(", ")
            )))
        })?;
    Ok(component.values.iter().map(|v| v.unwrap_or(0.0)))
}

impl<B: AutodiffBackend> Trainer<B> {
    /// Evaluates the current policy; records and returns the accuracy.
    pub(super) fn evaluate(&mut self, point: EvalPoint) -> Result<f64, TrainError> {
        let eval = self.config.eval.clone();
        let phase = format!("eval {}", point.as_str());
        self.observer.begin(&phase, eval.examples, 0);
        let policy = self.inference_policy();
        let params = SamplingParams {
            stop_token_ids: self.processor.stop_token_ids.clone(),
            suppress_token_ids: self.suppressed.clone(),
            ..SamplingParams::greedy(eval.max_new_tokens)
        };
        let mut score_sum = 0.0;
        let mut start = 0usize;
        while start < eval.examples {
            let end = (start + eval.batch_size).min(eval.examples);
            // Greedy: the seeds draw nothing.
            let prompts = (start..end)
                .map(|i| self.prompt(Split::Eval, i as u64, 0))
                .collect::<Result<Vec<_>, _>>()?;
            let rollouts = self.rollouts(&policy, &prompts, 1, params.clone())?;
            for group in &rollouts.groups {
                score_sum += metric_values(group, &self.metric)?.sum::<f64>();
            }
            self.observer.advance(Progress::Eval {
                done: end,
                accuracy: score_sum / end as f64,
            });
            start = end;
        }
        self.observer.end(&phase);
        let accuracy = score_sum / eval.examples as f64;
        let record = StepRecord::Eval(EvalRecord {
            at: self.position(),
            point,
            accuracy,
            metric: self.metric.clone(),
            examples: eval.examples,
        });
        self.write_record(&record)?;
        self.observer.note(&format!(
            "held-out accuracy ({}): {:.1}%",
            point.as_str(),
            100.0 * accuracy
        ));
        Ok(accuracy)
    }
}
