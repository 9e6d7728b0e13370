//! Generation: greedy tokens equal transformers' `generate`, cached decode equals cache-free
//! decode, grouped sampling (picked on the host or on the device) is seeded and its behaviour
//! log-probs equal the learner's recomputed log-probs, device picks equal host sampling of the
//! same steps, and a left-padded batch decodes like its prompts alone.

mod common;

use burn::prelude::*;
use common::{B, Golden, fixtures};
use temper_model::position::{VisualTokens, rope_index};
use temper_model::sampling::{Sampler, argmax};
use temper_model::weights::host_f32;
use temper_model::{Batch, FinishReason, Qwen3Vl, SamplingParams};

/// Appends `tokens` to every row of a batch (all attended).
fn extend(batch: &Batch<B>, tokens: &[Vec<u32>]) -> Batch<B> {
    let mut out = batch.clone();
    for (row, new) in tokens.iter().enumerate() {
        out.input_ids[row].extend(new);
        out.attention_mask[row].extend(std::iter::repeat_n(true, new.len()));
    }
    out
}

/// Every fixture case that transformers generated for (`{case}.generated_ids`), each with its
/// positions (`{case}.generated_full_position_ids`).
const GENERATION_CASES: [&str; 4] = [
    "qwen3vl-tiny-a/image",
    "qwen3vl-tiny-b/image",
    "qwen3vl-tiny-b/video",
    "qwen3vl-tiny-moe/image",
];

#[test]
fn greedy_generation_matches_transformers() {
    let device = Default::default();
    let mut checked = Vec::new();
    for dir in fixtures() {
        let golden = Golden::open(&dir);
        let model = Qwen3Vl::<B>::load(&dir, &device).unwrap();
        for case in golden.case_names() {
            let key = format!("{case}.generated_ids");
            if !golden.has(&key) {
                continue;
            }
            let (shape, expected) = golden.i64(&key);
            let batch = golden.batch(&case, &device);
            let params = vec![SamplingParams::greedy(shape[1]); batch.batch_size()];
            let generations = model.generate(&batch, 1, &params).unwrap();
            let ours: Vec<i64> = generations
                .iter()
                .flat_map(|g| g.tokens.iter().map(|&t| t as i64))
                .collect();
            assert_eq!(ours, expected, "{}/{case}: greedy tokens", golden.name());

            // The decode positions (valid count + rope delta) must equal get_rope_index over the
            // whole generated sequence.
            let full = extend(
                &batch,
                &generations
                    .iter()
                    .map(|g| g.tokens.clone())
                    .collect::<Vec<_>>(),
            );
            let grids = |v: &Option<temper_model::VisualInput<B>>| {
                v.as_ref().map(|v| v.grid_thw.clone()).unwrap_or_default()
            };
            let cfg = &model.config;
            let index = rope_index(
                &full.input_ids,
                &full.attention_mask,
                &grids(&full.images),
                &grids(&full.videos),
                VisualTokens {
                    image_token_id: cfg.image_token_id,
                    video_token_id: cfg.video_token_id,
                    spatial_merge_size: cfg.vision_config.spatial_merge_size,
                },
            )
            .unwrap();
            let key = format!("{case}.generated_full_position_ids");
            assert!(golden.has(&key), "{}/{case}: no {key}", golden.name());
            assert_eq!(
                index.flat(),
                golden.i64(&key).1,
                "{}/{case}: positions",
                golden.name()
            );
            checked.push(format!("{}/{case}", golden.name()));
        }
    }
    checked.sort();
    assert_eq!(
        checked, GENERATION_CASES,
        "every generation case is checked"
    );
}

#[test]
fn cached_greedy_decode_equals_cache_free_decode() {
    let device = Default::default();
    let dir = common::data_dir().join("qwen3vl-tiny-a");
    let golden = Golden::open(&dir);
    let model = Qwen3Vl::<B>::load(&dir, &device).unwrap();
    let batch = golden.batch("batch", &device);
    let steps = 6;
    let params = vec![SamplingParams::greedy(steps); batch.batch_size()];
    let cached = model.generate(&batch, 1, &params).unwrap();

    let mut generated = vec![Vec::new(); batch.batch_size()];
    for _ in 0..steps {
        let full = extend(&batch, &generated);
        let out = model.forward(&full, None, None).unwrap();
        let logits = host_f32(model.logits(out.hidden));
        let l = full.seq_len();
        let v = model.config.text_config.vocab_size;
        for (row, tokens) in generated.iter_mut().enumerate() {
            let last = &logits[(row * l + l - 1) * v..(row * l + l) * v];
            tokens.push(argmax(last) as u32);
        }
    }
    for (row, g) in cached.iter().enumerate() {
        assert_eq!(g.tokens, generated[row], "row {row}");
    }
}

#[test]
fn left_padded_batch_decodes_like_each_prompt_alone() {
    let device = Default::default();
    let dir = common::data_dir().join("qwen3vl-tiny-a");
    let model = Qwen3Vl::<B>::load(&dir, &device).unwrap();
    let prompts: [Vec<u32>; 2] = [
        vec![993, 10, 11, 12, 994, 993, 20],
        vec![993, 30, 31, 994, 993, 40, 41, 42, 43],
    ];
    let l = prompts.iter().map(Vec::len).max().unwrap();
    let padded = Batch::<B> {
        input_ids: prompts
            .iter()
            .map(|p| [vec![992; l - p.len()], p.clone()].concat())
            .collect(),
        attention_mask: prompts
            .iter()
            .map(|p| [vec![false; l - p.len()], vec![true; p.len()]].concat())
            .collect(),
        images: None,
        videos: None,
        segment_ids: None,
    };
    let greedy = |n| vec![SamplingParams::greedy(7); n];
    let together = model.generate(&padded, 1, &greedy(2)).unwrap();
    for (row, prompt) in prompts.iter().enumerate() {
        let alone = model
            .generate(&Batch::text(prompt.clone()), 1, &greedy(1))
            .unwrap();
        assert_eq!(together[row].tokens, alone[0].tokens, "row {row}");
        for (a, b) in together[row].logprobs.iter().zip(&alone[0].logprobs) {
            assert!((a - b).abs() < 1e-4, "row {row}: logprob {a} vs {b}");
        }
    }
}

/// Truncated sampling: tokens are picked on the host.
#[test]
fn grouped_sampling_is_seeded_and_its_logprobs_match_recomputation() {
    check_grouped_sampling(SamplingParams {
        temperature: 0.8,
        top_p: 0.95,
        top_k: 200,
        max_new_tokens: 10,
        stop_token_ids: vec![994],
        seed: 42,
        suppress_token_ids: Vec::new(),
    });
}

/// The whole distribution (what RL rollouts use): tokens are picked on the device.
#[test]
fn untruncated_grouped_sampling_is_seeded_and_its_logprobs_match_recomputation() {
    check_grouped_sampling(SamplingParams {
        temperature: 0.8,
        max_new_tokens: 10,
        stop_token_ids: vec![994],
        seed: 42,
        ..SamplingParams::default()
    });
}

/// `generate` picking on the device draws the tokens a host loop over the same decode steps and
/// the same seeded streams draws with `Sampler::sample`.
#[test]
fn device_picks_equal_host_sampling_of_the_same_steps() {
    let device = Default::default();
    let dir = common::data_dir().join("qwen3vl-tiny-a");
    let golden = Golden::open(&dir);
    let model = Qwen3Vl::<B>::load(&dir, &device).unwrap();
    let batch = golden.batch("image", &device);
    let params = SamplingParams {
        temperature: 1.0,
        max_new_tokens: 12,
        seed: 7,
        suppress_token_ids: vec![3, 5],
        ..SamplingParams::default()
    };
    let group = 3;
    let generated = model
        .generate(&batch, group, std::slice::from_ref(&params))
        .unwrap();

    let mut cache = model.new_cache(1, batch.seq_len() + params.max_new_tokens);
    let mut cache_logits = model.prefill(&batch, &mut cache).unwrap();
    let vocab = cache_logits.dims()[1];
    let mut cache = cache.fork(group);
    cache_logits = cache_logits.repeat_dim(0, group);
    let mut samplers: Vec<Sampler> = (0..group).map(|i| Sampler::new(7, i as u64)).collect();
    let mut tokens = vec![Vec::new(); group];
    for step in 0..params.max_new_tokens {
        let logits = host_f32(cache_logits.clone());
        let mut feed = Vec::new();
        for (r, sampler) in samplers.iter_mut().enumerate() {
            let (token, logprob) = sampler.sample(&logits[r * vocab..(r + 1) * vocab], &params);
            assert!((logprob - generated[r].logprobs[step]).abs() < 1e-5);
            tokens[r].push(token);
            feed.push(token);
        }
        if step + 1 < params.max_new_tokens {
            cache_logits = model.decode_step(&feed, &mut cache);
        }
    }
    for (r, g) in generated.iter().enumerate() {
        assert_eq!(g.tokens, tokens[r], "row {r}");
        assert!(g.tokens.iter().all(|t| ![3, 5].contains(t)));
    }
}

fn check_grouped_sampling(params: SamplingParams) {
    let device = Default::default();
    let dir = common::data_dir().join("qwen3vl-tiny-a");
    let golden = Golden::open(&dir);
    let model = Qwen3Vl::<B>::load(&dir, &device).unwrap();
    let batch = golden.batch("image", &device);
    let group = 4;
    let first = model
        .generate(&batch, group, std::slice::from_ref(&params))
        .unwrap();
    let again = model
        .generate(&batch, group, std::slice::from_ref(&params))
        .unwrap();
    assert_eq!(first, again, "same seed must give the same samples");
    assert_eq!(first.len(), group);
    let distinct: std::collections::HashSet<_> = first.iter().map(|g| g.tokens.clone()).collect();
    assert!(distinct.len() > 1, "samples of a group should differ");
    let other = model
        .generate(
            &batch,
            group,
            &[SamplingParams {
                seed: 43,
                ..params.clone()
            }],
        )
        .unwrap();
    assert_ne!(first, other, "another seed should give other samples");

    // The learner recomputes log-probs with one forward over prompt + response; they must equal
    // the behaviour log-probs from cached decoding (train/inference mismatch ≈ 0).
    for g in &first {
        assert!(g.finish == FinishReason::Length || g.tokens.last() == Some(&994));
        let full = extend(&batch, std::slice::from_ref(&g.tokens));
        let out = model.forward(&full, None, None).unwrap();
        let l = full.seq_len();
        let n = g.tokens.len();
        let hidden = out.hidden.narrow(1, l - n - 1, n);
        let targets: Vec<i64> = g.tokens.iter().map(|&t| t as i64).collect();
        let targets = Tensor::<B, 2, Int>::from_data(TensorData::new(targets, [1, n]), &device);
        let scores = model.token_scores(hidden, targets, params.temperature, 1 << 20);
        let recomputed = host_f32(scores.logprobs);
        for (a, b) in recomputed.iter().zip(&g.logprobs) {
            assert!((a - b).abs() < 1e-4, "behaviour {b} vs recomputed {a}");
        }
        assert!(host_f32(scores.entropy).iter().all(|&h| h > 0.0));
    }
}
