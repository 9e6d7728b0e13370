//! The trainer consumes groups through `RolloutSource`: one RL step on groups from a scripted
//! source (no model sampling: fixed answers, behaviour log-probs scored under the handed-over
//! policy, rewards from the run's reward stack), and one on the in-process actor.

mod common;

use std::path::Path;
use std::sync::{Arc, Mutex};

use temper_learner::train::sequences::ResponseBatch;
use temper_learner::train::{Outcome, Silent, TrainConfig, Trainer};
use temper_model::backend::{Cpu, CpuAutodiff};
use temper_model::logprobs::EntropyGrad;
use temper_model::processor::Processor;
use temper_model::{FinishReason, Qwen3Vl, policy_suppressed_tokens};
use temper_rewards::rollout::{Group, Sample};
use temper_rewards::{RewardSet, RolloutError, RolloutRequest, RolloutSource, Rollouts, Turn};

const SHORT: [&str; 8] = [
    "sft.steps=0",
    "rl.steps=1",
    "rl.prompts_per_step=2",
    "rl.group_size=4",
    "rl.eval_every=0",
    "eval.examples=4",
    "eval.batch_size=4",
    "rl.optim.warmup_steps=0",
];

fn config() -> TrainConfig {
    let path = Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/tiny.toml");
    let overrides: Vec<String> = SHORT.iter().map(|s| s.to_string()).collect();
    TrainConfig::load(&path, &overrides).unwrap()
}

/// What the scripted source was asked.
#[derive(Debug, Clone, PartialEq)]
struct Seen {
    group_size: usize,
    policy_version: u64,
    prompt_ids: Vec<u64>,
}

/// Answers every prompt with the reference (sample 0, and every evaluation sample) or a wrong
/// digit (the other samples), scored by the run's reward stack. With `all_wrong`, every sample
/// answers the wrong digit: every group's rewards are equal, so every advantage is 0.
struct Scripted {
    rewards: RewardSet,
    seen: Arc<Mutex<Vec<Seen>>>,
    all_wrong: bool,
}

impl RolloutSource<Cpu> for Scripted {
    fn next_groups(
        &mut self,
        policy: &Qwen3Vl<Cpu>,
        processor: &Processor,
        request: &RolloutRequest<'_>,
    ) -> Result<Rollouts, RolloutError> {
        self.seen.lock().unwrap().push(Seen {
            group_size: request.group_size,
            policy_version: request.policy_version,
            prompt_ids: request.prompts.iter().map(|p| p.id).collect(),
        });
        let device = Default::default();
        let suppressed = policy_suppressed_tokens(&processor.special);
        let mut groups = Vec::new();
        for prompt in request.prompts {
            let reference = prompt
                .reference
                .clone()
                .expect("shapes prompts have answers");
            let mut samples: Vec<Sample> = (0..request.group_size)
                .map(|i| {
                    // Shapes answers are 0..=4: 9 is always wrong.
                    let text = if i == 0 && !self.all_wrong {
                        reference.clone()
                    } else {
                        "9".into()
                    };
                    let mut ids = processor.tokenizer.encode(&text).unwrap();
                    ids.push(processor.special.im_end);
                    Sample {
                        response_mask: vec![1; ids.len()],
                        behaviour_logprobs: vec![0.0; ids.len()],
                        token_ids: ids,
                        images: Vec::new(),
                        turns: vec![Turn {
                            assistant: text,
                            tool_calls: Vec::new(),
                        }],
                        finish: FinishReason::Stop,
                        policy_version: request.policy_version,
                    }
                })
                .collect();
            // The behaviour log-probs a sampler on these weights would have recorded.
            let rows: Vec<_> = samples.iter().map(|s| (&prompt.prepared, s)).collect();
            let batch =
                ResponseBatch::<Cpu>::new(processor, &rows, &device).map_err(RolloutError::new)?;
            let scores = batch
                .scores(
                    policy,
                    request.params.temperature,
                    &suppressed,
                    EntropyGrad::Metric,
                )
                .map_err(RolloutError::new)?;
            let values: Vec<f32> = scores.logprobs.into_data().iter::<f32>().collect();
            for (row, sample) in samples.iter_mut().enumerate() {
                let n = sample.token_ids.len();
                let end = (row + 1) * batch.window;
                sample.behaviour_logprobs = values[end - n..end].to_vec();
            }
            let reward_samples: Vec<_> = samples
                .iter()
                .map(|s| s.reward_sample(prompt, request.params.max_new_tokens))
                .collect();
            let scored = self
                .rewards
                .score_blocking(&reward_samples)
                .map_err(RolloutError::new)?;
            groups.push(Group::scored(prompt.id, samples, scored));
        }
        Ok(Rollouts {
            groups,
            generation_seconds: 0.0,
            scoring_seconds: 0.0,
        })
    }
}

/// A fresh run of `config` in `run_dir` on groups from `source`.
fn train(config: TrainConfig, run_dir: &Path, source: Scripted) -> Outcome {
    Trainer::<CpuAutodiff>::new(
        config,
        run_dir,
        false,
        Default::default(),
        Arc::default(),
        Box::new(Silent),
    )
    .unwrap()
    .with_source(source)
    .run()
    .unwrap()
}

fn records_of(run_dir: &Path, stage: &str) -> Vec<serde_json::Map<String, serde_json::Value>> {
    common::metrics_records(run_dir)
        .into_iter()
        .filter(|r| r["stage"] == stage)
        .collect()
}

#[test]
fn one_rl_step_trains_on_groups_from_a_scripted_source() {
    let config = config();
    let seen = Arc::new(Mutex::new(Vec::new()));
    let source = Scripted {
        rewards: RewardSet::from_config(&config.reward_set()).unwrap(),
        seen: seen.clone(),
        all_wrong: false,
    };
    let dir = tempfile::tempdir().unwrap();
    let outcome = train(config, dir.path(), source);
    let Outcome::Finished(summary) = outcome else {
        panic!("the run finishes");
    };
    // Every evaluation answer is the reference: accuracy comes from the source's groups.
    assert_eq!(summary.eval_accuracy_initial, 1.0);
    assert_eq!(summary.eval_accuracy_final, 1.0);

    let rl = records_of(dir.path(), "rl");
    assert_eq!(rl.len(), 1);
    let step = &rl[0];
    let f = |key: &str| {
        step[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key}: {step:?}"))
    };
    // One right answer in four per group.
    assert_eq!(f("reward_mean"), 0.25);
    assert_eq!(f("train_accuracy"), 0.25);
    assert!(f("loss").is_finite());
    assert!(f("grad_norm") > 0.0);
    // The learner scores the tokens the source returned where the source scored them.
    assert!(
        f("logprob_mismatch_mean") < 1e-5,
        "{}",
        f("logprob_mismatch_mean")
    );
    let version = step["policy_version"].as_u64().unwrap();
    assert!(version >= 1);

    // initial eval, after-SFT eval, one RL round, final eval: in order, on the right weights.
    let mut seen = seen.lock().unwrap().clone();
    let eval_ids: Vec<u64> = (0..4).collect();
    // RL reads the training stream from its cursor: two consecutive prompts.
    let rl_ids = seen[2].prompt_ids.clone();
    assert_eq!(rl_ids.len(), 2);
    assert_eq!(rl_ids[1], rl_ids[0] + 1);
    seen[2].prompt_ids = vec![0, 1];
    assert_eq!(
        seen,
        vec![
            Seen {
                group_size: 1,
                policy_version: 0,
                prompt_ids: eval_ids.clone(),
            },
            Seen {
                group_size: 1,
                policy_version: 0,
                prompt_ids: eval_ids.clone(),
            },
            Seen {
                group_size: 4,
                policy_version: 0,
                prompt_ids: vec![0, 1],
            },
            Seen {
                group_size: 1,
                policy_version: version,
                prompt_ids: eval_ids,
            },
        ]
    );
}

#[test]
fn one_rl_step_trains_on_groups_from_the_in_process_actor() {
    // Without dynamic sampling every group is trained on (a random policy's groups may all
    // score 0), so the step always updates and measures the mismatch.
    let dir = tempfile::tempdir().unwrap();
    let tiny =
        std::fs::read_to_string(Path::new(env!("CARGO_MANIFEST_DIR")).join("../configs/tiny.toml"))
            .unwrap();
    let without: String = tiny
        .lines()
        .filter(|l| !l.starts_with("dynamic_sampling"))
        .map(|l| format!("{l}\n"))
        .collect();
    assert_ne!(without.len(), tiny.len(), "tiny.toml sets dynamic_sampling");
    let path = dir.path().join("tiny.toml");
    std::fs::write(&path, without).unwrap();
    let overrides: Vec<String> = SHORT.iter().map(|s| s.to_string()).collect();
    let config = TrainConfig::load(&path, &overrides).unwrap();
    let dir = tempfile::tempdir().unwrap();
    common::train_to_end(config, dir.path());
    let rl = records_of(dir.path(), "rl");
    assert_eq!(rl.len(), 1);
    let step = &rl[0];
    let f = |key: &str| {
        step[key]
            .as_f64()
            .unwrap_or_else(|| panic!("{key}: {step:?}"))
    };
    assert!(f("loss").is_finite());
    assert!(f("response_length_mean") >= 1.0);
    // The actor sampled on the learner's current weights: its behaviour log-probs are the
    // learner's recomputed ones.
    assert!(
        f("logprob_mismatch_mean") < 1e-3,
        "{}",
        f("logprob_mismatch_mean")
    );
    assert_eq!(f("reward/samples"), 8.0);
}

/// `rl.entropy_coef`: with every advantage 0 the policy loss has no gradient, so the entropy bonus
/// is all the update sees — off, there is no gradient; on, the policy's entropy on the sampled
/// tokens rises from one step to the next.
#[test]
fn the_entropy_bonus_alone_raises_the_policy_entropy() {
    let run = |coef: f64| {
        let mut config = config();
        config.rl.steps = 2;
        config.rl.entropy_coef = coef;
        // Keep the uninformative groups (dynamic sampling would drop every one).
        config.rl.dynamic_sampling = None;
        let source = Scripted {
            rewards: RewardSet::from_config(&config.reward_set()).unwrap(),
            seen: Arc::default(),
            all_wrong: true,
        };
        let dir = tempfile::tempdir().unwrap();
        train(config, dir.path(), source);
        let rl = records_of(dir.path(), "rl");
        assert_eq!(rl.len(), 2);
        let f = |step: usize, key: &str| {
            rl[step]
                .get(key)
                .and_then(serde_json::Value::as_f64)
                .unwrap_or_else(|| panic!("{key}: {:?}", rl[step]))
        };
        assert_eq!(f(0, "advantage_zero_fraction"), 1.0);
        assert_eq!(f(1, "advantage_zero_fraction"), 1.0);
        (f(0, "grad_norm"), f(0, "entropy"), f(1, "entropy"))
    };
    let (grad_off, before_off, after_off) = run(0.0);
    assert_eq!(grad_off, 0.0, "zero advantages, no bonus: no gradient");
    let (grad_on, before_on, after_on) = run(0.05);
    assert!(grad_on > 0.0);
    assert_eq!(
        before_on, before_off,
        "the same policy before the first update"
    );
    // (Without the bonus only AdamW's weight decay moves the weights, by a factor 1 - 1e-5.)
    assert!(
        after_on > before_on + 1e-4 && after_on > after_off + 1e-4,
        "entropy {before_on} -> {after_on} with the bonus, {before_off} -> {after_off} without"
    );
}
