//! Shared helpers for tests against HF golden fixtures (`tests/data/<fixture>/`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use burn::prelude::*;
use temper_model::backend::Cpu;
use temper_model::inputs::read_batch;
use temper_model::safetensors_io::SafetensorsFile;
use temper_model::weights::host_f32;
use temper_model::{Batch, Qwen3Vl};

pub type B = Cpu;

/// `TEMPER_REPO_ROOT` overrides the checkout location when a prebuilt test binary runs on
/// another machine (the GPU check in tools/device/).
pub fn data_dir() -> PathBuf {
    match std::env::var_os("TEMPER_REPO_ROOT") {
        Some(root) => PathBuf::from(root).join("model/tests/data"),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data"),
    }
}

/// Fixtures present in the repo (each has `golden.safetensors` + `cases.json`).
pub fn fixtures() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(data_dir())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("golden.safetensors").is_file() && p.join("cases.json").is_file())
        .collect();
    found.sort();
    found
}

pub struct Golden {
    pub dir: PathBuf,
    pub file: SafetensorsFile,
    pub cases: serde_json::Value,
}

impl Golden {
    pub fn open(dir: &Path) -> Self {
        let cases = serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).unwrap())
            .unwrap();
        Self {
            dir: dir.to_path_buf(),
            file: SafetensorsFile::open(dir.join("golden.safetensors")).unwrap(),
            cases,
        }
    }

    pub fn name(&self) -> String {
        self.dir.file_name().unwrap().to_string_lossy().into_owned()
    }

    pub fn case_names(&self) -> Vec<String> {
        self.cases["cases"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    }

    pub fn has(&self, key: &str) -> bool {
        self.file.contains(key)
    }

    pub fn f32(&self, key: &str) -> (Vec<usize>, Vec<f32>) {
        self.file.read_f32(key).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn i64(&self, key: &str) -> (Vec<usize>, Vec<i64>) {
        self.file.read_i64(key).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The case's inputs as a model batch.
    pub fn batch(&self, case: &str, device: &burn::tensor::Device<B>) -> Batch<B> {
        self.batch_on::<B>(case, device)
    }

    /// The case's inputs as a batch on any backend.
    pub fn batch_on<B: Backend>(&self, case: &str, device: &burn::tensor::Device<B>) -> Batch<B> {
        read_batch(&self.file, &format!("{case}."), device).unwrap_or_else(|e| panic!("{e}"))
    }
}

/// Max |a − b| over entries where `keep` is true.
pub fn max_abs_diff(a: &[f32], b: &[f32], keep: impl Fn(usize) -> bool) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .enumerate()
        .filter(|(i, _)| keep(*i))
        .map(|(_, (x, y))| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Mean |a − b| over entries where `keep` is true.
pub fn mean_abs_diff(a: &[f32], b: &[f32], keep: impl Fn(usize) -> bool) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    let (sum, n) = a
        .iter()
        .zip(b)
        .enumerate()
        .filter(|(i, _)| keep(*i))
        .fold((0.0f64, 0usize), |(s, n), (_, (x, y))| {
            (s + (x - y).abs() as f64, n + 1)
        });
    (sum / n.max(1) as f64) as f32
}

/// Temper's mean bf16 drift from float32 may be at most these multiples of transformers' own.
/// Measured (2026-11-26): logits 0.93–1.11×, log-probs 0.71–1.34× (few tokens per case, so
/// noisier). Before norms, softmax and log-probs ran in f32: logits up to 1.35×, log-probs up
/// to 2.45×.
pub const BF16_LOGIT_DRIFT_RATIO: f32 = 1.2;
pub const BF16_LOGPROB_DRIFT_RATIO: f32 = 1.5;

/// Runs every case of every fixture with a bf16 reference (`golden_bf16.safetensors`) through
/// the bf16 model `load(dir)` gives, and checks that the mean drift of its logits and next-token
/// log-probs from the float32 golden values stays within the ratios above of transformers' bf16
/// drift. (Means, not maxima: one bf16 rounding flips a maximum by ±30% on these tiny models.)
/// Returns the number of cases checked; panics listing every case over the bound.
pub fn check_bf16_drift<B: Backend>(
    device: &B::Device,
    load: impl Fn(&Path) -> Qwen3Vl<B>,
) -> usize {
    let (mut checked, mut failures) = (0, Vec::new());
    for dir in fixtures() {
        let Ok(reference) = SafetensorsFile::open(dir.join("golden_bf16.safetensors")) else {
            continue; // MoE fixtures: router choices may flip in bf16, so no bf16 reference
        };
        let golden = Golden::open(&dir);
        let model = load(&dir);
        assert_eq!(
            model.float_dtype(),
            burn::tensor::DType::BF16,
            "model is not bf16"
        );
        for case in golden.case_names() {
            let what = format!("{}/{case}", golden.name());
            let batch = golden.batch_on::<B>(&case, device);
            let out = model.forward(&batch, None, None).unwrap();
            let [rows, len, _] = out.hidden.dims();

            // Log-probs of the next input ids: f32 whatever the model dtype.
            let next: Vec<i64> = batch
                .input_ids
                .iter()
                .flat_map(|r| r[1..].iter().map(|&t| t as i64))
                .collect();
            let targets =
                Tensor::<B, 2, Int>::from_data(TensorData::new(next, [rows, len - 1]), device);
            let hidden = out.hidden.clone().narrow(1, 0, len - 1);
            let scores = model.token_scores(hidden, targets, 1.0, 1 << 20).logprobs;
            assert_eq!(
                scores.dtype(),
                burn::tensor::DType::F32,
                "{what}: log-probs not f32"
            );
            let scored = |i: usize| {
                let (r, t) = (i / (len - 1), i % (len - 1));
                batch.attention_mask[r][t] && batch.attention_mask[r][t + 1]
            };
            let ours = host_f32(scores);
            let (_, f32_lp) = golden.f32(&format!("{case}.token_logprobs"));
            let (_, hf_lp) = reference
                .read_f32(&format!("{case}.token_logprobs"))
                .unwrap();
            let (ours_lp, hf_lp) = (
                mean_abs_diff(&ours, &f32_lp, scored),
                mean_abs_diff(&hf_lp, &f32_lp, scored),
            );

            let logits = model.logits(out.hidden);
            assert_eq!(
                logits.dtype(),
                burn::tensor::DType::BF16,
                "{what}: not run in bf16"
            );
            let v = logits.dims()[2];
            let ours = host_f32(logits);
            let mask: Vec<bool> = batch.attention_mask.iter().flatten().copied().collect();
            let keep = |i: usize| mask[i / v];
            let (_, f32_logits) = golden.f32(&format!("{case}.logits"));
            let (_, hf_bf16) = reference.read_f32(&format!("{case}.logits")).unwrap();
            let ours_drift = mean_abs_diff(&ours, &f32_logits, keep);
            let hf_drift = mean_abs_diff(&hf_bf16, &f32_logits, keep);
            println!(
                "{what}: logits |temper bf16 − f32| {ours_drift:.4} vs transformers' {hf_drift:.4} \
                 (×{:.2}); log-probs {ours_lp:.4} vs {hf_lp:.4} (×{:.2})",
                ours_drift / hf_drift,
                ours_lp / hf_lp
            );
            if ours_drift > BF16_LOGIT_DRIFT_RATIO * hf_drift {
                failures.push(format!("{what}: logit drift {ours_drift} vs {hf_drift}"));
            }
            if ours_lp > BF16_LOGPROB_DRIFT_RATIO * hf_lp {
                failures.push(format!("{what}: log-prob drift {ours_lp} vs {hf_lp}"));
            }
            checked += 1;
        }
    }
    assert!(failures.is_empty(), "bf16 drifts too far: {failures:#?}");
    checked
}
