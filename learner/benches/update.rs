//! Learner benchmark on the CPU: one RL step of the embedded task, split into its three parts —
//! grouped generation (behaviour log-probs included), log-prob recomputation without gradients
//! (what a trainer that does not trust behaviour log-probs pays), and the update (forward +
//! backward + AdamW) — with tokens/s and peak heap per part, for the tiny embedded model and a
//! medium one (hidden 512, 8 layers, vocab 272, same ViT shape family). The recompute and the
//! update run in both learner layouts, in the same run: joined (every row its own prompt
//! forward) and shared prefix (each prompt once per group); tokens/s counts the joined rows'
//! tokens in both, so the two rates compare directly.
//!
//! `cargo bench -p temper-learner --bench update` (`-- --quick` for one repeat).

use std::time::Instant;

use temper_model::alloc_counter::{CountingAlloc, peak_mib, reset_peak};

use burn::module::AutodiffModule;
use burn::optim::GradientsParams;
use burn::prelude::*;
use burn::tensor::backend::AutodiffBackend;
use temper_learner::embedded;
use temper_learner::objectives::{Advantages, PolicyInputs, PolicyLoss};
use temper_learner::optim::{AdamW, AdamWConfig};
use temper_learner::tasks::shapes::{ShapesTask, Split};
use temper_learner::train::sequences::ResponseBatch;
use temper_model::backend::CpuAutodiff;
use temper_model::chat::{ContentPart, Message};
use temper_model::logprobs::EntropyGrad;
use temper_model::{Qwen3Vl, Qwen3VlConfig, SamplingParams};

#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

type B = CpuAutodiff;
type Inner = <B as AutodiffBackend>::InnerBackend;

fn medium_config() -> Qwen3VlConfig {
    let mut config = embedded::tiny_config();
    let text = &mut config.text_config;
    text.hidden_size = 512;
    text.intermediate_size = 1536;
    text.num_hidden_layers = 8;
    text.num_attention_heads = 8;
    text.num_key_value_heads = 4;
    text.head_dim = Some(64);
    if let Some(rope) = text.rope_parameters.as_mut() {
        rope.mrope_section = Some(vec![16, 8, 8]);
    }
    config.vision_config.hidden_size = 128;
    config.vision_config.intermediate_size = 512;
    config.vision_config.out_hidden_size = 512;
    config
}

/// Seconds of the fastest of `repeats` runs, and the peak heap of the last.
fn time<T>(repeats: usize, mut f: impl FnMut() -> T) -> (f64, f64) {
    let mut best = f64::INFINITY;
    for _ in 0..repeats {
        reset_peak();
        let start = Instant::now();
        std::hint::black_box(f());
        best = best.min(start.elapsed().as_secs_f64());
    }
    (best, peak_mib())
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    let repeats = if quick { 1 } else { 3 };
    println!(
        "| model | rows | tokens | part | seconds | share of a step | tokens/s | peak heap MiB |"
    );
    println!("|---|---|---|---|---|---|---|---|");
    for (name, config) in [
        ("tiny", embedded::tiny_config()),
        ("medium", medium_config()),
    ] {
        run(name, config, repeats);
    }
}

fn run(name: &str, config: Qwen3VlConfig, repeats: usize) {
    let device = Default::default();
    let processor = embedded::tiny_processor(&config).unwrap();
    let mut model = Qwen3Vl::<B>::random(config, 0, &device).unwrap();
    let task = ShapesTask {
        grid_cell: 16,
        min_side: 12,
        max_side: 15,
        ..ShapesTask::default()
    };
    let (prompts_n, group) = (16usize, 8usize);
    let prompts: Vec<_> = (0..prompts_n as u64)
        .map(|i| {
            let ex = task.example(0, Split::Train, i);
            let messages = [Message::new(
                "user",
                vec![ContentPart::Image, ContentPart::text(ex.question)],
            )];
            processor
                .prepare(&messages, std::slice::from_ref(&ex.image), &[])
                .unwrap()
        })
        .collect();
    let special = &processor.special;
    // As the trainer does: vision placeholders are never sampled nor scored.
    let suppress = temper_model::policy_suppressed_tokens(special);
    let params = SamplingParams {
        max_new_tokens: 4,
        stop_token_ids: special.eos_ids().to_vec(),
        seed: 1,
        suppress_token_ids: suppress.clone(),
        ..SamplingParams::default()
    };
    let policy: Qwen3Vl<Inner> = model.valid();
    let batch = processor.batch::<Inner>(&prompts, &device).unwrap();
    let per_prompt = vec![params.clone(); prompts_n];
    let (gen_s, gen_mib) = time(repeats, || {
        policy.generate(&batch, group, &per_prompt).unwrap()
    });
    let generations = policy.generate(&batch, group, &per_prompt).unwrap();
    // As the trainer gets them from its rollout source: one-turn samples, every token trained.
    let samples: Vec<temper_rewards::rollout::Sample> = generations
        .iter()
        .map(|g| temper_rewards::rollout::Sample {
            token_ids: g.tokens.clone(),
            response_mask: vec![1; g.tokens.len()],
            behaviour_logprobs: g.logprobs.clone(),
            images: Vec::new(),
            turns: Vec::new(),
            finish: g.finish,
            policy_version: 0,
        })
        .collect();
    let rows: Vec<_> = generations
        .iter()
        .zip(&samples)
        .map(|(g, s)| (&prompts[g.prompt], s))
        .collect();
    let generated: usize = generations.iter().map(|g| g.tokens.len()).sum();

    // The joined layout's forward tokens: what an update without sharing pushes through.
    let tokens = ResponseBatch::<Inner>::with_layout(&processor, &rows, &device, false)
        .unwrap()
        .forward_tokens();
    let mut parts = vec![("generation".to_string(), (gen_s, gen_mib), generated)];
    let behaviour: Vec<&[f32]> = generations.iter().map(|g| g.logprobs.as_slice()).collect();
    let advantages: Vec<f32> = (0..rows.len())
        .map(|i| if i % 3 == 0 { 1.0 } else { -0.5 })
        .collect();
    let loss = PolicyLoss::default();
    let mut optimizer = AdamW::<Inner>::new(AdamWConfig::default());
    for (layout, shared) in [("joined", false), ("shared prefix", true)] {
        let inner_batch =
            ResponseBatch::<Inner>::with_layout(&processor, &rows, &device, shared).unwrap();
        let recompute = time(repeats, || {
            let scores = inner_batch
                .scores(&policy, 1.0, &suppress, EntropyGrad::Metric)
                .unwrap();
            scores.logprobs.sum().into_scalar()
        });
        let train_batch =
            ResponseBatch::<B>::with_layout(&processor, &rows, &device, shared).unwrap();
        let update = time(repeats, || {
            let scores = train_batch
                .scores(&model, 1.0, &suppress, EntropyGrad::Metric)
                .unwrap();
            let n = advantages.len();
            let output = loss
                .compute(PolicyInputs {
                    logprobs: scores.logprobs,
                    old_logprobs: train_batch.align(&behaviour, 0.0, &device),
                    ref_logprobs: None,
                    advantages: Advantages::Sequence(Tensor::from_data(
                        TensorData::new(advantages.clone(), [n]),
                        &device,
                    )),
                    mask: train_batch.mask(&device),
                })
                .unwrap();
            let grads = GradientsParams::from_grads(output.loss.backward(), &model);
            model = optimizer.step::<B, _>(1e-4, model.clone(), grads);
        });
        parts.push((format!("log-prob recompute, {layout}"), recompute, tokens));
        parts.push((format!("update (fwd+bwd+AdamW), {layout}"), update, tokens));
    }

    // Shares of one RL step: generation plus the shared-prefix update (what the trainer runs).
    let step = parts[0].1.0 + parts[4].1.0;
    let rows_n = rows.len();
    for (part, (seconds, mib), count) in parts {
        println!(
            "| {name} | {rows_n} | {count} | {part} | {seconds:.3} | {:.0}% | {:.0} | {mib:.0} |",
            100.0 * seconds / step,
            count as f64 / seconds
        );
    }
}
