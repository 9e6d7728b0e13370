//! Generation benchmark on the CPU backend: prefill and decode tokens/s, peak heap memory, and
//! grouped sampling (prefill once, fork G) against G separate prefills, for a tiny and a medium
//! Qwen3-VL-shaped model with random weights.
//!
//! `cargo bench -p temper-model --bench generation` (add `-- --quick` for a short run). With
//! `--features ndarray` the same cases also run on burn's ndarray backend, for comparison with
//! the default flex backend in the same run.

use std::time::Instant;

use temper_model::alloc_counter::{CountingAlloc, peak_mib, reset_peak};

use burn::prelude::Backend;
use temper_model::{Batch, Qwen3Vl, Qwen3VlConfig, SamplingParams};

/// Heap accounting: current and peak bytes, so each case reports its own peak.
#[global_allocator]
static ALLOC: CountingAlloc = CountingAlloc;

/// A model shape (text decoder and vision tower) for the bench configs.
struct Shape {
    vocab: usize,
    hidden: usize,
    layers: usize,
    heads: usize,
    kv: usize,
    head_dim: usize,
    inter: usize,
    vision_hidden: usize,
    vision_depth: usize,
}

fn config(shape: Shape) -> Qwen3VlConfig {
    let Shape {
        vocab,
        hidden,
        layers,
        heads,
        kv,
        head_dim,
        inter,
        vision_hidden,
        vision_depth,
    } = shape;
    let section = head_dim / 2;
    let (h, w) = (section * 5 / 16, section * 5 / 16);
    let json = serde_json::json!({
        "model_type": "qwen3_vl",
        "image_token_id": vocab - 20, "video_token_id": vocab - 19,
        "vision_start_token_id": vocab - 23, "vision_end_token_id": vocab - 22,
        "tie_word_embeddings": true,
        "text_config": {
            "vocab_size": vocab, "hidden_size": hidden, "intermediate_size": inter,
            "num_hidden_layers": layers, "num_attention_heads": heads, "num_key_value_heads": kv,
            "head_dim": head_dim, "rms_norm_eps": 1e-6, "max_position_embeddings": 32768,
            "rope_parameters": {"rope_theta": 5e6, "mrope_section": [section - h - w, h, w], "mrope_interleaved": true}
        },
        "vision_config": {
            "depth": vision_depth, "hidden_size": vision_hidden, "intermediate_size": 4 * vision_hidden,
            "num_heads": vision_hidden / 64, "patch_size": 16, "temporal_patch_size": 2, "spatial_merge_size": 2,
            "out_hidden_size": hidden, "num_position_embeddings": 2304, "deepstack_visual_indexes": [1, 2]
        }
    });
    Qwen3VlConfig::from_json(&json.to_string()).expect("valid bench config")
}

fn prompt(len: usize, vocab: usize, salt: usize) -> Vec<u32> {
    (0..len)
        .map(|i| ((i * 7919 + salt * 104_729) % (vocab - 64)) as u32)
        .collect()
}

fn time<T>(repeats: usize, mut f: impl FnMut() -> T) -> f64 {
    f(); // warm-up
    let start = Instant::now();
    for _ in 0..repeats {
        std::hint::black_box(f());
    }
    start.elapsed().as_secs_f64() / repeats as f64
}

fn main() {
    let quick = std::env::args().any(|a| a == "--quick");
    #[cfg(feature = "flex")]
    run::<burn::backend::Flex>("flex", quick);
    #[cfg(feature = "ndarray")]
    run::<burn::backend::NdArray>("ndarray", quick);
}

fn run<B: Backend>(backend: &str, quick: bool) {
    let device = Default::default();
    let sizes = [
        (
            "tiny",
            config(Shape {
                vocab: 1024,
                hidden: 64,
                layers: 2,
                heads: 4,
                kv: 2,
                head_dim: 16,
                inter: 128,
                vision_hidden: 64,
                vision_depth: 4,
            }),
        ),
        (
            "medium",
            config(Shape {
                vocab: 32_000,
                hidden: 512,
                layers: 8,
                heads: 8,
                kv: 4,
                head_dim: 64,
                inter: 1536,
                vision_hidden: 256,
                vision_depth: 4,
            }),
        ),
    ];
    let (prompt_len, new_tokens, group) = if quick { (64, 8, 4) } else { (256, 32, 8) };
    let repeats = if quick { 1 } else { 3 };

    println!(
        "\nbackend: {backend} | threads: {} (of {} cores) | prompt {prompt_len} tokens, {new_tokens} new tokens, group {group}",
        temper_model::threads::configure(None).expect("thread pool"),
        std::thread::available_parallelism().map_or(1, |n| n.get())
    );
    println!("| model | params | case | time (s) | tokens/s | peak heap (MiB) |");
    println!("|---|---|---|---|---|---|");
    for (name, cfg) in sizes {
        let vocab = cfg.text_config.vocab_size;
        let model = Qwen3Vl::<B>::random(cfg, 0, &device).expect("model");
        let params: usize = model.hf_tensors().iter().map(|t| t.2.len()).sum();
        let row = |case: &str, secs: f64, tokens: usize| {
            println!(
                "| {name} | {:.1} M | {case} | {secs:.3} | {:.0} | {:.0} |",
                params as f64 / 1e6,
                tokens as f64 / secs,
                peak_mib()
            );
        };
        let greedy = |n: usize| SamplingParams::greedy(n);
        let sampling = SamplingParams {
            temperature: 1.0,
            max_new_tokens: new_tokens,
            seed: 1,
            ..SamplingParams::default()
        };

        // Prefill: one forward over the prompt, filling a cache.
        reset_peak();
        let batch = Batch::text(prompt(prompt_len, vocab, 0));
        let secs = time(repeats, || {
            let mut cache = model.new_cache(1, prompt_len + 1);
            model.prefill(&batch, &mut cache).expect("prefill")
        });
        row("prefill, batch 1", secs, prompt_len);

        // Decode at batch 1 and batch `group` (distinct prompts), minus the prefill.
        for b in [1, group] {
            reset_peak();
            let batch = Batch::<B> {
                input_ids: (0..b).map(|i| prompt(prompt_len, vocab, i)).collect(),
                attention_mask: vec![vec![true; prompt_len]; b],
                images: None,
                videos: None,
                segment_ids: None,
            };
            let prefill = time(repeats, || {
                model.generate(&batch, 1, &vec![greedy(1); b]).expect("gen")
            });
            let full = time(repeats, || {
                model
                    .generate(&batch, 1, &vec![greedy(new_tokens); b])
                    .expect("gen")
            });
            row(
                &format!("decode, batch {b}"),
                full - prefill,
                b * (new_tokens - 1),
            );
        }

        // Grouped sampling: G samples of one prompt.
        let one = Batch::text(prompt(prompt_len, vocab, 0));
        reset_peak();
        let grouped = time(repeats, || {
            model
                .generate(&one, group, std::slice::from_ref(&sampling))
                .expect("gen")
        });
        row(
            &format!("group of {group}: prefill once, fork"),
            grouped,
            group * new_tokens,
        );
        reset_peak();
        let copies = Batch::<B> {
            input_ids: vec![one.input_ids[0].clone(); group],
            attention_mask: vec![vec![true; prompt_len]; group],
            images: None,
            videos: None,
            segment_ids: None,
        };
        let batched = time(repeats, || {
            model
                .generate(&copies, 1, &vec![sampling.clone(); group])
                .expect("gen")
        });
        row(
            &format!("group of {group}: {group} prefills, batched"),
            batched,
            group * new_tokens,
        );
        reset_peak();
        let separate = time(repeats, || {
            for _ in 0..group {
                model
                    .generate(&one, 1, std::slice::from_ref(&sampling))
                    .expect("gen");
            }
        });
        row(
            &format!("group of {group}: {group} separate requests"),
            separate,
            group * new_tokens,
        );
        println!(
            "| {name} | | fork speed-up vs batched prefills: {:.2}×, vs separate: {:.2}× | | | |",
            batched / grouped,
            separate / grouped
        );

        // One learner step's compute: forward + log-probs + backward, batch 4 × prompt_len.
        let train = Qwen3Vl::<burn::backend::Autodiff<B>>::random(model.config.clone(), 0, &device)
            .expect("model");
        let rows = 4;
        let batch = Batch::<burn::backend::Autodiff<B>> {
            input_ids: (0..rows).map(|i| prompt(prompt_len, vocab, i)).collect(),
            attention_mask: vec![vec![true; prompt_len]; rows],
            images: None,
            videos: None,
            segment_ids: None,
        };
        reset_peak();
        let secs = time(repeats, || {
            let out = train.forward(&batch, None, None).expect("forward");
            let targets: Vec<i64> = batch
                .input_ids
                .iter()
                .flat_map(|r| r[1..].iter().map(|&t| t as i64))
                .collect();
            let targets = burn::tensor::Tensor::from_data(
                burn::tensor::TensorData::new(targets, [rows, prompt_len - 1]),
                &device,
            );
            let hidden = out.hidden.narrow(1, 0, prompt_len - 1);
            let scores = train.token_scores(hidden, targets, 1.0, 1 << 22);
            scores.logprobs.mean().neg().backward()
        });
        row(
            &format!("train fwd+bwd, batch {rows}×{prompt_len}"),
            secs,
            rows * prompt_len,
        );
    }
}
