//! Token picking on the device: of a step's `[R, V]` logits only the chosen ids and their
//! behaviour log-probs come back to the host.
//!
//! Why: `generate` used to copy every row's logits to the host and sample there. On an H100 with
//! the 2B shape that cost 18.6 ms per row per token for temperature-1 sampling and 1.9 ms greedy
//! (bench/results/h100-2026-11-26): at batch 64 more than a second per step, against a
//! ~180 ms decode step. Here a step moves `R × 4` floats.
//!
//! Rows that use the full (un-truncated) distribution are picked here — what RL rollouts use,
//! since truncation biases the behaviour log-probs:
//! - greedy (temperature 0): the argmax of the logits;
//! - sampling: inverse CDF in vocabulary order, `token = #{ i : cdf_i ≤ u · cdf_V }`, with `u`
//!   the row's next uniform from its seeded [`Sampler`] stream. The host sampler draws untruncated
//!   rows the same way from the same stream, so both paths give the same tokens up to float
//!   rounding at a CDF boundary (f32 here, f64 on the host).
//!
//! Top-k / top-p rows need a per-row sort; [`DevicePicker::new`] refuses them and `generate`
//! keeps the host path. Log-probs are an f32 log-softmax of the temperature-scaled, suppressed
//! logits (see [`crate::sampling`] for which distribution they describe), whatever the model dtype.

use burn::prelude::*;
use burn::tensor::{DType, FloatDType};

use crate::sampling::{Sampler, SamplingParams};

/// Picks one token per row on the device; built once per `generate` call.
#[derive(Debug, Clone)]
pub struct DevicePicker<B: Backend> {
    /// `[R, 1]`: `1 / temperature` (1 for greedy rows, whose log-probs use temperature 1).
    inv_temperature: Tensor<B, 2>,
    /// `[1 or R, V]`: 0, or −∞ on suppressed tokens; `None` when nothing is suppressed.
    suppress: Option<Tensor<B, 2>>,
    /// Whether row `r` is greedy (takes the argmax, draws no uniform).
    greedy: Vec<bool>,
    vocab: usize,
}

/// One step's picks.
#[derive(Debug, Clone, PartialEq)]
pub struct Picks {
    pub tokens: Vec<u32>,
    pub logprobs: Vec<f32>,
}

impl<B: Backend> DevicePicker<B> {
    /// A picker for rows with `params[r]`, or `None` when some row truncates the distribution
    /// (top-k or top-p), which only the host sampler does.
    pub fn new(params: &[&SamplingParams], vocab: usize, device: &B::Device) -> Option<Self> {
        let truncated = |p: &SamplingParams| p.top_p < 1.0 || (p.top_k > 0 && p.top_k < vocab);
        if params.is_empty() || params.iter().any(|p| truncated(p)) {
            return None;
        }
        let rows = params.len();
        let greedy: Vec<bool> = params.iter().map(|p| p.temperature == 0.0).collect();
        let inv_temperature: Vec<f32> = params
            .iter()
            .map(|p| match p.temperature {
                t if t > 0.0 => 1.0 / t,
                _ => 1.0,
            })
            .collect();
        let inv_temperature = Tensor::<B, 1>::from_data(
            TensorData::new(inv_temperature, [rows]),
            (device, DType::F32),
        )
        .reshape([rows, 1]);
        Some(Self {
            inv_temperature,
            suppress: suppression_bias(params, vocab, device),
            greedy,
            vocab,
        })
    }

    /// Rows this picker was built for.
    pub fn rows(&self) -> usize {
        self.greedy.len()
    }

    /// Picks a token for every row of `logits: [R, V]`; sampled rows draw one uniform each from
    /// `samplers[r]` (greedy rows draw none, as on the host).
    pub fn pick(&self, logits: Tensor<B, 2>, samplers: &mut [Sampler]) -> Picks {
        let [rows, vocab] = logits.dims();
        assert_eq!(
            (rows, vocab),
            (self.rows(), self.vocab),
            "logits shape does not match the picker"
        );
        assert_eq!(samplers.len(), rows, "one sampler per row");
        let device = logits.device();
        let uniforms: Vec<f32> = samplers
            .iter_mut()
            .zip(&self.greedy)
            .map(|(s, &greedy)| if greedy { 0.0 } else { s.uniform() as f32 })
            .collect();
        let uniforms =
            Tensor::<B, 1>::from_data(TensorData::new(uniforms, [rows]), (&device, DType::F32))
                .reshape([rows, 1]);

        let logits = match logits.dtype() {
            DType::F32 => logits,
            _ => logits.cast(FloatDType::F32),
        };
        let mut scaled = logits * self.inv_temperature.clone();
        if let Some(bias) = &self.suppress {
            scaled = scaled + bias.clone();
        }
        // log p_i = shifted_i − ln Σ exp(shifted); only the picked tokens' log-probs are formed.
        let shifted = scaled.clone() - scaled.max_dim(1);
        let weights = shifted.clone().exp();
        let log_z = weights.clone().sum_dim(1).log();
        let greedy_ids = shifted.clone().argmax(1);
        let sampled_ids = inverse_cdf(weights, uniforms);
        let greedy_logp = shifted.clone().gather(1, greedy_ids.clone()) - log_z.clone();
        let sampled_logp = shifted.gather(1, sampled_ids.clone()) - log_z;
        // One transfer: [R, 4] = (greedy id, greedy log-prob, sampled id, sampled log-prob);
        // ids are exact in f32 (vocabularies are far below 2^24).
        let picked = Tensor::cat(
            vec![
                greedy_ids.float().cast(FloatDType::F32),
                greedy_logp,
                sampled_ids.float().cast(FloatDType::F32),
                sampled_logp,
            ],
            1,
        );
        let host = picked
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .expect("picks are f32");
        let (tokens, logprobs) = host
            .chunks_exact(4)
            .zip(&self.greedy)
            .map(|(row, &greedy)| {
                let (id, lp) = if greedy {
                    (row[0], row[1])
                } else {
                    (row[2], row[3])
                };
                (id as u32, lp)
            })
            .unzip();
        Picks { tokens, logprobs }
    }
}

/// `weights: [R, V]` unnormalised probabilities, `uniforms: [R, 1]` in `[0, 1)` → `[R, 1]` ids:
/// the first index whose CDF exceeds `u · total`, never past the row's last token of non-zero
/// weight (f32 rounding can leave `u · total` at the last CDF value; that token is the first
/// index whose CDF reaches the total).
fn inverse_cdf<B: Backend>(weights: Tensor<B, 2>, uniforms: Tensor<B, 2>) -> Tensor<B, 2, Int> {
    let [rows, vocab] = weights.dims();
    let cdf = weights.cumsum(1);
    let total = cdf.clone().narrow(1, vocab - 1, 1).expand([rows, vocab]);
    let target = total.clone() * uniforms.expand([rows, vocab]);
    let drawn = cdf.clone().lower_equal(target).int().sum_dim(1);
    let last_possible = cdf.lower(total).int().sum_dim(1);
    drawn.min_pair(last_possible)
}

/// Additive −∞ on each row's suppressed tokens: `[1, V]` when every row suppresses the same
/// ids (the usual case: one list per run), `[R, V]` otherwise, `None` when none does.
fn suppression_bias<B: Backend>(
    params: &[&SamplingParams],
    vocab: usize,
    device: &B::Device,
) -> Option<Tensor<B, 2>> {
    if params.iter().all(|p| p.suppress_token_ids.is_empty()) {
        return None;
    }
    let shared = params
        .iter()
        .all(|p| p.suppress_token_ids == params[0].suppress_token_ids);
    let lists: Vec<&[u32]> = if shared {
        vec![&params[0].suppress_token_ids]
    } else {
        params.iter().map(|p| &p.suppress_token_ids[..]).collect()
    };
    let mut bias = vec![0.0f32; lists.len() * vocab];
    for (row, ids) in lists.iter().enumerate() {
        for &id in ids.iter().filter(|&&id| (id as usize) < vocab) {
            bias[row * vocab + id as usize] = f32::NEG_INFINITY;
        }
    }
    Some(Tensor::from_data(
        TensorData::new(bias, [lists.len(), vocab]),
        (device, DType::F32),
    ))
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::backend::Cpu;
    use rand::{Rng, SeedableRng};
    use rand_chacha::ChaCha8Rng;

    type B = Cpu;

    fn logits(rows: usize, vocab: usize, seed: u64) -> Vec<f32> {
        let mut rng = ChaCha8Rng::seed_from_u64(seed);
        (0..rows * vocab)
            .map(|_| rng.random_range(-4.0f32..4.0))
            .collect()
    }

    fn tensor(data: &[f32], rows: usize, vocab: usize) -> Tensor<B, 2> {
        Tensor::from_data(
            TensorData::new(data.to_vec(), [rows, vocab]),
            &Default::default(),
        )
    }

    fn samplers(rows: usize, seed: u64) -> Vec<Sampler> {
        (0..rows).map(|r| Sampler::new(seed, r as u64)).collect()
    }

    /// Device picks against the host sampler on the same logits and streams, many steps.
    fn agreement(params: &[SamplingParams], vocab: usize, steps: usize) -> (usize, usize, f32) {
        let rows = params.len();
        let refs: Vec<&SamplingParams> = params.iter().collect();
        let picker = DevicePicker::<B>::new(&refs, vocab, &Default::default()).unwrap();
        let (mut on_device, mut on_host) = (samplers(rows, 11), samplers(rows, 11));
        let (mut same, mut total, mut worst_logprob) = (0, 0, 0.0f32);
        for step in 0..steps {
            let data = logits(rows, vocab, step as u64);
            let picks = picker.pick(tensor(&data, rows, vocab), &mut on_device);
            for r in 0..rows {
                let row = &data[r * vocab..(r + 1) * vocab];
                let (token, logprob) = on_host[r].sample(row, &params[r]);
                total += 1;
                if token == picks.tokens[r] {
                    same += 1;
                    worst_logprob = worst_logprob.max((logprob - picks.logprobs[r]).abs());
                }
            }
        }
        (same, total, worst_logprob)
    }

    #[test]
    fn greedy_rows_take_the_host_argmax_and_log_softmax() {
        let params = vec![SamplingParams::greedy(1); 3];
        let (same, total, worst) = agreement(&params, 257, 50);
        assert_eq!(same, total);
        assert!(worst < 1e-5, "log-prob differs by {worst}");
    }

    #[test]
    fn sampled_rows_draw_what_the_host_sampler_draws_from_the_same_stream() {
        let params: Vec<SamplingParams> = [0.7f32, 1.0, 1.5, 0.0]
            .iter()
            .map(|&temperature| SamplingParams {
                temperature,
                ..SamplingParams::default()
            })
            .collect();
        let (same, total, worst) = agreement(&params, 300, 500);
        // Only a uniform landing within f32 rounding of a CDF boundary may differ.
        assert!(same * 1000 >= total * 998, "{same} of {total} agree");
        assert!(worst < 1e-4, "log-prob differs by {worst}");
    }

    #[test]
    fn draws_follow_the_softmax_and_never_pick_a_suppressed_token() {
        // probs ∝ 1 : 2 : 3 once token 3 (the largest logit) is suppressed.
        let row = [0.0f32, 2f32.ln(), 3f32.ln(), 5.0];
        let params = SamplingParams {
            suppress_token_ids: vec![3],
            ..SamplingParams::default()
        };
        let rows = 4;
        let refs = vec![&params; rows];
        let picker = DevicePicker::<B>::new(&refs, 4, &Default::default()).unwrap();
        let data: Vec<f32> = row.iter().copied().cycle().take(rows * 4).collect();
        let mut streams = samplers(rows, 5);
        let mut counts = [0usize; 4];
        let draws = 3000;
        for _ in 0..draws / rows {
            let picks = picker.pick(tensor(&data, rows, 4), &mut streams);
            for (&token, &logprob) in picks.tokens.iter().zip(&picks.logprobs) {
                counts[token as usize] += 1;
                let expected = (row[token as usize] as f64 - 6f64.ln()) as f32;
                assert!((logprob - expected).abs() < 1e-5, "{logprob} vs {expected}");
            }
        }
        assert_eq!(counts[3], 0, "a suppressed token was drawn");
        for (token, want) in [(0, 1.0 / 6.0), (1, 2.0 / 6.0), (2, 3.0 / 6.0)] {
            let got = counts[token] as f64 / draws as f64;
            // 3000 draws: the standard error of a frequency near 1/2 is under 0.01.
            assert!((got - want).abs() < 0.03, "token {token}: {got} vs {want}");
        }
    }

    #[test]
    fn rows_may_suppress_different_tokens() {
        let suppress = |ids: Vec<u32>| SamplingParams {
            suppress_token_ids: ids,
            ..SamplingParams::greedy(1)
        };
        let params = [suppress(vec![2]), suppress(vec![])];
        let refs: Vec<&SamplingParams> = params.iter().collect();
        let picker = DevicePicker::<B>::new(&refs, 3, &Default::default()).unwrap();
        let data = [0.0f32, 1.0, 9.0, 0.0, 1.0, 9.0];
        let picks = picker.pick(tensor(&data, 2, 3), &mut samplers(2, 0));
        assert_eq!(picks.tokens, vec![1, 2]);
    }

    #[test]
    fn a_uniform_at_the_top_of_the_cdf_stays_on_a_possible_token() {
        // Token 2 has probability 0 (suppressed): a target at or above the last CDF value
        // (f32 rounding) must still land on token 1.
        let probs = tensor(&[0.25, 0.75, 0.0], 1, 3);
        let uniforms =
            Tensor::<B, 2>::from_data(TensorData::new(vec![1.0f32], [1, 1]), &Default::default());
        let id = inverse_cdf(probs, uniforms)
            .into_data()
            .convert::<i64>()
            .into_vec::<i64>()
            .unwrap();
        assert_eq!(id, vec![1]);
        let probs = tensor(&[0.25, 0.75, 0.0], 1, 3);
        let uniforms =
            Tensor::<B, 2>::from_data(TensorData::new(vec![0.2f32], [1, 1]), &Default::default());
        let id = inverse_cdf(probs, uniforms)
            .into_data()
            .convert::<i64>()
            .into_vec::<i64>()
            .unwrap();
        assert_eq!(id, vec![0]);
    }

    #[test]
    fn truncating_rows_stay_on_the_host() {
        let top_p = SamplingParams {
            top_p: 0.9,
            ..SamplingParams::default()
        };
        let top_k = SamplingParams {
            top_k: 5,
            ..SamplingParams::default()
        };
        let whole = SamplingParams {
            top_k: 100,
            ..SamplingParams::default()
        };
        let device = Default::default();
        assert!(DevicePicker::<B>::new(&[&top_p], 100, &device).is_none());
        assert!(DevicePicker::<B>::new(&[&whole, &top_k], 100, &device).is_none());
        assert!(DevicePicker::<B>::new(&[&whole], 100, &device).is_some());
    }
}
