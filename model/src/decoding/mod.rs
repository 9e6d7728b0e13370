//! Decoding: the KV cache kept outside the model, continuing cached rows with a chunk, grouped
//! generation, the one token picker (device or host), the seeded sampler and the per-token
//! log-probs and entropies the learner scores responses with.

pub mod cache;
pub mod device_sampling;
pub mod extend;
pub mod generate;
pub mod logprobs;
pub mod picker;
pub mod sampling;
