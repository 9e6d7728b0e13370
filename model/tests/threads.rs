//! The thread count changes speed, not results: the same forward on a 1-thread and a 2-thread
//! pool gives logits within 1e-5 (float reassociation only: a matmul split across threads sums
//! its blocks in another order).
//!
//! Two models: the `qwen3vl-tiny-a` fixture on every golden case (images and video, so the
//! vision tower is covered), and a wider random text model whose matmuls are large enough for
//! `gemm` and burn-flex to split them across threads (at the fixture's width they may not).

mod common;

use common::{B, Golden, data_dir, max_abs_diff};
use temper_model::weights::host_f32;
use temper_model::{Batch, Qwen3Vl, Qwen3VlConfig};

const TOL: f32 = 1e-5;

fn pool(threads: usize) -> rayon::ThreadPool {
    rayon::ThreadPoolBuilder::new()
        .num_threads(threads)
        .build()
        .expect("thread pool")
}

fn logits(model: &Qwen3Vl<B>, batch: &Batch<B>) -> Vec<f32> {
    let out = model.forward(batch, None, None).expect("forward");
    host_f32(model.logits(out.hidden))
}

/// Logits of `run` on one thread and on two; asserts the pools really had those sizes.
fn on_one_and_two_threads(run: impl Fn() -> Vec<f32> + Sync) -> (Vec<f32>, Vec<f32>) {
    let one = pool(1).install(|| {
        assert_eq!(temper_model::threads::in_use(), 1);
        run()
    });
    let two = pool(2).install(|| {
        assert_eq!(temper_model::threads::in_use(), 2);
        run()
    });
    (one, two)
}

#[test]
fn fixture_logits_agree_on_one_and_two_threads() {
    let dir = data_dir().join("qwen3vl-tiny-a");
    let golden = Golden::open(&dir);
    let device = Default::default();
    let model = Qwen3Vl::<B>::load(&dir, &device).unwrap();
    let cases = golden.case_names();
    assert!(!cases.is_empty());
    for case in cases {
        let batch = golden.batch(&case, &device);
        let mask: Vec<bool> = batch.attention_mask.iter().flatten().copied().collect();
        let vocab = model.config.text_config.vocab_size;
        let (one, two) = on_one_and_two_threads(|| logits(&model, &batch));
        let diff = max_abs_diff(&one, &two, |i| mask[i / vocab]);
        assert!(diff <= TOL, "{case}: 1 vs 2 threads differ by {diff}");
    }
}

#[test]
fn wide_model_logits_agree_on_one_and_two_threads() {
    let mut config: serde_json::Value = serde_json::from_str(
        &std::fs::read_to_string(data_dir().join("qwen3vl-tiny-a/config.json")).unwrap(),
    )
    .unwrap();
    let text = &mut config["text_config"];
    text["hidden_size"] = 256.into();
    text["intermediate_size"] = 768.into();
    text["num_attention_heads"] = 4.into();
    text["num_key_value_heads"] = 2.into();
    text["head_dim"] = 64.into();
    text["rope_parameters"]["mrope_section"] = serde_json::json!([12, 10, 10]);
    config["vision_config"]["out_hidden_size"] = 256.into();
    let config = Qwen3VlConfig::from_json(&config.to_string()).unwrap();
    let device = Default::default();
    let model = Qwen3Vl::<B>::random(config, 7, &device).unwrap();

    let rows = 2;
    let len = 192;
    let ids: Vec<Vec<u32>> = (0..rows)
        .map(|r| (0..len).map(|i| ((i * 31 + r * 17) % 900) as u32).collect())
        .collect();
    let batch = Batch::<B> {
        attention_mask: ids.iter().map(|row| vec![true; row.len()]).collect(),
        input_ids: ids,
        images: None,
        videos: None,
        segment_ids: None,
    };
    let (one, two) = on_one_and_two_threads(|| logits(&model, &batch));
    assert_eq!(one.len(), rows * len * model.config.text_config.vocab_size);
    let diff = max_abs_diff(&one, &two, |_| true);
    assert!(diff <= TOL, "1 vs 2 threads differ by {diff}");
}
