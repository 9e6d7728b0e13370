//! `temper bench`: throughput of a random-weight Qwen3-VL model of a given shape (the 2B text
//! config by default, or the tiny test fixture's), on the CPU or a CUDA device, in f32 or bf16.
//!
//! Cases (each optional, run in the order of `--cases`; `bench/README.md` says what each one
//! measures and how `bench/torch_baseline.py` measures the same on PyTorch/transformers):
//! - `sampler`: picking tokens. Host `Sampler::sample` over one vocabulary-sized row (greedy,
//!   the whole distribution at temperature 1, and top-p 0.95, which sorts the row), and the
//!   device picker `generate` uses for untruncated rows: one `[B, V]` step, ids back to the host.
//! - `prefill`: `prefill` of a `B × prompt` batch into a preallocated KV cache.
//! - `decode`: the device part of decoding: `decode_step` with an on-device argmax, only the
//!   chosen ids coming back to the host.
//! - `decode-profile`: one decoder layer's pieces at decode shape, timed one by one, against a
//!   measured `decode_step` and the cost of one tiny op (`bench/profile.rs`).
//! - `generate`: the real `Qwen3Vl::generate` (prefill, tokens picked on the device every step,
//!   with behaviour log-probs); decode time = generate(N) − generate(1), so only the N − 1 decode
//!   steps count.
//! - `train`: one learner step's compute under autodiff: forward, per-token log-probs
//!   (`token_scores`, chunked over the vocabulary), loss = −mean log-prob, backward.
//! - `matmul`: the text model's GEMM shapes (`[M, K] × [K, N]` for q, k/v, o, gate/up, down and
//!   the tied LM head's transposed embedding) at M = each `--batches` value and M =
//!   `--train-batch · --train-len`, through burn's matmul and the cuBLAS path, plus the cuBLAS
//!   correctness checks (`temper_model::cublas_check`, f32 and bf16, forward and gradients).
//!   No model is built. Without cuBLAS (CPU, or libcublas missing) only burn is timed.
//!
//! Every timed region starts and ends with a device sync, and reads a value back to the host.
//! Warm-up runs (kernel compilation, autotune) are timed separately and never counted.
//! `--json` is rewritten after every case, so a run cut short keeps what it measured; each case
//! carries its wall-clock window (`start_unix` / `end_unix`) so an outside GPU-memory sampler
//! (`tools/device/gpu_run.sh`) can attribute peak memory to it. With `--dtype bf16` the model is
//! built in f32 and cast (`Qwen3Vl::cast`), as the learner does: inference cases run on the bf16
//! copy (weights, activations and KV cache bf16; norms, softmax and log-probs f32), and the
//! `train` case is the learner's mixed precision — f32 master weights, the step on a bf16 copy
//! whose casts carry f32 gradients back.

use std::collections::HashMap;
use std::hash::{Hash, Hasher};
use std::path::PathBuf;
use std::time::{Instant, SystemTime, UNIX_EPOCH};

use anyhow::{Context, Result, anyhow, ensure};
use burn::backend::Autodiff;
use burn::module::Module;
use burn::prelude::*;
use clap::{Args, ValueEnum};
use serde_json::{Value, json};
use temper_model::device_sampling::DevicePicker;
use temper_model::logprobs::{DEFAULT_LOGITS_BUDGET, EntropyGrad};
use temper_model::sampling::Sampler;
use temper_model::weights::{Init, TensorSource};
use temper_model::{Batch, Qwen3Vl, Qwen3VlConfig, SamplingParams};

use crate::device::{DeviceKind, Dtype, with_backend};

mod matmul;
mod profile;

/// The tiny dense test fixture's config (vocab 1024, hidden 64, 2 layers).
const TINY_CONFIG: &str = include_str!("../../model/tests/data/qwen3vl-tiny-a/config.json");

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Preset {
    /// Qwen3-VL-2B: text 2048 × 28 layers, 16/8 heads, head_dim 128, SwiGLU 6144, vocab 151936,
    /// tied head; the 2B vision tower (24 × 1024).
    #[value(name = "2b")]
    TwoB,
    /// The `qwen3vl-tiny-a` fixture's shape (seconds on a CPU).
    Tiny,
    /// The CPU peer benchmark's medium text model (`../shared/bench/cpu_peer.py`): text 512 × 8
    /// layers, 8/4 heads, head_dim 64, SwiGLU 1536, vocab 32,000, tied head (42 M parameters);
    /// the tiny fixture's vision tower.
    Medium,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Sampling {
    /// Argmax (temperature 0).
    Greedy,
    /// Temperature 1 over the whole vocabulary (top-k 0, top-p 1): transformers'
    /// `do_sample=True, top_k=0, top_p=1`.
    Sample,
}

#[derive(Debug, Clone, Copy, PartialEq, Eq, ValueEnum)]
pub enum Case {
    Sampler,
    Prefill,
    Decode,
    /// Where a decode step's time goes (see `bench/profile.rs`).
    DecodeProfile,
    Generate,
    Train,
    Matmul,
}

#[derive(Args, Debug)]
pub struct BenchArgs {
    #[arg(long, value_enum, default_value = "cpu")]
    device: DeviceKind,
    /// Model shape (random weights) [tiny on the CPU, 2b on CUDA: the 2B model needs minutes
    /// per case on a CPU].
    #[arg(long, value_enum)]
    preset: Option<Preset>,
    /// Compute dtype: of inference weights, activations and KV cache, and of the learner step's
    /// passes (its master weights are f32).
    #[arg(long, value_enum, default_value = "f32")]
    dtype: Dtype,
    /// Cases to run, in this order.
    #[arg(
        long,
        value_enum,
        value_delimiter = ',',
        default_value = "sampler,prefill,decode,generate,train"
    )]
    cases: Vec<Case>,
    /// Prompt length of the prefill / decode / generate cases.
    #[arg(long, default_value_t = 512)]
    prompt_len: usize,
    /// New tokens per row in the decode / generate cases.
    #[arg(long, default_value_t = 256)]
    new_tokens: usize,
    /// Batch sizes (rows) of the prefill and decode cases.
    #[arg(long, value_delimiter = ',', default_value = "1,16,64")]
    batches: Vec<usize>,
    /// Batch sizes of the generate case (default: --batches).
    #[arg(long, value_delimiter = ',')]
    generate_batches: Option<Vec<usize>>,
    /// How `generate` picks tokens.
    #[arg(long, value_enum, default_value = "sample")]
    sampling: Sampling,
    /// Rows of the learner step.
    #[arg(long, default_value_t = 8)]
    train_batch: usize,
    /// Tokens per row of the learner step.
    #[arg(long, default_value_t = 1024)]
    train_len: usize,
    /// Measured learner steps (after one warm-up step); the median is reported.
    #[arg(long, default_value_t = 2)]
    train_steps: usize,
    /// Logits kept at once by `token_scores` (floats).
    #[arg(long, default_value_t = DEFAULT_LOGITS_BUDGET)]
    logits_budget: usize,
    /// Measured prefills per batch size (after the warm-up); the median is reported.
    #[arg(long, default_value_t = 3)]
    repeats: usize,
    /// Seed of the random weights and of sampling.
    #[arg(long, default_value_t = 0)]
    seed: u64,
    /// Also write every number (and each case's wall-clock window) to this JSON file.
    #[arg(long)]
    json: Option<PathBuf>,
}

impl BenchArgs {
    /// `--preset`, or the device's default.
    fn preset(&self) -> Preset {
        self.preset.unwrap_or(match self.device {
            DeviceKind::Cpu => Preset::Tiny,
            DeviceKind::Cuda => Preset::TwoB,
        })
    }
}

pub fn run(args: BenchArgs) -> Result<()> {
    validate(&args)?;
    with_backend!(args.device, |B, device| bench::<B>(&args, &device))
}

fn validate(args: &BenchArgs) -> Result<()> {
    ensure!(args.prompt_len >= 1, "--prompt-len must be at least 1");
    ensure!(
        args.new_tokens >= 2,
        "--new-tokens must be at least 2 (one token comes from the prefill)"
    );
    ensure!(
        args.batches.iter().all(|&b| b > 0)
            && args.generate_batches.iter().flatten().all(|&b| b > 0),
        "batch sizes must be at least 1"
    );
    ensure!(args.repeats >= 1, "--repeats must be at least 1");
    if args.cases.contains(&Case::Train) {
        ensure!(
            args.train_batch >= 1 && args.train_len >= 2 && args.train_steps >= 1,
            "--train-batch ≥ 1, --train-len ≥ 2 and --train-steps ≥ 1 are needed for the train case"
        );
    }
    Ok(())
}

fn preset_config(preset: Preset) -> Result<Qwen3VlConfig> {
    let text = match preset {
        Preset::Tiny => TINY_CONFIG.to_string(),
        Preset::TwoB => qwen3vl_2b_config().to_string(),
        Preset::Medium => medium_config()?.to_string(),
    };
    Qwen3VlConfig::from_json(&text).map_err(|e| anyhow!("bench config: {e}"))
}

/// The tiny fixture's config with the medium text shape, field for field what
/// `../shared/bench/cpu_peer.py`'s `medium_config` writes, so `--preset medium` times the model
/// the peer benchmark compares against transformers.
fn medium_config() -> Result<Value> {
    let mut config: Value = serde_json::from_str(TINY_CONFIG)?;
    let vocab = 32_000;
    let text = config["text_config"]
        .as_object_mut()
        .ok_or_else(|| anyhow!("tiny config has no text_config"))?;
    for (key, value) in [
        ("vocab_size", vocab),
        ("hidden_size", 512),
        ("num_hidden_layers", 8),
        ("num_attention_heads", 8),
        ("num_key_value_heads", 4),
        ("head_dim", 64),
        ("intermediate_size", 1536),
        ("max_position_embeddings", 32_768),
    ] {
        text.insert(key.into(), json!(value));
    }
    config["text_config"]["rope_parameters"]["mrope_section"] = json!([12, 10, 10]);
    config["vision_config"]["out_hidden_size"] = json!(512);
    config["tie_word_embeddings"] = json!(true);
    config["image_token_id"] = json!(vocab - 20);
    config["video_token_id"] = json!(vocab - 19);
    config["vision_start_token_id"] = json!(vocab - 23);
    config["vision_end_token_id"] = json!(vocab - 22);
    Ok(config)
}

/// Qwen3-VL-2B-Instruct's `config.json` shape (transformers 5 layout). `bench/torch_baseline.py`
/// holds the same numbers.
fn qwen3vl_2b_config() -> Value {
    json!({
        "model_type": "qwen3_vl",
        "architectures": ["Qwen3VLForConditionalGeneration"],
        "image_token_id": 151655, "video_token_id": 151656,
        "vision_start_token_id": 151652, "vision_end_token_id": 151653,
        "tie_word_embeddings": true,
        "text_config": {
            "model_type": "qwen3_vl_text",
            "vocab_size": 151936, "hidden_size": 2048, "intermediate_size": 6144,
            "num_hidden_layers": 28, "num_attention_heads": 16, "num_key_value_heads": 8,
            "head_dim": 128, "rms_norm_eps": 1e-6, "max_position_embeddings": 262144,
            "hidden_act": "silu", "attention_bias": false,
            "rope_parameters": {
                "rope_type": "default", "rope_theta": 5000000.0,
                "mrope_section": [24, 20, 20], "mrope_interleaved": true
            }
        },
        "vision_config": {
            "model_type": "qwen3_vl_vision",
            "depth": 24, "hidden_size": 1024, "intermediate_size": 4096, "num_heads": 16,
            "in_channels": 3, "patch_size": 16, "temporal_patch_size": 2, "spatial_merge_size": 2,
            "out_hidden_size": 2048, "num_position_embeddings": 2304,
            "deepstack_visual_indexes": [5, 11, 17], "hidden_act": "gelu_pytorch_tanh"
        }
    })
}

/// Prompt ids stay below every special id (vision markers, image / video pads), so the text
/// path is all that runs. The same formula is in `bench/torch_baseline.py`.
fn id_bound(config: &Qwen3VlConfig) -> usize {
    [
        config.text_config.vocab_size,
        config.image_token_id as usize,
        config.video_token_id as usize,
        config.vision_start_token_id as usize,
        config.vision_end_token_id as usize,
    ]
    .into_iter()
    .min()
    .unwrap_or(1)
    .max(1)
}

fn prompt_ids(rows: usize, len: usize, bound: usize) -> Vec<Vec<u32>> {
    (0..rows)
        .map(|r| {
            (0..len)
                .map(|i| ((i * 7919 + r * 104_729) % bound) as u32)
                .collect()
        })
        .collect()
}

fn text_batch<B: Backend>(ids: Vec<Vec<u32>>) -> Batch<B> {
    let mask = ids.iter().map(|row| vec![true; row.len()]).collect();
    Batch {
        input_ids: ids,
        attention_mask: mask,
        images: None,
        videos: None,
        segment_ids: None,
    }
}

/// Uniform weights with the requested standard deviation, filled on all cores: the seeded
/// Box–Muller `RandomInit` needs about a minute for 2 B parameters, this a few seconds. The
/// values only have to be finite and of the right scale for a throughput run.
struct FastInit {
    seed: u64,
}

impl TensorSource for FastInit {
    fn load(&mut self, name: &str, shape: &[usize], init: Init) -> temper_model::Result<Vec<f32>> {
        let n: usize = shape.iter().product();
        Ok(match init {
            Init::Ones => vec![1.0; n],
            Init::Zeros => vec![0.0; n],
            Init::Normal(std) => {
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                name.hash(&mut hasher);
                let mut out = vec![0.0f32; n];
                fill_uniform(
                    &mut out,
                    self.seed ^ hasher.finish(),
                    (std * 3f64.sqrt()) as f32,
                );
                out
            }
        })
    }
    fn shape_of(&self, _name: &str) -> Option<Vec<usize>> {
        None
    }
    fn contains(&self, _name: &str) -> bool {
        true
    }
}

fn splitmix64(state: &mut u64) -> u64 {
    *state = state.wrapping_add(0x9E37_79B9_7F4A_7C15);
    let mut z = *state;
    z = (z ^ (z >> 30)).wrapping_mul(0xBF58_476D_1CE4_E5B9);
    z = (z ^ (z >> 27)).wrapping_mul(0x94D0_49BB_1331_11EB);
    z ^ (z >> 31)
}

/// Uniform in `[-half_width, half_width)`; chunk `i` draws from its own stream, so the values do
/// not depend on the number of threads.
fn fill_uniform(out: &mut [f32], key: u64, half_width: f32) {
    const CHUNK: usize = 1 << 16;
    let threads = std::thread::available_parallelism().map_or(1, |n| n.get());
    let fill = |index: usize, part: &mut [f32]| {
        let mut state = key ^ (index as u64).wrapping_mul(0xD1B5_4A32_D192_ED03);
        for v in part {
            let unit = (splitmix64(&mut state) >> 40) as f32 * (1.0 / (1u64 << 24) as f32);
            *v = (2.0 * unit - 1.0) * half_width;
        }
    };
    if threads == 1 || out.len() <= CHUNK {
        for (i, part) in out.chunks_mut(CHUNK).enumerate() {
            fill(i, part);
        }
        return;
    }
    let mut per_thread: Vec<Vec<(usize, &mut [f32])>> = (0..threads).map(|_| Vec::new()).collect();
    for (i, part) in out.chunks_mut(CHUNK).enumerate() {
        per_thread[i % threads].push((i, part));
    }
    std::thread::scope(|s| {
        for parts in per_thread {
            s.spawn(move || {
                for (i, part) in parts {
                    fill(i, part);
                }
            });
        }
    });
}

fn now_unix() -> f64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0.0, |d| d.as_secs_f64())
}

fn median(values: &[f64]) -> f64 {
    let mut v = values.to_vec();
    v.sort_by(f64::total_cmp);
    let n = v.len();
    if n == 0 {
        f64::NAN
    } else if n % 2 == 1 {
        v[n / 2]
    } else {
        (v[n / 2 - 1] + v[n / 2]) / 2.0
    }
}

fn sync<B: Backend>(device: &B::Device) -> Result<()> {
    B::sync(device).map_err(|e| anyhow!("device sync failed: {e}"))
}

/// Reads `logits[0, 0]` to the host (waits for everything it depends on).
fn first_value<B: Backend>(logits: Tensor<B, 2>) -> f32 {
    logits
        .slice([0..1, 0..1])
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .map_or(f32::NAN, |v| v[0])
}

/// Row-wise argmax on the device; only the ids come back.
fn argmax_rows<B: Backend>(logits: Tensor<B, 2>) -> Vec<u32> {
    logits
        .argmax(1)
        .into_data()
        .convert::<i64>()
        .into_vec::<i64>()
        .expect("argmax ids")
        .into_iter()
        .map(|t| t as u32)
        .collect()
}

/// Collects case results, echoes them to stderr and keeps the JSON file current.
struct Report {
    meta: serde_json::Map<String, Value>,
    cases: Vec<Value>,
    json: Option<PathBuf>,
    started: Instant,
}

impl Report {
    fn log(&self, message: &str) {
        eprintln!(
            "[bench +{:.1}s] {message}",
            self.started.elapsed().as_secs_f64()
        );
    }

    /// Logs a case with the numbers it has (a case without a throughput, like the sampler's,
    /// prints none rather than NaN) and records it.
    fn push(&mut self, case: Value) -> Result<()> {
        let num = |k: &str| {
            case.get(k)
                .and_then(Value::as_f64)
                .filter(|x| x.is_finite())
        };
        let mut parts = Vec::new();
        if let Some(rate) = num("tokens_per_s") {
            parts.push(format!("{rate:.1} tokens/s"));
        }
        if let Some(secs) = num("seconds") {
            parts.push(format!("{secs:.4} s"));
        }
        if let Some(warmup) = num("warmup_s") {
            parts.push(format!("(warm-up {warmup:.2} s)"));
        }
        if let Some(notes) = case.get("notes").and_then(Value::as_str) {
            parts.push(notes.to_string());
        }
        self.log(&format!(
            "{}: {}",
            case["case"].as_str().unwrap_or("?"),
            parts.join(" ")
        ));
        self.cases.push(case);
        self.write()
    }

    fn set(&mut self, key: &str, value: Value) -> Result<()> {
        self.meta.insert(key.to_string(), value);
        self.write()
    }

    fn write(&self) -> Result<()> {
        let Some(path) = &self.json else {
            return Ok(());
        };
        let mut all = self.meta.clone();
        all.insert("cases".into(), Value::Array(self.cases.clone()));
        let text = serde_json::to_string_pretty(&Value::Object(all))?;
        std::fs::write(path, text).with_context(|| format!("writing {}", path.display()))
    }

    fn table(&self) {
        println!(
            "\ntemper bench | {} | {} | {} CPU threads | {} | preset {} | {} params",
            self.meta["backend"].as_str().unwrap_or("?"),
            self.meta["device"].as_str().unwrap_or("?"),
            self.meta["threads"],
            self.meta["dtype"].as_str().unwrap_or("?"),
            self.meta["preset"].as_str().unwrap_or("?"),
            self.meta["params"]
        );
        println!("| case | batch | tokens | seconds | tokens/s | notes |");
        println!("|---|---|---|---|---|---|");
        for c in &self.cases {
            let num = |k: &str| c.get(k).and_then(Value::as_f64);
            println!(
                "| {} | {} | {} | {} | {} | {} |",
                c["case"].as_str().unwrap_or("?"),
                c.get("batch").map_or(String::new(), |b| b.to_string()),
                c.get("tokens").map_or(String::new(), |t| t.to_string()),
                num("seconds").map_or(String::new(), |s| format!("{s:.4}")),
                num("tokens_per_s").map_or(String::new(), |t| format!("{t:.1}")),
                c.get("notes").and_then(Value::as_str).unwrap_or("")
            );
        }
    }
}

fn bench<B: Backend>(args: &BenchArgs, device: &B::Device) -> Result<()> {
    let config = preset_config(args.preset())?;
    let t = &config.text_config;
    let mut report = Report {
        meta: serde_json::Map::new(),
        cases: Vec::new(),
        json: args.json.clone(),
        started: Instant::now(),
    };
    let meta = json!({
        "tool": "temper",
        "version": env!("CARGO_PKG_VERSION"),
        "build_features": option_env!("TEMPER_BUILD_FEATURES").unwrap_or("(not recorded)"),
        "device": format!("{:?}", args.device).to_lowercase(),
        "backend": B::name(device),
        "dtype": format!("{:?}", args.dtype).to_lowercase(),
        "preset": match args.preset() {
            Preset::TwoB => "2b",
            Preset::Tiny => "tiny",
            Preset::Medium => "medium",
        },
        "host_threads": std::thread::available_parallelism().map_or(1, |n| n.get()),
        "threads": temper_model::threads::in_use(),
        "shape": {
            "vocab": t.vocab_size, "hidden": t.hidden_size, "layers": t.num_hidden_layers,
            "heads": t.num_attention_heads, "kv_heads": t.num_key_value_heads,
            "head_dim": t.head_dim(), "intermediate": t.intermediate_size,
            "tied": config.tie_word_embeddings,
            "vision_depth": config.vision_config.depth,
            "vision_hidden": config.vision_config.hidden_size,
        },
        "prompt_len": args.prompt_len,
        "new_tokens": args.new_tokens,
        "sampling": format!("{:?}", args.sampling).to_lowercase(),
        "logits_budget": args.logits_budget,
        "started_unix": now_unix(),
    });
    if let Value::Object(map) = meta {
        report.meta = map;
    }
    report.set("params", Value::Null)?;
    let bound = id_bound(&config);

    let mut model: Option<Qwen3Vl<B>> = None;
    for &case in &args.cases {
        if case == Case::Train {
            // Free the inference model first: the learner step gets the device to itself.
            model = None;
            B::memory_cleanup(device);
            train_case::<B>(&config, args, bound, device, &mut report)?;
            B::memory_cleanup(device);
            continue;
        }
        if case == Case::Sampler {
            sampler_case::<B>(t.vocab_size, args, device, &mut report)?;
            continue;
        }
        if case == Case::Matmul {
            matmul::matmul_case::<B>(&config, args, device, &mut report)?;
            B::memory_cleanup(device);
            continue;
        }
        if model.is_none() {
            let start = Instant::now();
            let m = Qwen3Vl::<B>::from_source(
                config.clone(),
                &mut FastInit { seed: args.seed },
                device,
            )?
            .cast(args.dtype.float());
            sync::<B>(device)?;
            let secs = start.elapsed().as_secs_f64();
            report.log(&format!("model built in {secs:.1} s"));
            report.set("params", json!(m.num_params()))?;
            report.set("init_s", json!(secs))?;
            model = Some(m);
        }
        let m = model.as_ref().expect("built above");
        match case {
            Case::Prefill => {
                for &b in &args.batches {
                    prefill_case(m, b, args, bound, device, &mut report)?;
                    B::memory_cleanup(device);
                }
            }
            Case::Decode => {
                for &b in &args.batches {
                    decode_case(m, b, args, bound, device, &mut report)?;
                    B::memory_cleanup(device);
                }
            }
            Case::DecodeProfile => {
                for &b in &args.batches {
                    profile::decode_profile_case(m, b, args, bound, device, &mut report)?;
                    B::memory_cleanup(device);
                }
            }
            Case::Generate => {
                let batches = args.generate_batches.as_ref().unwrap_or(&args.batches);
                for &b in batches {
                    generate_case(m, b, args, bound, device, &mut report)?;
                    B::memory_cleanup(device);
                }
            }
            Case::Sampler | Case::Train | Case::Matmul => unreachable!("handled above"),
        }
    }
    report.set("finished_unix", json!(now_unix()))?;
    report.table();
    Ok(())
}

fn sampler_case<B: Backend>(
    vocab: usize,
    args: &BenchArgs,
    device: &B::Device,
    report: &mut Report,
) -> Result<()> {
    let start_unix = now_unix();
    let seed = args.seed;
    let mut logits = vec![0.0f32; vocab];
    fill_uniform(&mut logits, seed ^ 0x5eed, 4.0);
    let sample = SamplingParams {
        temperature: 1.0,
        max_new_tokens: 1,
        seed,
        ..SamplingParams::default() // whole distribution, no stop tokens
    };
    let nucleus = SamplingParams {
        top_p: 0.95,
        ..sample.clone()
    };
    let mut results = serde_json::Map::new();
    let mut host_ms = HashMap::new();
    for (name, params, iters) in [
        ("greedy", SamplingParams::greedy(1), 40usize),
        ("sample", sample.clone(), 40),
        ("sample_top_p", nucleus, 10),
    ] {
        let mut sampler = Sampler::new(seed, 0);
        std::hint::black_box(sampler.sample(&logits, &params));
        let start = Instant::now();
        for _ in 0..iters {
            std::hint::black_box(sampler.sample(&logits, &params));
        }
        let ms = start.elapsed().as_secs_f64() * 1e3 / iters as f64;
        host_ms.insert(name, ms);
        results.insert(format!("{name}_ms_per_row_token"), json!(ms));
        let rate = (ms > 0.0).then(|| 1e3 / ms);
        results.insert(format!("{name}_max_tokens_per_s_one_core"), json!(rate));
    }
    // What `generate` does for untruncated rows: one `DevicePicker::pick` per step over the
    // `[B, V]` logits, ids and log-probs back to the host (sync included).
    let mut device_ms = Vec::new();
    for &b in &args.batches {
        let refs = vec![&sample; b];
        let picker = DevicePicker::<B>::new(&refs, vocab, device).expect("untruncated rows");
        let rows: Vec<f32> = (0..b).flat_map(|_| logits.iter().copied()).collect();
        let rows = Tensor::<B, 2>::from_data(TensorData::new(rows, [b, vocab]), device);
        let mut samplers: Vec<Sampler> = (0..b).map(|r| Sampler::new(seed, r as u64)).collect();
        std::hint::black_box(picker.pick(rows.clone(), &mut samplers));
        let times: Vec<f64> = (0..5)
            .map(|_| {
                let start = Instant::now();
                std::hint::black_box(picker.pick(rows.clone(), &mut samplers));
                start.elapsed().as_secs_f64() * 1e3
            })
            .collect();
        let ms = median(&times);
        results.insert(format!("device_pick_b{b}_ms_per_step"), json!(ms));
        device_ms.push(format!("b{b} {ms:.3} ms"));
    }
    let mut case = json!({
        "case": "host_sampler",
        "vocab": vocab,
        "notes": format!(
            "host Sampler::sample per row-token: greedy {:.3} ms, sample {:.3} ms, top-p {:.3} ms; \
             device pick per step: {}",
            host_ms["greedy"],
            host_ms["sample"],
            host_ms["sample_top_p"],
            device_ms.join(", ")
        ),
        "start_unix": start_unix,
        "end_unix": now_unix(),
    });
    case.as_object_mut().expect("object").extend(results);
    report.push(case)
}

fn prefill_case<B: Backend>(
    model: &Qwen3Vl<B>,
    b: usize,
    args: &BenchArgs,
    bound: usize,
    device: &B::Device,
    report: &mut Report,
) -> Result<()> {
    let start_unix = now_unix();
    let batch = text_batch::<B>(prompt_ids(b, args.prompt_len, bound));
    let capacity = args.prompt_len + args.new_tokens;
    let warm = Instant::now();
    {
        let mut cache = model.new_cache(b, capacity);
        first_value(model.prefill(&batch, &mut cache)?);
        sync::<B>(device)?;
    }
    let warmup_s = warm.elapsed().as_secs_f64();
    let mut times = Vec::new();
    let mut value = f32::NAN;
    for _ in 0..args.repeats {
        let mut cache = model.new_cache(b, capacity);
        sync::<B>(device)?;
        let start = Instant::now();
        value = first_value(model.prefill(&batch, &mut cache)?);
        sync::<B>(device)?;
        times.push(start.elapsed().as_secs_f64());
    }
    let secs = median(&times);
    let tokens = b * args.prompt_len;
    report.push(json!({
        "case": format!("prefill_b{b}"),
        "kind": "prefill",
        "batch": b,
        "prompt_len": args.prompt_len,
        "tokens": tokens,
        "seconds": secs,
        "seconds_all": times,
        "tokens_per_s": tokens as f64 / secs,
        "warmup_s": warmup_s,
        "logit_0_0": value,
        "finite": value.is_finite(),
        "notes": if value.is_finite() { "" } else { "NON-FINITE logits" },
        "start_unix": start_unix,
        "end_unix": now_unix(),
    }))
}

fn decode_case<B: Backend>(
    model: &Qwen3Vl<B>,
    b: usize,
    args: &BenchArgs,
    bound: usize,
    device: &B::Device,
    report: &mut Report,
) -> Result<()> {
    let start_unix = now_unix();
    let batch = text_batch::<B>(prompt_ids(b, args.prompt_len, bound));
    let run = |steps: usize| -> Result<(f64, Vec<u32>)> {
        let mut cache = model.new_cache(b, args.prompt_len + args.new_tokens);
        let mut ids = argmax_rows(model.prefill(&batch, &mut cache)?);
        sync::<B>(device)?;
        let start = Instant::now();
        for _ in 0..steps {
            ids = argmax_rows(model.decode_step(&ids, &mut cache));
        }
        sync::<B>(device)?;
        Ok((start.elapsed().as_secs_f64(), ids))
    };
    let warm = Instant::now();
    run(args.new_tokens.min(4) - 1)?;
    let warmup_s = warm.elapsed().as_secs_f64();
    let steps = args.new_tokens - 1;
    let (secs, _) = run(steps)?;
    let tokens = b * steps;
    report.push(json!({
        "case": format!("decode_device_greedy_b{b}"),
        "kind": "decode_device",
        "batch": b,
        "prompt_len": args.prompt_len,
        "new_tokens": args.new_tokens,
        "steps": steps,
        "tokens": tokens,
        "seconds": secs,
        "tokens_per_s": tokens as f64 / secs,
        "ms_per_step": secs * 1e3 / steps as f64,
        "warmup_s": warmup_s,
        "notes": "decode_step + device argmax; no host sampling",
        "start_unix": start_unix,
        "end_unix": now_unix(),
    }))
}

fn generate_case<B: Backend>(
    model: &Qwen3Vl<B>,
    b: usize,
    args: &BenchArgs,
    bound: usize,
    device: &B::Device,
    report: &mut Report,
) -> Result<()> {
    let start_unix = now_unix();
    let batch = text_batch::<B>(prompt_ids(b, args.prompt_len, bound));
    let (mode, temperature) = match args.sampling {
        Sampling::Greedy => ("greedy", 0.0),
        Sampling::Sample => ("sample", 1.0),
    };
    let timed = |n: usize| -> Result<(f64, usize)> {
        let params = SamplingParams {
            temperature,
            top_p: 1.0,
            top_k: 0,
            max_new_tokens: n,
            seed: args.seed,
            ..SamplingParams::default() // no stop tokens: every row makes n tokens
        };
        sync::<B>(device)?;
        let start = Instant::now();
        let generations = model.generate(&batch, 1, &vec![params; b])?;
        sync::<B>(device)?;
        let tokens = generations.iter().map(|g| g.tokens.len()).sum();
        Ok((start.elapsed().as_secs_f64(), tokens))
    };
    let warmup_s = timed(args.new_tokens.min(4))?.0;
    // generate(1) = prefill + first token: subtracted, so decode counts only the N − 1 steps.
    let first_s = median(&[timed(1)?.0, timed(1)?.0]);
    let n = args.new_tokens;
    let (total, produced) = timed(n)?;
    ensure!(
        produced == b * n,
        "generate returned {produced} tokens, not {}",
        b * n
    );
    let decode_s = total - first_s;
    report.push(json!({
        "case": format!("generate_{mode}_b{b}"),
        "kind": "generate",
        "sampling": mode,
        "batch": b,
        "prompt_len": args.prompt_len,
        "new_tokens": n,
        "tokens": b * (n - 1),
        "total_s": total,
        "first_token_s": first_s,
        "decode_s": decode_s,
        "seconds": decode_s,
        // Null when the decode steps are too short to time against generate(1)'s noise.
        "tokens_per_s": (decode_s > 0.0).then(|| (b * (n - 1)) as f64 / decode_s),
        "e2e_tokens_per_s": (b * n) as f64 / total,
        "warmup_s": warmup_s,
        "notes": "generate(N) − generate(1); tokens picked on the device",
        "start_unix": start_unix,
        "end_unix": now_unix(),
    }))
}

fn train_case<B: Backend>(
    config: &Qwen3VlConfig,
    args: &BenchArgs,
    bound: usize,
    device: &B::Device,
    report: &mut Report,
) -> Result<()> {
    let start_unix = now_unix();
    let (rows, len) = (args.train_batch, args.train_len);
    let build = Instant::now();
    let model = Qwen3Vl::<Autodiff<B>>::from_source(
        config.clone(),
        &mut FastInit { seed: args.seed },
        device,
    )?;
    sync::<B>(device)?;
    let train_init_s = build.elapsed().as_secs_f64();
    report.log(&format!("learner model built in {train_init_s:.1} s"));
    if report.meta.get("params").is_none_or(Value::is_null) {
        report.set("params", json!(model.num_params()))?;
    }
    let ids = prompt_ids(rows, len, bound);
    let targets: Vec<i64> = ids
        .iter()
        .flat_map(|r| r[1..].iter().map(|&t| t as i64))
        .collect();
    let batch = text_batch::<Autodiff<B>>(ids);
    let step = || -> Result<(f64, f32)> {
        sync::<B>(device)?;
        let start = Instant::now();
        let targets = Tensor::<Autodiff<B>, 2, Int>::from_data(
            TensorData::new(targets.clone(), [rows, len - 1]),
            device,
        );
        // Mixed precision as in the learner: the pass runs on a copy in the bench dtype.
        let compute = model.cast(args.dtype.float());
        let out = compute.forward(&batch, None, None)?;
        let hidden = out.hidden.narrow(1, 0, len - 1);
        // Entropy as the learner computes it: a metric, off the graph.
        let scores = compute.token_scores_suppressed(
            hidden,
            targets,
            1.0,
            args.logits_budget,
            &[],
            EntropyGrad::Metric,
        );
        let loss = scores.logprobs.mean().neg();
        let grads = loss.backward();
        let value = loss
            .into_data()
            .convert::<f32>()
            .into_vec::<f32>()
            .map_or(f32::NAN, |v| v[0]);
        sync::<B>(device)?;
        let secs = start.elapsed().as_secs_f64();
        drop(grads);
        Ok((secs, value))
    };
    let (warmup_s, _) = step()?;
    let mut times = Vec::new();
    let mut loss = f32::NAN;
    for _ in 0..args.train_steps {
        let (secs, value) = step()?;
        times.push(secs);
        loss = value;
    }
    let secs = median(&times);
    let tokens = rows * len;
    report.push(json!({
        "case": format!("train_{rows}x{len}"),
        "kind": "train",
        "batch": rows,
        "seq_len": len,
        "tokens": tokens,
        "seconds": secs,
        "seconds_all": times,
        "tokens_per_s": tokens as f64 / secs,
        "warmup_s": warmup_s,
        "init_s": train_init_s,
        "loss": loss,
        "finite": loss.is_finite(),
        "notes": "forward + token_scores + backward",
        "start_unix": start_unix,
        "end_unix": now_unix(),
    }))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn presets_parse_and_prompts_avoid_special_ids() {
        let big = preset_config(Preset::TwoB).unwrap();
        assert_eq!(big.text_config.head_dim(), 128);
        assert_eq!(big.text_config.mrope_section(), [24, 20, 20]);
        assert_eq!(id_bound(&big), 151_652);
        let tiny = preset_config(Preset::Tiny).unwrap();
        let bound = id_bound(&tiny);
        assert_eq!(bound, 1001);
        let ids = prompt_ids(3, 50, bound);
        assert!(ids.iter().flatten().all(|&t| (t as usize) < bound));
        assert_ne!(ids[0], ids[1]);
    }

    #[test]
    fn fast_init_is_deterministic_with_the_requested_spread() {
        let mut a = vec![0.0f32; 300_000];
        let mut b = vec![0.0f32; 300_000];
        fill_uniform(&mut a, 7, 0.5);
        fill_uniform(&mut b, 7, 0.5);
        assert_eq!(a, b);
        assert!(a.iter().all(|v| v.abs() <= 0.5));
        let var = a.iter().map(|v| (v * v) as f64).sum::<f64>() / a.len() as f64;
        assert!((var - 0.25 / 3.0).abs() < 1e-3, "variance {var}");
    }
}
