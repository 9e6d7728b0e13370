//! The objectives against an independent torch reference (`tools/golden/objectives_reference.py`,
//! float64 autograd): loss, `d loss / d logprobs` and metrics for every case and objective; then
//! the identities that hold between objectives (on-policy gradients, GSPO-token = GSPO), NaN-free
//! handling of untrained positions, and input errors.

mod common;

use burn::prelude::*;
use burn::tensor::Tolerance;
use common::{AdvantageValues, B, Batch, assert_close, golden, host, matrix};
use temper_learner::objectives::sft;
use temper_learner::{
    Advantages, DapoConfig, DrGrpoConfig, GrpoConfig, GspoConfig, LearnerError, PolicyInputs,
    PolicyLoss, SapoConfig,
};

type FT = f32;

/// `rel 1e-5, abs 1e-5`: f32 arithmetic against an f64 reference on the same f32 inputs.
fn tolerance() -> Tolerance<FT> {
    Tolerance::rel_abs(1e-5, 1e-5)
}

fn data(values: &[f64], shape: [usize; 2]) -> TensorData {
    TensorData::new(values.iter().map(|&v| v as f32).collect::<Vec<_>>(), shape)
}

fn flat(rows: &[Vec<f64>]) -> Vec<f64> {
    rows.iter().flatten().copied().collect()
}

fn assert_option_close(what: &str, actual: Option<f64>, expected: Option<f64>) {
    match (actual, expected) {
        (Some(a), Some(e)) => assert_close(what, &[a], &[e], 1e-5, 1e-6),
        (None, None) => {}
        _ => panic!("{what}: {actual:?} vs expected {expected:?}"),
    }
}

#[test]
fn losses_gradients_and_metrics_equal_the_torch_reference() {
    let golden = golden();
    assert_eq!(
        golden.log_ratio_clamp,
        [
            temper_learner::objectives::LOG_RATIO_MIN,
            temper_learner::objectives::LOG_RATIO_MAX
        ]
    );
    let mut checked = 0;
    for case in &golden.cases {
        for expected in &case.results {
            let what = format!("{} / {:?}", case.name, expected.config);
            eprintln!("checking {what}");
            let run = case.batch.run(&expected.config).unwrap();
            // loss
            data(&[run.loss], [1, 1])
                .assert_approx_eq::<FT>(&data(&[expected.loss], [1, 1]), tolerance());
            // gradient
            let shape = case.batch.shape();
            data(&run.grad, shape)
                .assert_approx_eq::<FT>(&data(&flat(&expected.grad), shape), tolerance());
            // metrics
            let (m, e) = (run.output.metrics, expected.metrics);
            assert_eq!(m.tokens, e.tokens, "{what}: tokens");
            assert_eq!(m.sequences, e.sequences, "{what}: sequences");
            assert_close(&format!("{what}: loss"), &[m.loss], &[e.loss], 1e-5, 1e-6);
            assert_close(
                &format!("{what}: pg_loss"),
                &[m.pg_loss],
                &[e.pg_loss],
                1e-5,
                1e-6,
            );
            for (name, a, x) in [
                ("clip_fraction", m.clip_fraction, e.clip_fraction),
                ("gate_weight_mean", m.gate_weight_mean, e.gate_weight_mean),
                ("ratio_mean", m.ratio_mean, e.ratio_mean),
                ("ratio_min", m.ratio_min, e.ratio_min),
                ("ratio_max", m.ratio_max, e.ratio_max),
                ("approx_kl", m.approx_kl, e.approx_kl),
                ("seq_ratio_mean", m.seq_ratio_mean, e.seq_ratio_mean),
                ("kl", m.kl, e.kl),
            ] {
                assert_option_close(&format!("{what}: {name}"), a, x);
            }
            checked += 1;
        }
    }
    assert!(
        checked >= 90,
        "only {checked} objective results in the golden file"
    );
}

#[test]
fn sft_cross_entropy_equals_the_torch_reference() {
    for case in golden().sft {
        let logprobs = matrix(&case.logprobs).require_grad();
        let out = sft::cross_entropy(logprobs.clone(), matrix(&case.mask)).unwrap();
        let grads = out.loss.backward();
        let shape = [case.logprobs.len(), case.logprobs[0].len()];
        data(&host(out.loss), [1, 1])
            .assert_approx_eq::<FT>(&data(&[case.loss], [1, 1]), tolerance());
        data(&host(logprobs.grad(&grads).unwrap()), shape)
            .assert_approx_eq::<FT>(&data(&flat(&case.grad), shape), tolerance());
        assert_eq!(out.metrics.tokens, case.tokens, "{}", case.name);
        assert_close(&case.name, &[out.metrics.loss], &[case.loss], 1e-6, 1e-6);
    }
}

/// A batch with on-policy log-probs: `old_logprobs == logprobs`, so every ratio is exactly 1.
fn on_policy(advantages: AdvantageValues) -> Batch {
    let case = golden()
        .cases
        .into_iter()
        .find(|c| c.name == "mixed_lengths")
        .unwrap();
    Batch {
        old_logprobs: case.batch.logprobs.clone(),
        advantages,
        ..case.batch
    }
}

/// `−m_{i,t} Â_{i,t} · weight_i`, the on-policy gradient of every objective up to its
/// aggregation weight.
fn on_policy_gradient(batch: &Batch, weight: impl Fn(usize) -> f64) -> Vec<f64> {
    let [b, t] = batch.shape();
    let mut grad = vec![0.0; b * t];
    for i in 0..b {
        for j in 0..t {
            let advantage = match &batch.advantages {
                AdvantageValues::Sequence(a) => a[i],
                AdvantageValues::Token(a) => a[i][j],
            };
            grad[i * t + j] = -batch.mask[i][j] * (advantage as f32 as f64) * weight(i);
        }
    }
    grad
}

/// On-policy (`r = 1` everywhere, `β = 0`), with `n_i` trained tokens in row `i`, `|S|` non-empty
/// rows, `N = Σ n_i`, `B` rows and `L = max_response_len`:
///
/// `∂L/∂log π_θ(y_{i,t}) = −m_{i,t} Â_{i,t} / (|S| n_i)` for GSPO, GSPO-token, GRPO and SAPO
/// (SAPO because `f'(1) = 4 σ(0)(1 − σ(0)) = 1`; GSPO because `s_i = 1` lies inside its clip
/// range and `∂s_i/∂log π_θ(y_{i,t}) = s_i / n_i`), `−m Â / N` for DAPO and `−m Â / (B L)` for
/// Dr.GRPO: the same direction, with DAPO's weight `|S| n_i / N` and Dr.GRPO's `|S| n_i / (B L)`
/// times the first group's.
#[test]
fn on_policy_gspo_gspo_token_grpo_and_sapo_share_one_gradient() {
    let batch = on_policy(AdvantageValues::Sequence(vec![1.2, -0.4, 0.7, -1.5]));
    let [b, _] = batch.shape();
    let lengths: Vec<f64> = batch.mask.iter().map(|row| row.iter().sum()).collect();
    let sequences = lengths.iter().filter(|&&n| n > 0.0).count() as f64;
    let tokens: f64 = lengths.iter().sum();
    let max_len = 8;

    let seq_mean_token_mean = on_policy_gradient(&batch, |i| 1.0 / (sequences * lengths[i]));
    for objective in [
        PolicyLoss::Gspo(GspoConfig::default()),
        PolicyLoss::GspoToken(GspoConfig::default()),
        PolicyLoss::Grpo(GrpoConfig::default()),
        PolicyLoss::Sapo(SapoConfig::default()),
    ] {
        let run = batch.run(&objective).unwrap();
        assert_close(
            &format!("{objective:?}"),
            &run.grad,
            &seq_mean_token_mean,
            1e-5,
            1e-7,
        );
        assert_eq!(run.output.metrics.ratio_max, Some(1.0));
    }
    let dapo = batch.run(&PolicyLoss::Dapo(DapoConfig::default())).unwrap();
    assert_close(
        "dapo",
        &dapo.grad,
        &on_policy_gradient(&batch, |_| 1.0 / tokens),
        1e-5,
        1e-7,
    );
    let dr_grpo = batch
        .run(&PolicyLoss::DrGrpo(DrGrpoConfig::new(max_len)))
        .unwrap();
    assert_close(
        "dr_grpo",
        &dr_grpo.grad,
        &on_policy_gradient(&batch, |_| 1.0 / (b * max_len) as f64),
        1e-5,
        1e-7,
    );
}

#[test]
fn on_policy_token_level_objectives_share_one_gradient_with_token_advantages() {
    let advantages = vec![
        vec![0.5, -1.0, 2.0, 0.0, 1.5, -0.5],
        vec![-0.3, 0.8, 1.1, 9.0, 9.0, 9.0],
        vec![1.0, 1.0, -7.0, -7.0, -2.0, 0.25],
        vec![0.1, 0.2, 0.3, -0.4, -0.5, 3.0],
    ];
    let batch = on_policy(AdvantageValues::Token(advantages));
    let lengths: Vec<f64> = batch.mask.iter().map(|row| row.iter().sum()).collect();
    let expected = on_policy_gradient(&batch, |i| 1.0 / (4.0 * lengths[i]));
    for objective in [
        PolicyLoss::GspoToken(GspoConfig::default()),
        PolicyLoss::Grpo(GrpoConfig::default()),
        PolicyLoss::Sapo(SapoConfig::default()),
    ] {
        let run = batch.run(&objective).unwrap();
        assert_close(&format!("{objective:?}"), &run.grad, &expected, 1e-5, 1e-7);
    }
}

/// With one advantage per sequence, GSPO-token's `s_{i,t} = sg[s_i] π/sg[π]` has GSPO's value
/// and gradient, clipped or not, with or without KL.
#[test]
fn gspo_token_equals_gspo_for_sequence_advantages() {
    let configs = [
        GspoConfig::default(),
        GspoConfig {
            eps_low: 0.2,
            eps_high: 0.3,
            kl_coef: 0.0,
        },
        GspoConfig {
            kl_coef: 0.1,
            ..GspoConfig::default()
        },
    ];
    let mut compared = 0;
    for case in golden().cases {
        if matches!(case.batch.advantages, AdvantageValues::Token(_)) {
            continue;
        }
        for config in configs {
            if config.kl_coef > 0.0 && case.batch.ref_logprobs.is_none() {
                continue;
            }
            let what = format!("{} / {config:?}", case.name);
            let gspo = case.batch.run(&PolicyLoss::Gspo(config)).unwrap();
            let token = case.batch.run(&PolicyLoss::GspoToken(config)).unwrap();
            assert_close(
                &format!("{what}: loss"),
                &[token.loss],
                &[gspo.loss],
                1e-6,
                1e-7,
            );
            assert_close(
                &format!("{what}: grad"),
                &token.grad,
                &gspo.grad,
                1e-6,
                1e-7,
            );
            let (t, g) = (token.output.metrics, gspo.output.metrics);
            assert_eq!(t.clip_fraction, g.clip_fraction, "{what}");
            assert_option_close(&what, t.seq_ratio_mean, g.seq_ratio_mean);
            compared += 1;
        }
    }
    assert!(compared >= 15);
}

fn all_objectives() -> Vec<PolicyLoss> {
    vec![
        PolicyLoss::Gspo(GspoConfig {
            kl_coef: 0.1,
            ..GspoConfig::default()
        }),
        PolicyLoss::GspoToken(GspoConfig {
            kl_coef: 0.1,
            ..GspoConfig::default()
        }),
        PolicyLoss::Sapo(SapoConfig {
            kl_coef: 0.1,
            ..SapoConfig::default()
        }),
        PolicyLoss::Grpo(GrpoConfig {
            eps: 0.2,
            kl_coef: 0.04,
        }),
        PolicyLoss::Dapo(DapoConfig::default()),
        PolicyLoss::DrGrpo(DrGrpoConfig::new(6)),
    ]
}

/// Padding, prompt and tool positions may hold NaN or ±inf in any input: the loss, gradient and
/// metrics equal those of the same batch with zeros there.
#[test]
fn untrained_positions_holding_nan_or_inf_change_nothing() {
    let case = golden()
        .cases
        .into_iter()
        .find(|c| c.name == "mixed_lengths")
        .unwrap();
    let clean = case.batch;
    let mut dirty = clean.clone();
    let poison = [f64::NAN, f64::INFINITY, f64::NEG_INFINITY];
    let mut k = 0;
    for (i, row) in clean.mask.iter().enumerate() {
        for (j, &m) in row.iter().enumerate() {
            if m == 0.0 {
                dirty.logprobs[i][j] = poison[k % 3];
                dirty.old_logprobs[i][j] = poison[(k + 1) % 3];
                dirty.ref_logprobs.as_mut().unwrap()[i][j] = poison[(k + 2) % 3];
                k += 1;
            }
        }
    }
    assert!(k >= 3);
    for objective in all_objectives() {
        let what = format!("{objective:?}");
        let a = clean.run(&objective).unwrap();
        let b = dirty.run(&objective).unwrap();
        assert_close(&what, &[b.loss], &[a.loss], 0.0, 0.0);
        assert_close(&what, &b.grad, &a.grad, 0.0, 0.0);
        assert_eq!(a.output.metrics, b.output.metrics, "{what}");
    }
    // Per-token advantages may be garbage at untrained positions too.
    let mut token_advantages = vec![vec![0.5; 6]; 4];
    for (i, row) in clean.mask.iter().enumerate() {
        for (j, &m) in row.iter().enumerate() {
            if m == 0.0 {
                token_advantages[i][j] = f64::NAN;
            }
        }
    }
    let dirty = Batch {
        advantages: AdvantageValues::Token(token_advantages),
        ..dirty
    };
    let clean = Batch {
        advantages: AdvantageValues::Sequence(vec![0.5; 4]),
        ..clean
    };
    for objective in all_objectives().into_iter().skip(1) {
        let what = format!("{objective:?}");
        let a = clean.run(&objective).unwrap();
        let b = dirty.run(&objective).unwrap();
        assert_close(&what, &[b.loss], &[a.loss], 0.0, 0.0);
        assert_close(&what, &b.grad, &a.grad, 0.0, 0.0);
    }
}

/// Log-ratios beyond the clamp give finite values and exactly zero gradient (the term is a
/// constant); the ratio metrics report the clamped ratio.
#[test]
fn log_ratios_beyond_the_clamp_are_finite_with_zero_gradient() {
    let batch = Batch {
        logprobs: vec![vec![-0.5, -0.5, -0.5], vec![-0.5, -0.5, -0.5]],
        old_logprobs: vec![vec![-40.0, -40.0, -40.0], vec![60.0, 60.0, 60.0]],
        ref_logprobs: None,
        mask: vec![vec![1.0; 3], vec![1.0; 3]],
        advantages: AdvantageValues::Sequence(vec![-1.0, 1.0]),
    };
    for objective in all_objectives() {
        // no reference log-probs here: switch the KL terms off
        let objective = match objective {
            PolicyLoss::Gspo(c) => PolicyLoss::Gspo(GspoConfig { kl_coef: 0.0, ..c }),
            PolicyLoss::GspoToken(c) => PolicyLoss::GspoToken(GspoConfig { kl_coef: 0.0, ..c }),
            PolicyLoss::Sapo(c) => PolicyLoss::Sapo(SapoConfig { kl_coef: 0.0, ..c }),
            PolicyLoss::Grpo(c) => PolicyLoss::Grpo(GrpoConfig { kl_coef: 0.0, ..c }),
            other => other,
        };
        let run = batch.run(&objective).unwrap();
        assert!(run.loss.is_finite(), "{objective:?}: {}", run.loss);
        assert_eq!(run.grad, vec![0.0; 6], "{objective:?}");
        let m = run.output.metrics;
        assert_close(
            "ratio_max",
            &[m.ratio_max.unwrap()],
            &[10f64.exp()],
            1e-6,
            0.0,
        );
        assert_close(
            "ratio_min",
            &[m.ratio_min.unwrap()],
            &[(-20f64).exp()],
            1e-5,
            0.0,
        );
    }
}

#[test]
fn a_batch_without_trained_tokens_has_zero_loss_gradient_and_no_token_metrics() {
    let batch = Batch {
        logprobs: vec![vec![-1.0, -2.0], vec![-0.5, -0.1]],
        old_logprobs: vec![vec![5.0, -9.0], vec![-0.5, -0.1]],
        ref_logprobs: Some(vec![vec![3.0, -3.0], vec![0.0, 0.0]]),
        mask: vec![vec![0.0; 2]; 2],
        advantages: AdvantageValues::Sequence(vec![1.0, -1.0]),
    };
    for objective in all_objectives() {
        let run = batch.run(&objective).unwrap();
        assert_eq!(run.loss, 0.0, "{objective:?}");
        assert_eq!(run.grad, vec![0.0; 4], "{objective:?}");
        let m = run.output.metrics;
        assert_eq!((m.tokens, m.sequences), (0, 0));
        assert_eq!((m.ratio_mean, m.clip_fraction, m.kl), (None, None, None));
    }
}

fn inputs(advantages: Advantages<B>, ref_logprobs: Option<Tensor<B, 2>>) -> PolicyInputs<B> {
    let lp = matrix(&[vec![-1.0, -2.0, -0.5], vec![-0.3, -0.2, -0.1]]);
    PolicyInputs {
        logprobs: lp.clone(),
        old_logprobs: lp.clone(),
        ref_logprobs,
        advantages,
        mask: lp.ones_like(),
    }
}

#[test]
fn invalid_inputs_are_errors_that_name_the_input() {
    let device = common::device();
    let seq = || Advantages::Sequence(Tensor::<B, 1>::from_floats([1.0, -1.0], &device));
    let tok = || Advantages::Token(Tensor::<B, 2>::zeros([2, 3], &device));

    // GSPO has one ratio per sequence: per-token advantages are rejected.
    let err = PolicyLoss::Gspo(GspoConfig::default())
        .compute(inputs(tok(), None))
        .unwrap_err();
    assert!(
        matches!(
            err,
            LearnerError::Input {
                name: "advantages",
                ..
            }
        ),
        "{err}"
    );
    assert!(err.to_string().contains("gspo_token"), "{err}");
    assert!(!PolicyLoss::Gspo(GspoConfig::default()).allows_token_advantages());
    assert!(
        PolicyLoss::GspoToken(GspoConfig::default())
            .compute(inputs(tok(), None))
            .is_ok()
    );

    // A positive KL coefficient needs reference log-probs.
    let err = PolicyLoss::Grpo(GrpoConfig {
        eps: 0.2,
        kl_coef: 0.1,
    })
    .compute(inputs(seq(), None))
    .unwrap_err();
    assert!(
        matches!(
            err,
            LearnerError::Input {
                name: "ref_logprobs",
                ..
            }
        ),
        "{err}"
    );

    // Shapes.
    let err = PolicyLoss::Sapo(SapoConfig::default())
        .compute(inputs(
            Advantages::Sequence(Tensor::<B, 1>::zeros([3], &device)),
            None,
        ))
        .unwrap_err();
    assert_eq!(
        err,
        LearnerError::Shape {
            name: "advantages",
            actual: vec![3],
            expected: vec![2]
        }
    );
    let err = PolicyLoss::Dapo(DapoConfig::default())
        .compute(inputs(seq(), Some(Tensor::<B, 2>::zeros([2, 4], &device))))
        .unwrap_err();
    assert!(
        matches!(
            err,
            LearnerError::Shape {
                name: "ref_logprobs",
                ..
            }
        ),
        "{err}"
    );
    let mut bad_mask = inputs(seq(), None);
    bad_mask.mask = Tensor::<B, 2>::ones([3, 3], &device);
    let err = PolicyLoss::default().compute(bad_mask).unwrap_err();
    assert!(
        matches!(err, LearnerError::Shape { name: "mask", .. }),
        "{err}"
    );

    // An invalid config is rejected by compute too.
    let err = PolicyLoss::Sapo(SapoConfig {
        tau_neg: 0.0,
        ..SapoConfig::default()
    })
    .compute(inputs(seq(), None))
    .unwrap_err();
    assert!(err.to_string().contains("sapo.tau_neg"), "{err}");

    let err = sft::cross_entropy(
        Tensor::<B, 2>::zeros([2, 3], &device),
        Tensor::<B, 2>::zeros([2, 2], &device),
    )
    .unwrap_err();
    assert!(
        matches!(err, LearnerError::Shape { name: "mask", .. }),
        "{err}"
    );
}
