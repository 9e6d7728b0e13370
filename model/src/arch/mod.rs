//! The architecture: the config, the vision tower (ViT with 2-D RoPE, 2×2 merger, DeepStack), the
//! dense / MoE text decoder with interleaved MRoPE, their shared layers, and what one forward pass
//! takes in and gives out.

pub mod config;
pub mod inputs;
pub mod model;
pub mod nn;
pub mod position;
pub mod precision;
pub mod rope;
pub mod text;
pub mod trace;
pub mod vision;
