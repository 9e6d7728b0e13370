//! Qwen3-VL in burn: config, vision tower, DeepStack, dense/MoE text decoder, MRoPE, KV cache,
//! sampling, HF checkpoint I/O, image/video preprocessing, tokenizer and chat template.
//!
//! Everything is generic over `B: Backend`; [`backend`] names the CPU default and the CUDA
//! backend behind the `cuda` feature. Model matmuls go through [`nn::matmul`] / [`nn::linear`],
//! which use cuBLAS on the CUDA backends (`gpu/cublas.rs`).
//!
//! The source folders are the crate's parts: `arch/` (the architecture), `decoding/` (KV cache,
//! generation, the picker, sampling, log-probs), `checkpoint/` (HF safetensors I/O), `gpu/`
//! (cuBLAS) and `processing/` (tokenizer, chat template, image/video preprocessing, processor).

// The crate's parts, one folder each; their modules are re-exported here, so every public path
// is `temper_model::<module>`.
mod arch;
mod checkpoint;
mod decoding;
mod gpu;
mod processing;

pub mod alloc_counter;
pub mod backend;
pub mod error;
pub mod threads;

pub use arch::{config, inputs, model, nn, position, precision, rope, text, trace, vision};
pub use checkpoint::{output_file, safetensors_io, weights};
pub use decoding::{cache, device_sampling, extend, generate, logprobs, picker, sampling};
#[cfg(feature = "cuda")]
pub(crate) use gpu::cublas;
#[cfg(feature = "self-checks")]
pub use gpu::cublas_check;
pub use gpu::{gemm_plan, matmul_autodiff};
pub use processing::{chat, preprocess, processor, tokenizer};

pub use cache::KvCache;
pub use config::Qwen3VlConfig;
pub use error::{ModelError, Result};
pub use generate::{FinishReason, Generation, policy_suppressed_tokens};
pub use model::{Batch, ForwardOutput, Qwen3Vl, VisualInput};
pub use sampling::SamplingParams;
