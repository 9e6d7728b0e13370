//! Qwen3-VL in burn: config, vision tower, DeepStack, dense/MoE text decoder, MRoPE, KV cache,
//! sampling, HF checkpoint I/O, image/video preprocessing, tokenizer and chat template.
//!
//! Everything is generic over `B: Backend`; [`backend`] names the CPU default and the CUDA
//! backend behind the `cuda` feature. Model matmuls go through [`nn::matmul`] / [`nn::linear`],
//! which use cuBLAS on the CUDA backends (`cublas.rs`).

pub mod alloc_counter;
pub mod backend;
pub mod cache;
pub mod chat;
pub mod config;
#[cfg(feature = "cuda")]
mod cublas;
pub mod cublas_check;
pub mod device_sampling;
pub mod error;
pub mod extend;
pub mod gemm_plan;
pub mod generate;
pub mod inputs;
pub mod logprobs;
pub mod matmul_autodiff;
pub mod model;
pub mod nn;
pub mod output_file;
pub mod picker;
pub mod position;
pub mod precision;
pub mod preprocess;
pub mod processor;
pub mod rope;
pub mod safetensors_io;
pub mod sampling;
pub mod text;
pub mod threads;
pub mod tokenizer;
pub mod trace;
pub mod vision;
pub mod weights;

pub use cache::KvCache;
pub use config::Qwen3VlConfig;
pub use error::{ModelError, Result};
pub use generate::{FinishReason, Generation, policy_suppressed_tokens};
pub use model::{Batch, ForwardOutput, Qwen3Vl, VisualInput};
pub use sampling::SamplingParams;
