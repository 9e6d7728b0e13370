//! The serde form of [`PolicyLoss`] and [`AdvantageEstimator`] (tag `kind`, paper defaults,
//! unknown kinds and fields rejected) and `validate()` naming the offending field.

use temper_learner::{
    AdvantageEstimator, Aggregation, DapoConfig, DrGrpoConfig, GrpoConfig, GspoConfig,
    LearnerError, PolicyLoss, SapoConfig,
};

fn parse(json: &str) -> Result<PolicyLoss, serde_json::Error> {
    serde_json::from_str(json)
}

#[test]
fn every_kind_parses_with_the_paper_defaults() {
    let gspo = GspoConfig {
        eps_low: 3e-4,
        eps_high: 4e-4,
        kl_coef: 0.0,
    };
    let cases = [
        (r#"{"kind": "gspo"}"#, PolicyLoss::Gspo(gspo)),
        (r#"{"kind": "gspo_token"}"#, PolicyLoss::GspoToken(gspo)),
        (
            r#"{"kind": "sapo"}"#,
            PolicyLoss::Sapo(SapoConfig {
                tau_pos: 1.0,
                tau_neg: 1.05,
                kl_coef: 0.0,
            }),
        ),
        (
            r#"{"kind": "grpo"}"#,
            PolicyLoss::Grpo(GrpoConfig {
                eps: 0.2,
                kl_coef: 0.0,
            }),
        ),
        (
            r#"{"kind": "dapo"}"#,
            PolicyLoss::Dapo(DapoConfig {
                eps_low: 0.2,
                eps_high: 0.28,
            }),
        ),
        (
            r#"{"kind": "dr_grpo", "max_response_len": 4096}"#,
            PolicyLoss::DrGrpo(DrGrpoConfig {
                eps: 0.2,
                max_response_len: 4096,
            }),
        ),
    ];
    for (json, expected) in cases {
        let parsed = parse(json).unwrap();
        assert_eq!(parsed, expected, "{json}");
        assert_eq!(parsed.validate(), Ok(()), "{json}");
        // round trip
        let back = serde_json::to_string(&parsed).unwrap();
        assert_eq!(parse(&back).unwrap(), parsed, "{back}");
        assert!(
            back.contains(&format!("\"kind\":\"{}\"", parsed.kind())),
            "{back}"
        );
    }
    assert_eq!(PolicyLoss::default(), PolicyLoss::Gspo(gspo));
}

#[test]
fn fields_override_defaults_and_integers_are_accepted_for_floats() {
    let parsed = parse(r#"{"kind": "sapo", "tau_neg": 2, "kl_coef": 0.01}"#).unwrap();
    assert_eq!(
        parsed,
        PolicyLoss::Sapo(SapoConfig {
            tau_pos: 1.0,
            tau_neg: 2.0,
            kl_coef: 0.01,
        })
    );
}

#[test]
fn unknown_kinds_unknown_fields_and_missing_required_fields_are_rejected() {
    for json in [
        r#"{"kind": "ppo"}"#,
        r#"{"eps": 0.2}"#,
        r#"{"kind": "gspo", "epsilon": 0.2}"#,
        r#"{"kind": "dapo", "kl_coef": 0.1}"#,
        r#"{"kind": "grpo", "eps_high": 0.28}"#,
        r#"{"kind": "dr_grpo"}"#,
    ] {
        let err = parse(json).unwrap_err().to_string();
        assert!(
            err.contains("unknown") || err.contains("missing"),
            "{json}: {err}"
        );
    }
}

#[test]
fn validate_names_the_offending_field() {
    let cases = [
        (
            PolicyLoss::Gspo(GspoConfig {
                eps_low: -1e-4,
                ..GspoConfig::default()
            }),
            "gspo.eps_low",
        ),
        (
            PolicyLoss::GspoToken(GspoConfig {
                eps_high: f64::NAN,
                ..GspoConfig::default()
            }),
            "gspo_token.eps_high",
        ),
        (
            PolicyLoss::Gspo(GspoConfig {
                kl_coef: -0.1,
                ..GspoConfig::default()
            }),
            "gspo.kl_coef",
        ),
        (
            PolicyLoss::Sapo(SapoConfig {
                tau_pos: 0.0,
                ..SapoConfig::default()
            }),
            "sapo.tau_pos",
        ),
        (
            PolicyLoss::Sapo(SapoConfig {
                tau_neg: f64::INFINITY,
                ..SapoConfig::default()
            }),
            "sapo.tau_neg",
        ),
        (
            PolicyLoss::Grpo(GrpoConfig {
                eps: -0.2,
                kl_coef: 0.0,
            }),
            "grpo.eps",
        ),
        (
            PolicyLoss::Dapo(DapoConfig {
                eps_high: -0.28,
                ..DapoConfig::default()
            }),
            "dapo.eps_high",
        ),
        (
            PolicyLoss::DrGrpo(DrGrpoConfig::new(0)),
            "dr_grpo.max_response_len",
        ),
    ];
    for (objective, field) in cases {
        let err = objective.validate().unwrap_err();
        assert!(matches!(err, LearnerError::InvalidConfig { .. }), "{err}");
        assert!(err.to_string().contains(&format!("`{field}`")), "{err}");
    }
    let err = AdvantageEstimator::GroupNorm {
        eps: -1.0,
        std: true,
    }
    .validate()
    .unwrap_err();
    assert!(err.to_string().contains("`group_norm.eps`"), "{err}");
}

#[test]
fn aggregation_and_advantage_pairing_follow_the_papers() {
    let seq = Aggregation::SeqMeanTokenMean;
    assert_eq!(PolicyLoss::Gspo(GspoConfig::default()).aggregation(), seq);
    assert_eq!(
        PolicyLoss::GspoToken(GspoConfig::default()).aggregation(),
        seq
    );
    assert_eq!(PolicyLoss::Sapo(SapoConfig::default()).aggregation(), seq);
    assert_eq!(PolicyLoss::Grpo(GrpoConfig::default()).aggregation(), seq);
    assert_eq!(
        PolicyLoss::Dapo(DapoConfig::default()).aggregation(),
        Aggregation::TokenMean
    );
    assert_eq!(
        PolicyLoss::DrGrpo(DrGrpoConfig::new(512)).aggregation(),
        Aggregation::TokenSumNorm {
            max_response_len: 512
        }
    );
    assert_eq!(
        PolicyLoss::DrGrpo(DrGrpoConfig::new(512)).advantage_estimator(),
        AdvantageEstimator::GroupNorm {
            eps: 1e-6,
            std: false
        }
    );
    assert_eq!(
        PolicyLoss::Sapo(SapoConfig::default()).advantage_estimator(),
        AdvantageEstimator::default()
    );
}

#[test]
fn advantage_estimators_parse_with_defaults() {
    let parse = |json: &str| serde_json::from_str::<AdvantageEstimator>(json);
    assert_eq!(
        parse(r#"{"kind": "group_norm"}"#).unwrap(),
        AdvantageEstimator::grpo()
    );
    assert_eq!(
        parse(r#"{"kind": "group_norm", "std": false}"#).unwrap(),
        AdvantageEstimator::dr_grpo()
    );
    assert_eq!(
        parse(r#"{"kind": "leave_one_out"}"#).unwrap(),
        AdvantageEstimator::LeaveOneOut
    );
    assert!(parse(r#"{"kind": "group_norm", "scale": 1}"#).is_err());
    assert!(parse(r#"{"kind": "leave_one_out", "eps": 1e-6}"#).is_err());
}
