//! Stage 2, one step: sample and score groups ([`sampling`](super::sampling)), compute group
//! advantages, and apply `epochs × mini_batches` policy-gradient updates of the configured
//! objective on the kept groups' scored samples.

use std::time::Instant;

use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use temper_model::FinishReason;
use temper_model::logprobs::EntropyGrad;
use temper_model::processor::PreparedPrompt;
use temper_rewards::rollout::Sample;

use super::TrainError;
use super::accumulate::{MicroBatch, micro_rows};
use super::evaluation::metric_values;
use super::observer::Progress;
use super::records::{AdvantageRecord, DynamicSamplingRecord, RlRecord, StepRecord};
use super::sampling::Sampled;
use super::trainer::Trainer;
use super::update_stats::UpdateStats;
use crate::objectives::{Advantages, Aggregation, PolicyInputs};

impl<B: AutodiffBackend> Trainer<B> {
    /// One RL step.
    pub(super) fn rl_step(&mut self) -> Result<(), TrainError> {
        let started = Instant::now();
        let rl = self.config.rl.clone();

        // 1–2. Sample from the current policy (a detached copy), score, and compute advantages
        // within each prompt's group; with dynamic sampling, in rounds until enough groups teach.
        let Sampled {
            prompts,
            groups,
            rewards,
            kept_groups,
            rounds,
            generation_seconds,
            scoring_seconds,
        } = self.sample_groups(&rl)?;
        let estimator = rl
            .advantage
            .unwrap_or_else(|| rl.loss.advantage_estimator());
        let advantages = rewards.advantages(&estimator, rl.group_size)?;

        // 3. Updates on the kept groups' rows that were scored (quarantined ones are left out).
        let learner_started = Instant::now();
        let trained: Vec<usize> = kept_groups
            .iter()
            .flat_map(|&g| g * rl.group_size..(g + 1) * rl.group_size)
            .filter(|&i| rewards.total[i].is_some())
            .collect();
        // Sample `i` of the step (prompt-major) is sample `i % G` of group `i / G`.
        let rows: Vec<(&PreparedPrompt, &Sample)> = groups
            .iter()
            .zip(&prompts)
            .flat_map(|(g, p)| g.samples.iter().map(move |s| (&p.prepared, s)))
            .collect();
        let updates_per_step = rl.epochs * rl.mini_batches;
        let mut stats = UpdateStats::default();
        let mut sequence_tokens = 0usize;
        for epoch in 0..rl.epochs {
            for mini in split_even(&trained, rl.mini_batches) {
                if mini.is_empty() {
                    continue;
                }
                let measure_mismatch = epoch == 0 && stats.updates == 0;
                let (grads, tokens) =
                    self.policy_gradient(&rows, &advantages, mini, measure_mismatch, &mut stats)?;
                sequence_tokens += tokens;
                let (grad_norm, lr) =
                    self.apply_update(grads, &rl.optim, rl.steps * updates_per_step);
                stats.grad_norms.push(grad_norm);
                stats.lr = lr;
                stats.updates += 1;
            }
        }
        let learner_seconds = learner_started.elapsed().as_secs_f64();
        self.state.rl_cursor += (rounds * rl.prompts_per_step) as u64;
        self.state.step += 1;

        // 4. The record.
        let seconds = started.elapsed().as_secs_f64();
        let samples = rows.len() as f64;
        let generated: usize = rows.iter().map(|(_, s)| s.generated_tokens()).sum();
        let mut correct = 0.0;
        for group in &groups {
            correct += metric_values(group, &self.metric)?.sum::<f64>();
        }
        let stopped = rows
            .iter()
            .filter(|(_, s)| s.finish == FinishReason::Stop)
            .count();
        let record = StepRecord::Rl(Box::new(RlRecord {
            at: self.position(),
            rewards: rewards.record(),
            train_accuracy: correct / samples,
            advantages: AdvantageRecord::of(&advantages, &trained),
            dynamic_sampling: rl.dynamic_sampling.map(|_| DynamicSamplingRecord {
                rounds,
                kept_groups: kept_groups.len(),
                informative_fraction: groups.iter().filter(|g| g.informative()).count() as f64
                    / groups.len() as f64,
            }),
            update: stats.record(&rl.loss),
            response_length_mean: generated as f64 / samples,
            stopped_fraction: stopped as f64 / samples,
            seconds,
            generated_tokens_per_second: generated as f64 / generation_seconds,
            tokens_per_second: sequence_tokens as f64 / learner_seconds,
            time_share_generation: generation_seconds / seconds,
            time_share_reward: scoring_seconds / seconds,
            time_share_update: learner_seconds / seconds,
        }));
        self.observer.advance(Progress::Step(&record));
        self.write_record(&record)
    }

    /// Accumulated policy gradient of one mini-batch (`rows`); returns the gradients and the
    /// sequence tokens processed.
    fn policy_gradient(
        &self,
        samples: &[(&PreparedPrompt, &Sample)],
        advantages: &[f32],
        rows: &[usize],
        measure_mismatch: bool,
        stats: &mut UpdateStats,
    ) -> Result<(GradientsParams, usize), TrainError> {
        let rl = &self.config.rl;
        let loss = rl.loss;
        let aggregation = loss.aggregation();
        // Each micro-batch's loss is weighted by its share of what the objective averages over.
        let share = |chunk: &[usize]| -> f64 {
            let count = |set: &[usize], f: &dyn Fn(usize) -> usize| -> usize {
                set.iter()
                    .map(|&i| f(samples[i].1.generated_tokens()))
                    .sum()
            };
            match aggregation {
                Aggregation::SeqMeanTokenMean => {
                    let nonempty = |n: usize| usize::from(n > 0);
                    count(chunk, &nonempty) as f64 / count(rows, &nonempty).max(1) as f64
                }
                Aggregation::TokenMean => {
                    count(chunk, &|n| n) as f64 / count(rows, &|n| n).max(1) as f64
                }
                Aggregation::TokenSumNorm { .. } => chunk.len() as f64 / rows.len() as f64,
            }
        };
        let micro = micro_rows(rl.micro_batch_rows, rows.len());
        let device = self.device.clone();
        // The entropy bonus averages over the mini-batch's generated tokens.
        let bonus = (rl.entropy_coef > 0.0).then(|| {
            let tokens: usize = rows.iter().map(|&i| samples[i].1.generated_tokens()).sum();
            rl.entropy_coef / tokens.max(1) as f64
        });
        let entropy_grad = match bonus {
            Some(_) => EntropyGrad::Tracked,
            None => EntropyGrad::Metric,
        };
        let accumulated = self.accumulate(
            samples,
            rows,
            micro,
            rl.temperature,
            entropy_grad,
            |chunk, micro| {
                let MicroBatch {
                    batch,
                    scores,
                    mask,
                } = micro;
                let behaviour: Vec<&[f32]> = chunk
                    .iter()
                    .map(|&i| samples[i].1.behaviour_logprobs.as_slice())
                    .collect();
                let old_logprobs = batch.align(&behaviour, 0.0, &device);
                if measure_mismatch {
                    stats.record_mismatch(
                        scores.logprobs.clone().detach(),
                        old_logprobs.clone(),
                        mask.clone(),
                    );
                }
                let chunk_advantages: Vec<f32> = chunk.iter().map(|&i| advantages[i]).collect();
                let n = chunk_advantages.len();
                let advantages =
                    Tensor::<B, 1>::from_data(TensorData::new(chunk_advantages, [n]), &device);
                // − β × Σ entropy / generated tokens of the mini-batch.
                let bonus = bonus
                    .map(|per_token| (scores.entropy * mask.clone()).sum().mul_scalar(per_token));
                let output = loss.compute(PolicyInputs {
                    logprobs: scores.logprobs,
                    old_logprobs,
                    ref_logprobs: None,
                    advantages: Advantages::Sequence(advantages),
                    mask,
                })?;
                let weight = share(chunk);
                stats.add(&output.metrics, weight);
                let share_of_loss = output.loss * weight;
                Ok(match bonus {
                    Some(bonus) => share_of_loss - bonus,
                    None => share_of_loss,
                })
            },
        )?;
        stats.entropy_sum += accumulated.entropy_sum;
        stats.entropy_tokens += accumulated.trained_tokens;
        Ok((accumulated.grads, accumulated.sequence_tokens))
    }
}

/// Splits `items` into `parts` contiguous, near-equal slices.
fn split_even(items: &[usize], parts: usize) -> Vec<&[usize]> {
    let parts = parts.max(1);
    let base = items.len() / parts;
    let extra = items.len() % parts;
    let mut out = Vec::with_capacity(parts);
    let mut start = 0;
    for p in 0..parts {
        let len = base + usize::from(p < extra);
        out.push(&items[start..start + len]);
        start += len;
    }
    out
}

#[cfg(test)]
mod tests {
    use super::split_even;

    #[test]
    fn split_even_keeps_every_item_in_order() {
        let items: Vec<usize> = (0..7).collect();
        let parts = split_even(&items, 3);
        assert_eq!(parts, vec![&items[0..3], &items[3..5], &items[5..7]]);
        assert_eq!(split_even(&items, 0), vec![&items[..]]);
    }
}
