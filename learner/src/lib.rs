//! Temper's learner: the policy-gradient objectives (GSPO, GSPO-token, SAPO, GRPO, DAPO,
//! Dr.GRPO), the SFT cross-entropy, and the advantage estimators that feed them.
//!
//! Everything is generic over `B: Backend`; run it on an autodiff backend
//! (`burn::backend::Autodiff<_>`) to train. The exact formulas, with their papers, are in each
//! objective's module doc; [`objectives`] states what they share (masking, log-ratio clamp,
//! aggregation).

#![warn(missing_docs)]

pub mod advantages;
pub mod data;
pub mod embedded;
pub mod error;
pub mod grad_clip;
pub mod objectives;
pub mod optim;
pub mod schedule;
pub mod tasks;
pub mod train;

pub use advantages::{AdvantageEstimator, token_advantages};
pub use error::{LearnerError, Result};
pub use objectives::{
    Advantages, Aggregation, DapoConfig, DrGrpoConfig, GrpoConfig, GspoConfig, LossMetrics,
    LossOutput, PolicyInputs, PolicyLoss, SapoConfig, SftMetrics, SftOutput,
};
