//! The tool loop on a tiny random Qwen3-VL with a byte-level tokenizer whose `<tool_call>`,
//! `</tool_call>`, `<tool_response>`, `</tool_response>` are single added tokens (as in Qwen3).
//! A scripted policy forces the tool calls; everything else is the model's greedy choice.

use std::collections::HashMap;

use burn::prelude::*;
use image::RgbImage;
use temper_actor::response::{ResponsePart, tool_response_text};
use temper_actor::tools::ToolRegistry;
use temper_actor::{FinishReason, PromptInput, ToolLoopConfig, ToolRollout};
use temper_model::backend::Cpu;
use temper_model::chat::{
    ChatTemplate, ContentPart, Message, RenderOptions, expand_vision_placeholders,
};
use temper_model::picker::{PickAt, SamplingPicker, TokenPicker};
use temper_model::preprocess::VisionPreprocessConfig;
use temper_model::processor::{PreparedPrompt, Processor};
use temper_model::sampling::argmax;
use temper_model::tokenizer::{QWEN_SPECIAL_TOKENS, Tokenizer, byte_level_tokenizer_json};
use temper_model::weights::host_f32;
use temper_model::{Batch, Qwen3Vl, Qwen3VlConfig, SamplingParams, VisualInput};
use temper_rewards::ToolCallStatus;

type B = Cpu;

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
    model: Qwen3Vl<B>,
    processor: Processor,
    tools: ToolRegistry,
    image: RgbImage,
    prompt: PreparedPrompt,
    /// Where tool calls run (the binary's I/O runtime in a real run).
    io: tokio::runtime::Runtime,
}

impl Setup {
    /// The tool loop over this setup's model, processor and tools, its calls on `io`.
    fn rollout(&self, config: ToolLoopConfig) -> ToolRollout<'_, B> {
        ToolRollout::new(
            &self.model,
            &self.processor,
            &self.tools,
            config,
            self.io.handle().clone(),
        )
        .unwrap()
    }
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
    let model = Qwen3Vl::<B>::random(config, 7, &Default::default()).unwrap();
    let tools = ToolRegistry::builtins(&pixels);
    let image = RgbImage::from_fn(64, 48, |x, y| {
        image::Rgb([(x * 4) as u8, (y * 5) as u8, ((x + y) * 2) as u8])
    });
    let messages = [Message::new(
        "user",
        vec![ContentPart::Image, ContentPart::text("Zoom.")],
    )];
    // The system turn lists the tools, as a tool-using run renders it.
    let options = RenderOptions {
        tools: tools.definitions(),
        ..RenderOptions::generation()
    };
    let prompt = processor
        .prepare_with(&messages, std::slice::from_ref(&image), &[], &options)
        .unwrap();
    let text = processor
        .tokenizer
        .decode(&prompt.input_ids, false)
        .unwrap();
    assert!(text.starts_with("<|im_start|>system\n# Tools"), "{text}");
    Setup {
        model,
        processor,
        tools,
        image,
        prompt,
        io: tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .unwrap(),
    }
}

/// Forces `script[(sample, turn)]` at the start of that turn, then `<|im_end|>` after
/// `greedy_len` greedy tokens; records every logits row it was shown.
struct Scripted {
    script: HashMap<(usize, usize), Vec<u32>>,
    greedy_len: usize,
    seen: Vec<(usize, Vec<f32>, bool)>,
}

impl TokenPicker for Scripted {
    fn pick(&mut self, at: PickAt, logits: &[f32]) -> (u32, f32) {
        let forced = self.script.get(&(at.sample, at.turn));
        let (token, was_forced) = match forced {
            Some(tokens) if at.position < tokens.len() => (tokens[at.position], true),
            Some(tokens) if at.position >= tokens.len() + self.greedy_len => (IM_END, true),
            None if at.position >= self.greedy_len => (IM_END, true),
            _ => (greedy(logits), false),
        };
        self.seen.push((at.sample, logits.to_vec(), was_forced));
        (token, log_softmax_at(logits, token))
    }
}

/// Greedy over the byte tokens only, so an unscripted turn never emits tool tags or stops early.
fn greedy(logits: &[f32]) -> u32 {
    argmax(&logits[..256]) as u32
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

fn encode(s: &Setup, text: &str) -> Vec<u32> {
    s.processor.tokenizer.encode(text).unwrap()
}

fn call_text(name: &str, arguments: &str) -> String {
    format!("<tool_call>\n{{\"name\": \"{name}\", \"arguments\": {arguments}}}\n</tool_call>")
}

fn params(max_new_tokens: usize) -> SamplingParams {
    SamplingParams::greedy(max_new_tokens)
}

#[test]
fn cached_multi_turn_continuation_equals_a_cache_free_forward() {
    let s = setup();
    let zoom = encode(
        &s,
        &call_text("image_zoom", "{\"bbox_2d\": [0, 0, 500, 500]}"),
    );
    let calc = encode(&s, &call_text("calculator", "{\"expression\": \"6*7\"}"));
    assert_eq!(zoom[0], 263, "<tool_call> is one token");
    assert_eq!(*zoom.last().unwrap(), 264, "</tool_call> is one token");
    let mut picker = Scripted {
        script: HashMap::from([
            ((0, 0), zoom.clone()),
            ((1, 0), calc.clone()),
            ((1, 1), encode(&s, "x")),
        ]),
        greedy_len: 6,
        seen: Vec::new(),
    };
    let rollout = s.rollout(ToolLoopConfig::default());
    let group = rollout
        .run_with(
            &s.prompt,
            std::slice::from_ref(&s.image),
            2,
            &params(100),
            &mut picker,
        )
        .unwrap();
    assert_eq!(group.samples.len(), 2);
    assert_eq!(group.counts.ok, 2);

    // Sample 0: the zoom response holds one image, 32×24 crop → 2× → 64×48 → grid (1, 6, 8).
    let s0 = &group.samples[0];
    assert_eq!(s0.turns.len(), 2);
    assert_eq!(s0.finish, FinishReason::Stop);
    assert_eq!(s0.turns[0].tool_calls[0].status, ToolCallStatus::Ok);
    assert_eq!(
        s0.turns[0].tool_calls[0].name.as_deref(),
        Some("image_zoom")
    );
    assert_eq!(s0.images.len(), 1);
    assert_eq!(s0.images[0].grid_thw, [1, 6, 8]);
    let s1 = &group.samples[1];
    assert_eq!(s1.turns[0].tool_calls[0].output, "42");
    assert_eq!(s1.turns.len(), 2);

    // Mask and log-probs: the response chunk is exactly the template's tool response.
    for (sample, call, image_tokens) in [(s0, &zoom, 12usize), (s1, &calc, 0)] {
        let record = &sample.turns[0].tool_calls[0];
        let text = tool_response_text(
            &[ResponsePart {
                text: &record.output,
                images: usize::from(image_tokens > 0),
            }],
            false,
        );
        let counts: Vec<usize> = if image_tokens > 0 {
            vec![image_tokens]
        } else {
            vec![]
        };
        let chunk = encode(
            &s,
            &expand_vision_placeholders(&text, &counts, &[]).unwrap(),
        );
        let n = call.len();
        assert_eq!(
            &sample.token_ids[..n],
            &call[..],
            "generated ids pass through unchanged"
        );
        assert_eq!(&sample.token_ids[n..n + chunk.len()], &chunk[..]);
        for (i, (&m, &lp)) in sample
            .response_mask
            .iter()
            .zip(&sample.behaviour_logprobs)
            .enumerate()
        {
            let tool = (n..n + chunk.len()).contains(&i);
            assert_eq!(m, u8::from(!tool), "mask at {i}");
            if tool {
                assert_eq!(lp, 0.0);
            } else {
                assert!(lp < 0.0 && lp.is_finite(), "log-prob at {i}: {lp}");
            }
        }
        assert_eq!(*sample.token_ids.last().unwrap(), IM_END);
    }

    // Every logits row the policy saw equals a cache-free forward over the whole sequence, and
    // the greedy choices are what recomputing from scratch picks.
    let vocab = s.model.config.text_config.vocab_size;
    let prompt_len = s.prompt.input_ids.len();
    let device = Default::default();
    let prompt_batch = s
        .processor
        .batch::<B>(std::slice::from_ref(&s.prompt), &device)
        .unwrap();
    let prompt_images = prompt_batch.images.clone().unwrap();
    let mut checked = 0;
    for (index, sample) in group.samples.iter().enumerate() {
        let ids = [s.prompt.input_ids.clone(), sample.token_ids.clone()].concat();
        let mut pixel_rows = vec![prompt_images.pixel_values.clone()];
        let mut grids = prompt_images.grid_thw.clone();
        for image in &sample.images {
            let rows = image.num_patches();
            pixel_rows.push(Tensor::from_data(
                TensorData::new(
                    image.pixel_values.clone(),
                    [rows, image.pixel_values.len() / rows],
                ),
                &device,
            ));
            grids.push(image.grid_thw);
        }
        let mut batch = Batch::<B>::text(ids);
        batch.images = Some(VisualInput {
            pixel_values: Tensor::cat(pixel_rows, 0),
            grid_thw: grids,
        });
        let out = s.model.forward(&batch, None, None).unwrap();
        let full = host_f32(s.model.logits(out.hidden));
        let positions: Vec<usize> = (0..sample.token_ids.len())
            .filter(|&i| sample.response_mask[i] == 1)
            .collect();
        let seen: Vec<&(usize, Vec<f32>, bool)> =
            picker.seen.iter().filter(|(r, _, _)| *r == index).collect();
        assert_eq!(seen.len(), positions.len());
        for ((_, cached, forced), &i) in seen.iter().zip(&positions) {
            let at = prompt_len + i - 1;
            let reference = &full[at * vocab..(at + 1) * vocab];
            let diff = cached
                .iter()
                .zip(reference)
                .map(|(a, b)| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(
                diff < 1e-4,
                "sample {index} token {i}: max |Δlogit| = {diff}"
            );
            if !forced {
                assert_eq!(greedy(reference), sample.token_ids[i], "greedy token {i}");
            }
            checked += 1;
        }
    }
    assert!(checked > 2 * 10, "{checked}");
}

#[test]
fn malformed_and_unknown_calls_get_error_responses() {
    let s = setup();
    let text = "<tool_call>\n{\"name\": calc}\n</tool_call>";
    let unknown = call_text("search", "{\"q\": \"x\"}");
    let mut picker = Scripted {
        script: HashMap::from([((0, 0), encode(&s, text)), ((0, 1), encode(&s, &unknown))]),
        greedy_len: 3,
        seen: Vec::new(),
    };
    let rollout = s.rollout(ToolLoopConfig::default());
    let group = rollout
        .run_with(
            &s.prompt,
            std::slice::from_ref(&s.image),
            1,
            &params(200),
            &mut picker,
        )
        .unwrap();
    let sample = &group.samples[0];
    assert_eq!(sample.turns.len(), 3);
    let first = &sample.turns[0].tool_calls[0];
    assert_eq!(first.status, ToolCallStatus::Malformed);
    assert!(
        first
            .output
            .starts_with("error: the tool call is not valid JSON"),
        "{}",
        first.output
    );
    let second = &sample.turns[1].tool_calls[0];
    assert_eq!(second.status, ToolCallStatus::UnknownTool);
    assert_eq!(
        (
            group.counts.malformed,
            group.counts.unknown,
            group.counts.ok
        ),
        (1, 1, 0)
    );
    // The model was shown the errors, inside tool-response blocks, with mask 0.
    let shown: Vec<u32> = sample
        .token_ids
        .iter()
        .zip(&sample.response_mask)
        .filter(|(_, m)| **m == 0)
        .map(|(t, _)| *t)
        .collect();
    let shown = s.processor.tokenizer.decode(&shown, false).unwrap();
    assert!(
        shown.contains("<tool_response>\nerror: the tool call is not valid JSON"),
        "{shown}"
    );
    assert!(shown.contains("no tool named `search`"), "{shown}");
    assert_eq!(sample.finish, FinishReason::Stop);
    assert!(sample.images.is_empty());
}

#[test]
fn max_turns_is_respected() {
    let s = setup();
    let calc = encode(&s, &call_text("calculator", "{\"expression\": \"1+1\"}"));
    let mut picker = Scripted {
        script: (0..5).map(|t| ((0, t), calc.clone())).collect(),
        greedy_len: 3,
        seen: Vec::new(),
    };
    let config = ToolLoopConfig {
        max_turns: 2,
        ..ToolLoopConfig::default()
    };
    let rollout = s.rollout(config);
    let group = rollout
        .run_with(
            &s.prompt,
            std::slice::from_ref(&s.image),
            1,
            &params(500),
            &mut picker,
        )
        .unwrap();
    let sample = &group.samples[0];
    assert_eq!(sample.finish, FinishReason::MaxTurns);
    assert_eq!(sample.turns.len(), 2);
    assert_eq!(sample.turns[0].tool_calls[0].status, ToolCallStatus::Ok);
    let last = &sample.turns[1].tool_calls[0];
    assert_eq!(last.status, ToolCallStatus::Failed);
    assert!(last.output.contains("not executed"));
    // The sequence ends with the second call's `</tool_call>`, nothing appended after it.
    assert_eq!(*sample.token_ids.last().unwrap(), 264);
    assert_eq!(*sample.response_mask.last().unwrap(), 1);
}

#[test]
fn without_tool_calls_the_rollout_samples_like_generate() {
    let s = setup();
    let params = SamplingParams {
        temperature: 1.0,
        max_new_tokens: 24,
        stop_token_ids: vec![IM_END],
        seed: 11,
        // No tool tags, so every sample is one turn; `run` adds the policy's suppressed tokens
        // itself, and `generate` is given them here.
        suppress_token_ids: [
            vec![263, 264],
            temper_model::policy_suppressed_tokens(&s.processor.special),
        ]
        .concat(),
        ..SamplingParams::default()
    };
    let rollout = s.rollout(ToolLoopConfig::default());
    let group = rollout
        .run(&s.prompt, std::slice::from_ref(&s.image), 3, &params)
        .unwrap();
    let batch = s
        .processor
        .batch::<B>(std::slice::from_ref(&s.prompt), &Default::default())
        .unwrap();
    let generated = s
        .model
        .generate(&batch, 3, std::slice::from_ref(&params))
        .unwrap();
    for (ours, theirs) in group.samples.iter().zip(&generated) {
        assert_eq!(ours.token_ids, theirs.tokens);
        assert!(ours.response_mask.iter().all(|&m| m == 1));
        for (a, b) in ours.behaviour_logprobs.iter().zip(&theirs.logprobs) {
            assert!((a - b).abs() < 1e-4, "{a} vs {b}");
        }
        assert_eq!(ours.turns.len(), 1);
        assert!(ours.turns[0].tool_calls.is_empty());
        let prompt = temper_rewards::RolloutPrompt {
            id: 0,
            prepared: s.prompt.clone(),
            images: vec![s.image.clone()],
            text: "p".into(),
            reference: Some("4".into()),
            metadata: None,
            seed: 11,
        };
        let reward = ours.reward_sample(&prompt, 24);
        assert_eq!(reward.reference.as_deref(), Some("4"));
        assert_eq!(reward.response_tokens, Some(ours.token_ids.len()));
    }
    assert_eq!(group.counts.total(), 0);
}

#[test]
fn device_picked_rollouts_equal_host_picked_ones() {
    let s = setup();
    let special = &s.processor.special;
    let params = SamplingParams {
        temperature: 1.0,
        max_new_tokens: 20,
        stop_token_ids: vec![IM_END],
        seed: 5,
        suppress_token_ids: temper_model::policy_suppressed_tokens(special),
        ..SamplingParams::default()
    };
    let rollout = s.rollout(ToolLoopConfig::default());
    let image = std::slice::from_ref(&s.image);
    // `run` picks untruncated rows on the device; `run_with` the same sampler on the host.
    let on_device = rollout.run(&s.prompt, image, 4, &params).unwrap();
    let mut host = SamplingPicker::new(params.clone(), 4);
    let on_host = rollout
        .run_with(&s.prompt, image, 4, &params, &mut host)
        .unwrap();
    for (i, (a, b)) in on_device.samples.iter().zip(&on_host.samples).enumerate() {
        assert_eq!(a.token_ids, b.token_ids, "sample {i}");
        assert_eq!(a.turns, b.turns);
        for (x, y) in a.behaviour_logprobs.iter().zip(&b.behaviour_logprobs) {
            assert!((x - y).abs() < 1e-5, "{x} vs {y}");
        }
    }
    let distinct: std::collections::HashSet<_> =
        on_device.samples.iter().map(|s| &s.token_ids).collect();
    assert!(distinct.len() > 1, "samples of a group should differ");
}

#[test]
fn a_batched_rollout_equals_one_rollout_per_prompt() {
    let s = setup();
    // A second prompt of another length: the batch left-pads it.
    let options = RenderOptions {
        tools: s.tools.definitions(),
        ..RenderOptions::generation()
    };
    let messages = [Message::new(
        "user",
        vec![
            ContentPart::Image,
            ContentPart::text("How many squares are there? Count them."),
        ],
    )];
    let second = s
        .processor
        .prepare_with(&messages, std::slice::from_ref(&s.image), &[], &options)
        .unwrap();
    assert_ne!(second.input_ids.len(), s.prompt.input_ids.len());
    let params = |seed| SamplingParams {
        temperature: 1.0,
        max_new_tokens: 12,
        stop_token_ids: vec![IM_END],
        seed,
        // No tool tags: every sample is one turn.
        suppress_token_ids: vec![263, 264],
        ..SamplingParams::default()
    };
    let (pa, pb) = (params(3), params(4));
    let rollout = s.rollout(ToolLoopConfig::default());
    let image = std::slice::from_ref(&s.image);
    let batched = rollout
        .run_batch(
            &[
                PromptInput {
                    prompt: &s.prompt,
                    images: image,
                    params: &pa,
                },
                PromptInput {
                    prompt: &second,
                    images: image,
                    params: &pb,
                },
            ],
            3,
        )
        .unwrap();
    let alone = [
        rollout.run(&s.prompt, image, 3, &pa).unwrap(),
        rollout.run(&second, image, 3, &pb).unwrap(),
    ];
    assert_eq!(batched.len(), 2);
    for (p, (ours, theirs)) in batched.iter().zip(&alone).enumerate() {
        assert_eq!(ours.samples.len(), 3);
        for (i, (a, b)) in ours.samples.iter().zip(&theirs.samples).enumerate() {
            assert_eq!(a.token_ids, b.token_ids, "prompt {p} sample {i}");
            assert_eq!(a.turns, b.turns, "prompt {p} sample {i}");
            for (x, y) in a.behaviour_logprobs.iter().zip(&b.behaviour_logprobs) {
                assert!((x - y).abs() < 1e-4, "prompt {p} sample {i}: {x} vs {y}");
            }
        }
    }
}
