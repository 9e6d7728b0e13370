//! Advantage estimators against hand-derived values and the torch reference (`torch.std`,
//! unbiased), all-equal groups (exactly 0), groups of size 1 (error), and the per-token
//! broadcast.

mod common;

use burn::prelude::*;
use common::{B, assert_close, golden, host, matrix};
use temper_learner::{AdvantageEstimator, LearnerError, token_advantages};

fn f64s(values: &[f32]) -> Vec<f64> {
    values.iter().map(|&v| v as f64).collect()
}

#[test]
fn group_norm_uses_the_sample_std() {
    // [1, 0, 0, 1]: mean 1/2, deviations ±1/2, sample variance (4 · 1/4) / 3 = 1/3, std 1/√3,
    // so Â = ±(1/2)·√3 = ±√3/2 (the population std 1/2 would give ±1).
    let exact = AdvantageEstimator::GroupNorm {
        eps: 0.0,
        std: true,
    };
    let half_root3 = 3f64.sqrt() / 2.0;
    let a = exact.compute(&[1.0, 0.0, 0.0, 1.0], 4).unwrap();
    assert_close(
        "group_norm",
        &f64s(&a),
        &[half_root3, -half_root3, -half_root3, half_root3],
        1e-6,
        0.0,
    );
    // With the default ε = 1e-6: (1/2) / (1/√3 + 1e-6).
    let a = AdvantageEstimator::grpo()
        .compute(&[1.0, 0.0, 0.0, 1.0], 4)
        .unwrap();
    let with_eps = 0.5 / (1.0 / 3f64.sqrt() + 1e-6);
    assert_close("grpo", &f64s(&a[..1]), &[with_eps], 1e-7, 0.0);
    // Two groups of 2: [3, 1] → mean 2, sample std √2 → ±1/√2; [5, 5] → 0.
    let a = exact.compute(&[3.0, 1.0, 5.0, 5.0], 2).unwrap();
    let r = 0.5f64.sqrt();
    assert_close("pairs", &f64s(&a), &[r, -r, 0.0, 0.0], 1e-6, 0.0);
}

#[test]
fn dr_grpo_centres_without_dividing_and_leave_one_out_uses_the_others_mean() {
    let rewards = [0.5, 0.2, 0.9, 0.2];
    // mean 0.45
    let a = AdvantageEstimator::dr_grpo().compute(&rewards, 4).unwrap();
    assert_close(
        "dr_grpo",
        &f64s(&a),
        &[0.05, -0.25, 0.45, -0.25],
        1e-6,
        1e-7,
    );
    // R_i − mean of the other three: 0.5 − 1.3/3, 0.2 − 1.6/3, 0.9 − 0.9/3, 0.2 − 1.6/3
    let a = AdvantageEstimator::LeaveOneOut
        .compute(&rewards, 4)
        .unwrap();
    let expected = [
        0.5 - 1.3 / 3.0,
        0.2 - 1.6 / 3.0,
        0.9 - 0.9 / 3.0,
        0.2 - 1.6 / 3.0,
    ];
    assert_close("leave_one_out", &f64s(&a), &expected, 1e-6, 1e-7);
    // = G/(G−1) · Dr.GRPO's
    let dr = AdvantageEstimator::dr_grpo().compute(&rewards, 4).unwrap();
    let scaled: Vec<f64> = dr.iter().map(|&d| d as f64 * 4.0 / 3.0).collect();
    assert_close("loo = 4/3 · centred", &f64s(&a), &scaled, 1e-6, 1e-7);
}

#[test]
fn all_equal_groups_get_exactly_zero() {
    // 0.1 is not exact in binary; a computed mean need not equal it bit for bit.
    for rewards in [[1.0f32; 4], [0.1; 4], [-7.3; 4], [0.0; 4]] {
        for estimator in [
            AdvantageEstimator::grpo(),
            AdvantageEstimator::GroupNorm {
                eps: 0.0,
                std: true,
            },
            AdvantageEstimator::dr_grpo(),
            AdvantageEstimator::LeaveOneOut,
        ] {
            let a = estimator.compute(&rewards, 4).unwrap();
            assert_eq!(a, vec![0.0; 4], "{estimator:?} on {rewards:?}");
        }
    }
}

#[test]
fn advantages_equal_the_torch_reference() {
    let golden = golden().advantages;
    let rewards: Vec<f32> = golden.rewards.iter().map(|&r| r as f32).collect();
    for case in golden.cases {
        let a = case.estimator.compute(&rewards, case.group_size).unwrap();
        assert_close(
            &format!("{:?} / {}", case.estimator, case.group_size),
            &f64s(&a),
            &case.expected,
            1e-5,
            1e-6,
        );
    }
}

#[test]
fn bad_groups_and_rewards_are_errors() {
    for estimator in [AdvantageEstimator::grpo(), AdvantageEstimator::LeaveOneOut] {
        let err = estimator.compute(&[1.0, 2.0], 1).unwrap_err();
        assert!(
            matches!(
                err,
                LearnerError::Input {
                    name: "group_size",
                    ..
                }
            ),
            "{err}"
        );
        assert!(estimator.compute(&[1.0, 2.0], 0).is_err());
        let err = estimator.compute(&[1.0, 2.0, 3.0], 2).unwrap_err();
        assert!(
            matches!(
                err,
                LearnerError::Input {
                    name: "rewards",
                    ..
                }
            ),
            "{err}"
        );
        let err = estimator.compute(&[1.0, f32::NAN], 2).unwrap_err();
        assert!(err.to_string().contains("reward 1 is NaN"), "{err}");
    }
    assert_eq!(AdvantageEstimator::grpo().compute(&[], 4), Ok(vec![]));
}

#[test]
fn sequence_advantages_broadcast_to_trained_tokens() {
    let mask = matrix(&[vec![1.0, 1.0, 0.0], vec![0.0, 1.0, 1.0], vec![0.0; 3]]);
    let grid: Tensor<B, 2> = token_advantages(&[0.5, -2.0, 7.0], mask.clone()).unwrap();
    assert_eq!(grid.dims(), [3, 3]);
    assert_eq!(
        host(grid),
        vec![0.5, 0.5, 0.0, 0.0, -2.0, -2.0, 0.0, 0.0, 0.0]
    );
    let err = token_advantages(&[0.5, -2.0], mask).unwrap_err();
    assert!(
        matches!(
            err,
            LearnerError::Shape {
                name: "advantages",
                ..
            }
        ),
        "{err}"
    );
}
