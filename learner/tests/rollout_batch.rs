//! The learner's batch on what the actor produces: a 2-turn tool rollout (a scripted
//! `image_zoom` call, its response holding the zoomed image, then a second turn) on a tiny random
//! Qwen3-VL whose byte-level tokenizer has Qwen's special and tool tokens.
//!
//! - The learner's recomputed log-probs (prompt images + the sample's tool images, positions from
//!   the tokens and grids) equal the behaviour log-probs the actor recorded, within 1e-4.
//! - Tool-response tokens (mask 0) contribute no gradient, and changing their log-probs changes
//!   neither the loss nor the gradient.

mod common;

use std::collections::HashMap;

use burn::backend::Autodiff;
use burn::prelude::*;
use image::RgbImage;
use temper_actor::tools::ToolRegistry;
use temper_actor::{Sample, ToolLoopConfig, ToolRollout};
use temper_learner::train::sequences::ResponseBatch;
use temper_learner::{Advantages, PolicyInputs, PolicyLoss};
use temper_model::backend::Cpu;
use temper_model::chat::{ChatTemplate, ContentPart, Message, RenderOptions};
use temper_model::logprobs::EntropyGrad;
use temper_model::picker::{PickAt, TokenPicker};
use temper_model::preprocess::VisionPreprocessConfig;
use temper_model::processor::{PreparedPrompt, Processor};
use temper_model::sampling::argmax;
use temper_model::tokenizer::{QWEN_SPECIAL_TOKENS, Tokenizer, byte_level_tokenizer_json};
use temper_model::{Qwen3Vl, Qwen3VlConfig, SamplingParams};

type B = Cpu;
type AD = Autodiff<Cpu>;

const IM_END: u32 = 258;

const CONFIG: &str = r#"{
  "model_type": "qwen3_vl", "image_token_id": 261, "video_token_id": 262,
  "vision_start_token_id": 259, "vision_end_token_id": 260, "tie_word_embeddings": true,
  "text_config": {"model_type": "qwen3_vl_text", "vocab_size": 272, "hidden_size": 64,
    "intermediate_size": 128, "num_hidden_layers": 2, "num_attention_heads": 4,
    "num_key_value_heads": 2, "head_dim": 16, "hidden_act": "silu", "rms_norm_eps": 1e-6,
    "max_position_embeddings": 2048, "initializer_range": 0.1,
    "rope_parameters": {"rope_type": "default", "rope_theta": 10000.0,
      "mrope_section": [4, 2, 2], "mrope_interleaved": true}},
  "vision_config": {"model_type": "qwen3_vl_vision", "depth": 2, "hidden_size": 32,
    "intermediate_size": 64, "num_heads": 2, "in_channels": 3, "patch_size": 8,
    "spatial_merge_size": 2, "temporal_patch_size": 2, "out_hidden_size": 64,
    "num_position_embeddings": 64, "deepstack_visual_indexes": [0, 1],
    "hidden_act": "gelu_pytorch_tanh", "initializer_range": 0.02}
}"#;

const PIXELS: &str = r#"{"image_processor_type": "Qwen2VLImageProcessor", "do_convert_rgb": true,
  "do_normalize": true, "do_rescale": true, "do_resize": true, "image_mean": [0.5, 0.5, 0.5],
  "image_std": [0.5, 0.5, 0.5], "merge_size": 2, "patch_size": 8, "resample": 3,
  "rescale_factor": 0.00392156862745098, "size": {"longest_edge": 65536, "shortest_edge": 1024},
  "temporal_patch_size": 2}"#;

struct Setup {
    config: Qwen3VlConfig,
    processor: Processor,
    prompt: PreparedPrompt,
    /// The 2-turn sample: a zoom call, its response with one image, then a short answer.
    sample: Sample,
}

/// Forces the zoom call at the start of sample 0's first turn, then `<|im_end|>` after a few
/// greedy byte tokens in each turn; the behaviour log-prob is the plain log-softmax.
struct Scripted {
    script: HashMap<(usize, usize), Vec<u32>>,
    greedy_len: usize,
}

impl TokenPicker for Scripted {
    fn pick(&mut self, at: PickAt, logits: &[f32]) -> (u32, f32) {
        let forced = self.script.get(&(at.sample, at.turn));
        let token = match forced {
            Some(tokens) if at.position < tokens.len() => tokens[at.position],
            Some(tokens) if at.position >= tokens.len() + self.greedy_len => IM_END,
            None if at.position >= self.greedy_len => IM_END,
            // Greedy over the byte tokens only: never a tool tag or an early stop.
            _ => argmax(&logits[..256]) as u32,
        };
        (token, log_softmax_at(logits, token))
    }
}

fn log_softmax_at(logits: &[f32], token: u32) -> f32 {
    let max = logits.iter().copied().fold(f32::NEG_INFINITY, f32::max) as f64;
    let z: f64 = logits
        .iter()
        .map(|&x| (x as f64 - max).exp())
        .sum::<f64>()
        .ln()
        + max;
    (logits[token as usize] as f64 - z) as f32
}

fn setup() -> Setup {
    let config: Qwen3VlConfig = serde_json::from_str(CONFIG).unwrap();
    let specials: Vec<(&str, u32)> = QWEN_SPECIAL_TOKENS.iter().copied().zip(256..).collect();
    let plain = [
        ("<tool_call>", 263),
        ("</tool_call>", 264),
        ("<tool_response>", 265),
        ("</tool_response>", 266),
    ];
    let tokenizer =
        Tokenizer::from_bytes(byte_level_tokenizer_json(&specials, &plain).as_bytes()).unwrap();
    let pixels = VisionPreprocessConfig::from_json_str(PIXELS).unwrap();
    let processor =
        Processor::new(tokenizer, ChatTemplate::builtin(), pixels.clone(), &config).unwrap();
    let model = Qwen3Vl::<B>::random(config.clone(), 7, &Default::default()).unwrap();
    let tools = ToolRegistry::builtins(&pixels);
    let image = RgbImage::from_fn(64, 48, |x, y| {
        image::Rgb([(x * 4) as u8, (y * 5) as u8, ((x + y) * 2) as u8])
    });
    let messages = [Message::new(
        "user",
        vec![ContentPart::Image, ContentPart::text("Zoom.")],
    )];
    let options = RenderOptions {
        tools: tools.definitions(),
        ..RenderOptions::generation()
    };
    let prompt = processor
        .prepare_with(&messages, std::slice::from_ref(&image), &[], &options)
        .unwrap();
    let zoom = processor
        .tokenizer
        .encode(
            "<tool_call>\n{\"name\": \"image_zoom\", \"arguments\": {\"bbox_2d\": [0, 0, 500, 500]}}\n</tool_call>",
        )
        .unwrap();
    let mut picker = Scripted {
        script: HashMap::from([((0, 0), zoom)]),
        greedy_len: 6,
    };
    let io = common::io_runtime();
    let rollout = ToolRollout::new(
        &model,
        &processor,
        &tools,
        ToolLoopConfig::default(),
        io.handle().clone(),
    )
    .unwrap();
    let group = rollout
        .run_with(
            &prompt,
            std::slice::from_ref(&image),
            1,
            &SamplingParams::greedy(100),
            &mut picker,
        )
        .unwrap();
    let sample = group.samples.into_iter().next().unwrap();
    assert_eq!(sample.turns.len(), 2, "a call turn and an answer turn");
    assert_eq!(sample.images.len(), 1, "the zoom response holds one image");
    assert!(
        sample.response_mask.contains(&0),
        "tool tokens are in the sample"
    );
    Setup {
        config,
        processor,
        prompt,
        sample,
    }
}

fn host<const D: usize, BB: Backend>(t: Tensor<BB, D>) -> Vec<f32> {
    t.into_data().iter::<f32>().collect()
}

#[test]
fn recomputed_logprobs_of_a_two_turn_sample_with_a_tool_image_equal_the_behaviour_ones() {
    let s = setup();
    let model = Qwen3Vl::<B>::random(s.config.clone(), 7, &Default::default()).unwrap();
    let device = Default::default();
    let batch = ResponseBatch::<B>::new(&s.processor, &[(&s.prompt, &s.sample)], &device).unwrap();
    assert_eq!(batch.window, s.sample.token_ids.len());
    let mask = host(batch.mask(&device));
    let expected: Vec<f32> = s
        .sample
        .response_mask
        .iter()
        .map(|&m| f32::from(m))
        .collect();
    assert_eq!(
        mask, expected,
        "the batch's mask is the sample's response mask"
    );
    // The scripted picker recorded the plain log-softmax: score without suppression.
    let scores = batch.scores(&model, 1.0, &[], EntropyGrad::Metric).unwrap();
    let recomputed = host(scores.logprobs);
    let mut checked = 0;
    for (k, (&m, (&ours, &behaviour))) in mask
        .iter()
        .zip(recomputed.iter().zip(&s.sample.behaviour_logprobs))
        .enumerate()
    {
        if m == 1.0 {
            assert!(
                (ours - behaviour).abs() < 1e-4,
                "token {k}: learner {ours} vs behaviour {behaviour}"
            );
            checked += 1;
        }
    }
    assert!(checked > 10, "both turns' generated tokens are compared");
}

/// `(loss, d loss / d logprobs)` of GSPO on the sample's batch with `behaviour` as the old
/// log-probs and `shift` added to the recomputed log-probs at mask-0 positions.
fn loss_and_grad(s: &Setup, behaviour: &[f32], shift: f32) -> (f32, Vec<f32>) {
    let device = Default::default();
    let model = Qwen3Vl::<AD>::random(s.config.clone(), 7, &device).unwrap();
    let mut sample = s.sample.clone();
    sample.behaviour_logprobs = behaviour.to_vec();
    let batch = ResponseBatch::<AD>::new(&s.processor, &[(&s.prompt, &sample)], &device).unwrap();
    let mask = batch.mask(&device);
    let scores = batch.scores(&model, 1.0, &[], EntropyGrad::Metric).unwrap();
    let leaf = scores.logprobs.detach().require_grad();
    let shifted = leaf.clone() + (mask.clone().neg() + 1.0) * shift;
    let old = batch.align(&[sample.behaviour_logprobs.as_slice()], 0.0, &device);
    let advantages = Tensor::<AD, 1>::from_data(TensorData::new(vec![1.0f32], [1]), &device);
    let output = PolicyLoss::default()
        .compute(PolicyInputs {
            logprobs: shifted,
            old_logprobs: old,
            ref_logprobs: None,
            advantages: Advantages::Sequence(advantages),
            mask,
        })
        .unwrap();
    let loss = host(output.loss.clone())[0];
    let grads = output.loss.backward();
    let grad = host(leaf.grad(&grads).unwrap());
    (loss, grad)
}

#[test]
fn tool_tokens_contribute_no_gradient() {
    let s = setup();
    // On-policy (the sequence ratio is 1, inside GSPO's clip range), so generated tokens carry
    // gradient.
    let behaviour = s.sample.behaviour_logprobs.clone();
    let (loss, grad) = loss_and_grad(&s, &behaviour, 0.0);
    assert!(loss.is_finite());
    for (k, (&m, &g)) in s.sample.response_mask.iter().zip(&grad).enumerate() {
        if m == 0 {
            assert_eq!(g, 0.0, "tool token {k} has gradient {g}");
        }
    }
    assert!(
        grad.iter().any(|&g| g != 0.0),
        "generated tokens do carry gradient"
    );

    // Changing a tool token's behaviour log-prob, or its recomputed one, changes nothing.
    let mut changed = behaviour.clone();
    for (lp, &m) in changed.iter_mut().zip(&s.sample.response_mask) {
        if m == 0 {
            *lp = -7.0;
        }
    }
    assert_eq!(loss_and_grad(&s, &changed, 0.0), (loss, grad.clone()));
    assert_eq!(loss_and_grad(&s, &behaviour, 3.0), (loss, grad));
}

/// A one-turn sample of `tokens` (every token generated, behaviour log-probs unknown).
fn one_turn(tokens: &[u32]) -> Sample {
    Sample {
        token_ids: tokens.to_vec(),
        response_mask: vec![1; tokens.len()],
        behaviour_logprobs: vec![0.0; tokens.len()],
        images: Vec::new(),
        turns: Vec::new(),
        finish: temper_model::FinishReason::Stop,
        policy_version: 0,
    }
}

/// The shared-prefix layout (each prompt prefilled once, rows continued from its cache) gives
/// the joined layout's log-probs, entropies and parameter gradients: rows of two prompts, one
/// with an image, samples of different lengths, one of them the 2-turn sample with a tool image.
#[test]
fn the_shared_prefix_layout_scores_and_differentiates_as_the_joined_one() {
    let s = setup();
    let device = Default::default();
    let model = Qwen3Vl::<AD>::random(s.config.clone(), 7, &device).unwrap();
    let text_prompt = s
        .processor
        .prepare(&[Message::user("Say hi.")], &[], &[])
        .unwrap();
    let short = one_turn(&[b'4' as u32, IM_END]);
    let longer = one_turn(&[b'1' as u32, b'2' as u32, b'3' as u32, IM_END]);
    let rows = [
        (&s.prompt, &s.sample),
        (&s.prompt, &short),
        (&text_prompt, &longer),
        (&text_prompt, &short),
        (&s.prompt, &longer),
    ];
    let run = |shared: bool| {
        let batch = ResponseBatch::<AD>::with_layout(&s.processor, &rows, &device, shared).unwrap();
        assert_eq!(batch.is_shared_prefix(), shared);
        let scores = batch
            .scores(&model, 0.7, &[IM_END + 5], EntropyGrad::Tracked)
            .unwrap();
        let mask = batch.mask(&device);
        let objective = (scores.logprobs.clone() * mask.clone()).sum()
            + (scores.entropy.clone() * mask.clone()).sum();
        let grads = objective.backward();
        let embed = host(model.language.embed_tokens.val().grad(&grads).unwrap());
        let patch = host(model.visual.patch_embed.weight.val().grad(&grads).unwrap());
        let tokens = batch.forward_tokens();
        let masked = |t: Tensor<AD, 2>| -> Vec<f32> { host((t * mask.clone()).detach()) };
        (
            masked(scores.logprobs),
            masked(scores.entropy),
            embed,
            patch,
            tokens,
        )
    };
    let (lp_joined, ent_joined, embed_joined, patch_joined, tokens_joined) = run(false);
    let (lp_shared, ent_shared, embed_shared, patch_shared, tokens_shared) = run(true);
    let close = |what: &str, a: &[f32], b: &[f32], tol: f32| {
        assert_eq!(a.len(), b.len());
        let scale = a.iter().fold(1.0f32, |m, x| m.max(x.abs()));
        for (k, (x, y)) in a.iter().zip(b).enumerate() {
            assert!(
                (x - y).abs() <= tol * scale,
                "{what}[{k}]: joined {x}, shared {y}"
            );
        }
    };
    close("log-prob", &lp_joined, &lp_shared, 1e-5);
    close("entropy", &ent_joined, &ent_shared, 1e-5);
    close("d/d embed_tokens", &embed_joined, &embed_shared, 1e-5);
    close("d/d patch_embed", &patch_joined, &patch_shared, 1e-5);
    assert!(
        patch_shared.iter().any(|&g| g != 0.0),
        "the image is in the graph"
    );
    assert!(
        tokens_shared < tokens_joined,
        "the prompts go through once per group: {tokens_shared} vs {tokens_joined} tokens"
    );
    // The trainer's constructor picks the shared layout when rows share a prompt.
    let auto = ResponseBatch::<AD>::new(&s.processor, &rows, &device).unwrap();
    assert!(auto.is_shared_prefix());
    let single = ResponseBatch::<AD>::new(&s.processor, &rows[..1], &device).unwrap();
    assert!(!single.is_shared_prefix());
}
