//! Shared helpers: the autodiff CPU backend, tensors from nested vectors, gradients as vectors,
//! and the golden file written by `tools/golden/objectives_reference.py`.

#![allow(dead_code)]

use std::path::PathBuf;

use burn::prelude::*;
use serde::Deserialize;
use temper_learner::{Advantages, LossMetrics, LossOutput, PolicyInputs, PolicyLoss};

/// CPU backend with autodiff.
pub type B = burn::backend::Autodiff<temper_model::backend::Cpu>;

pub fn device() -> burn::tensor::Device<B> {
    Default::default()
}

/// `[rows, cols]` tensor from nested rows (values are rounded to f32).
pub fn matrix(rows: &[Vec<f64>]) -> Tensor<B, 2> {
    let cols = rows.first().map_or(0, Vec::len);
    let flat: Vec<f32> = rows.iter().flatten().map(|&v| v as f32).collect();
    Tensor::from_data(TensorData::new(flat, [rows.len(), cols]), &device())
}

/// `[n]` tensor.
pub fn vector(values: &[f64]) -> Tensor<B, 1> {
    let flat: Vec<f32> = values.iter().map(|&v| v as f32).collect();
    Tensor::from_data(TensorData::new(flat, [values.len()]), &device())
}

/// Host copy of a tensor as f64.
pub fn host<const D: usize, BB: Backend>(t: Tensor<BB, D>) -> Vec<f64> {
    t.into_data().iter::<f64>().collect()
}

/// Per-sequence or per-token advantages, as stored in the golden file.
#[derive(Debug, Clone, Deserialize)]
#[serde(rename_all = "snake_case")]
pub enum AdvantageValues {
    Sequence(Vec<f64>),
    Token(Vec<Vec<f64>>),
}

/// One batch of inputs, as stored in the golden file.
#[derive(Debug, Clone, Deserialize)]
pub struct Batch {
    pub logprobs: Vec<Vec<f64>>,
    pub old_logprobs: Vec<Vec<f64>>,
    pub ref_logprobs: Option<Vec<Vec<f64>>>,
    pub mask: Vec<Vec<f64>>,
    pub advantages: AdvantageValues,
}

/// The result of one objective on a batch: loss, `d loss / d logprobs`, the gradient.
pub struct Run {
    pub output: LossOutput<B>,
    pub loss: f64,
    pub grad: Vec<f64>,
}

impl Batch {
    pub fn shape(&self) -> [usize; 2] {
        [self.logprobs.len(), self.logprobs[0].len()]
    }

    /// Runs `objective` with `logprobs` as the leaf to differentiate.
    pub fn run(&self, objective: &PolicyLoss) -> temper_learner::Result<Run> {
        let logprobs = matrix(&self.logprobs).require_grad();
        let inputs = PolicyInputs {
            logprobs: logprobs.clone(),
            old_logprobs: matrix(&self.old_logprobs),
            ref_logprobs: self.ref_logprobs.as_deref().map(matrix),
            advantages: match &self.advantages {
                AdvantageValues::Sequence(a) => Advantages::Sequence(vector(a)),
                AdvantageValues::Token(a) => Advantages::Token(matrix(a)),
            },
            mask: matrix(&self.mask),
        };
        let output = objective.compute(inputs)?;
        let grads = output.loss.backward();
        let [b, t] = self.shape();
        let grad = logprobs.grad(&grads).map_or_else(|| vec![0.0; b * t], host);
        let loss = host(output.loss.clone())[0];
        Ok(Run { output, loss, grad })
    }
}

#[derive(Debug, Deserialize)]
pub struct Expected {
    pub config: PolicyLoss,
    pub loss: f64,
    pub grad: Vec<Vec<f64>>,
    pub metrics: LossMetrics,
}

#[derive(Debug, Deserialize)]
pub struct Case {
    pub name: String,
    pub description: String,
    #[serde(flatten)]
    pub batch: Batch,
    pub results: Vec<Expected>,
}

#[derive(Debug, Deserialize)]
pub struct SftCase {
    pub name: String,
    pub logprobs: Vec<Vec<f64>>,
    pub mask: Vec<Vec<f64>>,
    pub loss: f64,
    pub grad: Vec<Vec<f64>>,
    pub tokens: usize,
}

#[derive(Debug, Deserialize)]
pub struct AdvantageCase {
    pub estimator: temper_learner::AdvantageEstimator,
    pub group_size: usize,
    pub expected: Vec<f64>,
}

#[derive(Debug, Deserialize)]
pub struct AdvantageGolden {
    pub rewards: Vec<f64>,
    pub cases: Vec<AdvantageCase>,
}

#[derive(Debug, Deserialize)]
pub struct Golden {
    pub log_ratio_clamp: [f64; 2],
    pub cases: Vec<Case>,
    pub sft: Vec<SftCase>,
    pub advantages: AdvantageGolden,
}

pub fn golden() -> Golden {
    let path = PathBuf::from(env!("CARGO_MANIFEST_DIR")).join("tests/data/objectives.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

/// `|a − e| ≤ abs + rel·|e|` for every element, with a message naming `what` and the index.
pub fn assert_close(what: &str, actual: &[f64], expected: &[f64], rel: f64, abs: f64) {
    assert_eq!(actual.len(), expected.len(), "{what}: length");
    for (i, (&a, &e)) in actual.iter().zip(expected).enumerate() {
        assert!(
            a.is_finite() && (a - e).abs() <= abs + rel * e.abs(),
            "{what}[{i}]: {a} vs expected {e} (diff {:.3e})",
            (a - e).abs()
        );
    }
}

/// The tests' I/O runtime (what the `temper` binary builds once per process).
pub fn io_runtime() -> &'static tokio::runtime::Runtime {
    static IO: std::sync::OnceLock<tokio::runtime::Runtime> = std::sync::OnceLock::new();
    IO.get_or_init(|| {
        tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap()
    })
}

/// The rollout source `temper train` composes: the actor's tool loop (no tools) on the trainer's
/// weights, scored by `config`'s reward stack on the I/O runtime.
pub fn in_process_source(
    config: &temper_learner::train::TrainConfig,
) -> temper_actor::InProcessSource {
    let rewards = temper_rewards::RewardSet::from_config(&config.reward_set()).unwrap();
    temper_actor::InProcessSource::new(
        rewards,
        temper_actor::tools::ToolRegistry::new(),
        temper_actor::ToolLoopConfig::default(),
        io_runtime().handle().clone(),
    )
}

/// Runs `temper_learner::train::Trainer` on the CPU to the end of `config`, in `run_dir`.
pub fn train_to_end(config: temper_learner::train::TrainConfig, run_dir: &std::path::Path) {
    use temper_learner::train::{Outcome, Silent, Trainer};
    let source = in_process_source(&config);
    let outcome = Trainer::<temper_model::backend::CpuAutodiff>::new(
        config,
        run_dir,
        false,
        Default::default(),
        std::sync::Arc::default(),
        Box::new(Silent),
    )
    .unwrap()
    .with_source(source)
    .run()
    .unwrap();
    assert!(matches!(outcome, Outcome::Finished(_)));
}

/// Every record of a run's `metrics.jsonl`.
pub fn metrics_records(
    run_dir: &std::path::Path,
) -> Vec<serde_json::Map<String, serde_json::Value>> {
    std::fs::read_to_string(run_dir.join("metrics.jsonl"))
        .unwrap()
        .lines()
        .map(|line| serde_json::from_str(line).unwrap())
        .collect()
}

/// The directory of a run's latest checkpoint.
pub fn latest_checkpoint(run_dir: &std::path::Path) -> PathBuf {
    let checkpoints = run_dir.join("checkpoints");
    let latest = std::fs::read_to_string(checkpoints.join("latest")).unwrap();
    checkpoints.join(latest.trim())
}
