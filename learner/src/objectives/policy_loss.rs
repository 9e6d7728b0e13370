//! [`PolicyLoss`]: the closed set of objectives, its serde form and the dispatch to each file.

use burn::prelude::*;
use serde::{Deserialize, Serialize};

use super::{
    Aggregation, DapoConfig, DrGrpoConfig, GrpoConfig, GspoConfig, LossOutput, PolicyInputs,
    SapoConfig, dapo, dr_grpo, grpo, gspo, gspo_token, sapo,
};
use crate::advantages::AdvantageEstimator;
use crate::error::Result;

/// One policy-gradient objective and its hyper-parameters (defaults from the papers).
///
/// Deserialises from `{"kind": "gspo" | "gspo_token" | "sapo" | "grpo" | "dapo" | "dr_grpo", ...}`
/// with the fields of the variant's config; unknown kinds and fields are rejected.
#[derive(Debug, Clone, Copy, PartialEq, Serialize, Deserialize)]
#[serde(tag = "kind", rename_all = "snake_case", deny_unknown_fields)]
pub enum PolicyLoss {
    /// GSPO, sequence-level ratio and clip (arXiv 2507.18071).
    Gspo(GspoConfig),
    /// GSPO-token: GSPO's ratio with token-level advantages (arXiv 2507.18071).
    GspoToken(GspoConfig),
    /// SAPO, soft sigmoid gate instead of a clip (arXiv 2511.20347).
    Sapo(SapoConfig),
    /// GRPO, token-level PPO clip and optional k3 KL (arXiv 2402.03300).
    Grpo(GrpoConfig),
    /// DAPO, clip-higher and token-level aggregation (arXiv 2503.14476).
    Dapo(DapoConfig),
    /// Dr.GRPO, constant normaliser (arXiv 2503.20783).
    DrGrpo(DrGrpoConfig),
}

impl Default for PolicyLoss {
    fn default() -> Self {
        Self::Gspo(GspoConfig::default())
    }
}

impl PolicyLoss {
    /// The serde `kind` of the objective.
    pub fn kind(&self) -> &'static str {
        match self {
            Self::Gspo(_) => "gspo",
            Self::GspoToken(_) => "gspo_token",
            Self::Sapo(_) => "sapo",
            Self::Grpo(_) => "grpo",
            Self::Dapo(_) => "dapo",
            Self::DrGrpo(_) => "dr_grpo",
        }
    }

    /// The weight of the KL-to-reference term (0 for the objectives that have none).
    pub fn kl_coef(&self) -> f64 {
        match self {
            Self::Gspo(c) | Self::GspoToken(c) => c.kl_coef,
            Self::Sapo(c) => c.kl_coef,
            Self::Grpo(c) => c.kl_coef,
            Self::Dapo(_) | Self::DrGrpo(_) => 0.0,
        }
    }

    /// Rejects hyper-parameters outside their domain, naming the field.
    pub fn validate(&self) -> Result<()> {
        match self {
            Self::Gspo(c) => c.validate_as("gspo"),
            Self::GspoToken(c) => c.validate_as("gspo_token"),
            Self::Sapo(c) => c.validate(),
            Self::Grpo(c) => c.validate(),
            Self::Dapo(c) => c.validate(),
            Self::DrGrpo(c) => c.validate(),
        }
    }

    /// How per-token (or per-sequence) terms become one scalar.
    pub fn aggregation(&self) -> Aggregation {
        match self {
            Self::Gspo(_) | Self::GspoToken(_) | Self::Sapo(_) | Self::Grpo(_) => {
                Aggregation::SeqMeanTokenMean
            }
            Self::Dapo(_) => Aggregation::TokenMean,
            Self::DrGrpo(c) => Aggregation::TokenSumNorm {
                max_response_len: c.max_response_len,
            },
        }
    }

    /// Whether [`Advantages::Token`](super::Advantages::Token) is accepted (every objective but GSPO).
    pub fn allows_token_advantages(&self) -> bool {
        !matches!(self, Self::Gspo(_))
    }

    /// The advantage estimator the objective's paper pairs it with: group normalisation with the
    /// std division, except Dr.GRPO, which drops it.
    pub fn advantage_estimator(&self) -> AdvantageEstimator {
        match self {
            Self::DrGrpo(_) => AdvantageEstimator::dr_grpo(),
            _ => AdvantageEstimator::grpo(),
        }
    }

    /// Computes the loss and metrics of one batch (after [`validate`](Self::validate)).
    ///
    /// # Shapes
    /// - `logprobs`, `old_logprobs`, `ref_logprobs`, `mask`: `[batch, T]`
    /// - advantages: `[batch]` or `[batch, T]`
    /// - returns `loss`: `[1]`
    ///
    /// Errors: a shape mismatch, per-token advantages for GSPO, a positive KL coefficient without
    /// `ref_logprobs`, an invalid config.
    pub fn compute<B: Backend>(&self, inputs: PolicyInputs<B>) -> Result<LossOutput<B>> {
        match self {
            Self::Gspo(c) => gspo::loss(c, inputs),
            Self::GspoToken(c) => gspo_token::loss(c, inputs),
            Self::Sapo(c) => sapo::loss(c, inputs),
            Self::Grpo(c) => grpo::loss(c, inputs),
            Self::Dapo(c) => dapo::loss(c, inputs),
            Self::DrGrpo(c) => dr_grpo::loss(c, inputs),
        }
    }
}
