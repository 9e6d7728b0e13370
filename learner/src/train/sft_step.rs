//! Stage 1, one step: cross-entropy on the reference answers of `sft.batch_size` training
//! prompts (each answer followed by the end-of-turn token), one optimiser update.

use std::time::Instant;

use burn::tensor::backend::AutodiffBackend;
use temper_model::FinishReason;
use temper_model::logprobs::EntropyGrad;
use temper_model::processor::PreparedPrompt;
use temper_rewards::rollout::Sample;

use super::TrainError;
use super::accumulate::{MicroBatch, micro_rows};
use super::observer::Progress;
use super::records::{SftRecord, StepRecord};
use super::trainer::Trainer;
use crate::objectives::sft;
use crate::tasks::task::Split;

impl<B: AutodiffBackend> Trainer<B> {
    /// One SFT step.
    pub(super) fn sft_step(&mut self) -> Result<(), TrainError> {
        let started = Instant::now();
        let sft = self.config.sft.clone();
        let cursor = self.state.sft_cursor;

        // 1. The batch: prompts and their reference answers as samples every token of which is
        //    trained on.
        let prompts = (0..sft.batch_size as u64)
            .map(|i| self.prompt(Split::Train, cursor + i, 0))
            .collect::<Result<Vec<_>, _>>()?;
        let im_end = self.processor.special.im_end;
        let answers: Vec<Sample> = prompts
            .iter()
            .map(|p| {
                let reference = p.reference.as_deref().unwrap_or_default();
                let mut ids = self
                    .processor
                    .tokenizer
                    .encode(reference)
                    .map_err(temper_model::ModelError::from)?;
                ids.push(im_end);
                Ok(Sample {
                    response_mask: vec![1; ids.len()],
                    behaviour_logprobs: vec![0.0; ids.len()],
                    token_ids: ids,
                    images: Vec::new(),
                    turns: Vec::new(),
                    finish: FinishReason::Stop,
                    policy_version: self.state.policy_version,
                })
            })
            .collect::<Result<_, TrainError>>()?;
        let rows: Vec<(&PreparedPrompt, &Sample)> = prompts
            .iter()
            .zip(&answers)
            .map(|(p, a)| (&p.prepared, a))
            .collect();
        let total_tokens: usize = answers.iter().map(|a| a.token_ids.len()).sum();

        // 2. Token-mean cross-entropy: each micro-batch weighted by its share of the tokens.
        let mut loss_sum = 0.0;
        let all: Vec<usize> = (0..rows.len()).collect();
        let micro = micro_rows(sft.micro_batch_rows, rows.len());
        let accumulated = self.accumulate(
            &rows,
            &all,
            micro,
            1.0,
            EntropyGrad::Metric,
            |_, micro_batch| {
                let MicroBatch { scores, mask, .. } = micro_batch;
                let output = sft::cross_entropy(scores.logprobs, mask)?;
                let weight = output.metrics.tokens as f64 / total_tokens.max(1) as f64;
                loss_sum += output.metrics.loss * weight;
                Ok(output.loss * weight)
            },
        )?;

        // 3. One update on stage 1's schedule.
        let (grad_norm, lr) = self.apply_update(accumulated.grads, &sft.optim, sft.steps);
        self.state.sft_cursor += sft.batch_size as u64;
        self.state.step += 1;

        let seconds = started.elapsed().as_secs_f64();
        let record = StepRecord::Sft(SftRecord {
            at: self.position(),
            loss: loss_sum,
            entropy: accumulated.entropy_sum / total_tokens.max(1) as f64,
            grad_norm,
            lr,
            response_tokens: total_tokens,
            seconds,
            tokens_per_second: accumulated.sequence_tokens as f64 / seconds,
        });
        self.observer.advance(Progress::Step(&record));
        self.write_record(&record)
    }
}
