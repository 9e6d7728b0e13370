//! End-to-end tests of the `temper` binary on the CPU: `forward` and `generate` against the HF
//! golden fixtures, the prompt path with a byte-level tokenizer, and bad input of every kind
//! giving a clear error (non-zero exit, message naming the input), never a panic.

mod common;

use std::path::{Path, PathBuf};
use std::process::Output;

use common::{stderr, temper, temper_within};
use temper_model::safetensors_io::{HostTensor, SafetensorsFile, write_safetensors};
use temper_model::tokenizer::{QWEN_SPECIAL_TOKENS, byte_level_tokenizer_json};

fn data(fixture: &str) -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR"))
        .join("model/tests/data")
        .join(fixture)
}

/// A failed run with a clear message (no panic backtrace).
fn assert_clear_error(out: &Output, needles: &[&str]) {
    let err = stderr(out);
    assert!(
        !out.status.success(),
        "expected failure, got success: {err}"
    );
    assert!(
        !err.contains("panicked"),
        "panicked instead of a clear error: {err}"
    );
    for needle in needles {
        assert!(
            err.contains(needle),
            "error should mention `{needle}`: {err}"
        );
    }
}

const INPUT_NAMES: [&str; 6] = [
    "input_ids",
    "attention_mask",
    "pixel_values",
    "image_grid_thw",
    "pixel_values_videos",
    "video_grid_thw",
];

/// Copies a golden case's processor inputs into an inputs file.
fn write_case_inputs(golden: &SafetensorsFile, case: &str, path: &Path) {
    let tensors: Vec<(String, HostTensor)> = INPUT_NAMES
        .iter()
        .filter(|n| golden.contains(&format!("{case}.{n}")))
        .map(|n| {
            let key = format!("{case}.{n}");
            let tensor = if n.starts_with("pixel") {
                let (shape, v) = golden.read_f32(&key).unwrap();
                HostTensor::f32(shape, v)
            } else {
                let (shape, v) = golden.read_i64(&key).unwrap();
                HostTensor::i64(shape, v)
            };
            (n.to_string(), tensor)
        })
        .collect();
    write_safetensors(path, &tensors, None).unwrap();
}

fn case_names(fixture: &Path) -> Vec<String> {
    let cases: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(fixture.join("cases.json")).unwrap())
            .unwrap();
    cases["cases"]
        .as_object()
        .unwrap()
        .keys()
        .cloned()
        .collect()
}

/// `temper forward --model DIR --inputs IN --out OUT` plus `extra` flags.
fn forward(model: &Path, inputs: &Path, outputs: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "forward",
        "--model",
        model.to_str().unwrap(),
        "--inputs",
        inputs.to_str().unwrap(),
        "--out",
        outputs.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    temper(&args)
}

#[test]
fn forward_writes_transformers_logits_logprobs_and_positions() {
    let scratch = tempfile::tempdir().unwrap();
    for fixture in ["qwen3vl-tiny-a", "qwen3vl-tiny-b", "qwen3vl-tiny-moe"] {
        let dir = data(fixture);
        let golden = SafetensorsFile::open(dir.join("golden.safetensors")).unwrap();
        for case in case_names(&dir) {
            let inputs = scratch
                .path()
                .join(format!("{fixture}-{case}-in.safetensors"));
            let outputs = scratch
                .path()
                .join(format!("{fixture}-{case}-out.safetensors"));
            write_case_inputs(&golden, &case, &inputs);
            let out = forward(&dir, &inputs, &outputs, &[]);
            assert!(out.status.success(), "{fixture}/{case}: {}", stderr(&out));
            let ours = SafetensorsFile::open(&outputs).unwrap();
            let (_, mask) = golden.read_i64(&format!("{case}.attention_mask")).unwrap();
            let (shape, logits) = ours.read_f32("logits").unwrap();
            let (_, expected) = golden.read_f32(&format!("{case}.logits")).unwrap();
            let (l, v) = (shape[1], shape[2]);
            let diff = logits
                .iter()
                .zip(&expected)
                .enumerate()
                .filter(|(i, _)| mask[i / v] == 1)
                .map(|(_, (a, b))| (a - b).abs())
                .fold(0.0f32, f32::max);
            assert!(diff < 1e-4, "{fixture}/{case}: logits differ by {diff}");

            let (_, lp) = ours.read_f32("token_logprobs").unwrap();
            let (_, expected_lp) = golden.read_f32(&format!("{case}.token_logprobs")).unwrap();
            for (i, (a, b)) in lp.iter().zip(&expected_lp).enumerate() {
                let (row, t) = (i / (l - 1), i % (l - 1));
                if mask[row * l + t] == 1 && mask[row * l + t + 1] == 1 {
                    assert!(
                        (a - b).abs() < 1e-4,
                        "{fixture}/{case}: token_logprobs[{i}] {a} vs {b}"
                    );
                }
            }
            let (_, pos) = ours.read_i64("position_ids").unwrap();
            let (_, expected_pos) = golden.read_i64(&format!("{case}.position_ids")).unwrap();
            for (i, (a, b)) in pos.iter().zip(&expected_pos).enumerate() {
                if mask[i % mask.len()] == 1 {
                    assert_eq!(a, b, "{fixture}/{case}: position_ids[{i}]");
                }
            }
            assert_eq!(
                ours.read_i64("rope_deltas").unwrap(),
                golden.read_i64(&format!("{case}.rope_deltas")).unwrap(),
                "{fixture}/{case}"
            );
        }
    }
}

/// `--dtype bf16`: the logits stay as close to f32 as transformers' own bf16 run is (mean |Δ|
/// within 1.2×), so the cast, f32 norms and softmax are in the path the CLI runs.
#[test]
fn forward_in_bf16_drifts_like_transformers_bf16() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = data("qwen3vl-tiny-b");
    let golden = SafetensorsFile::open(dir.join("golden.safetensors")).unwrap();
    let reference = SafetensorsFile::open(dir.join("golden_bf16.safetensors")).unwrap();
    let inputs = scratch.path().join("in.safetensors");
    let outputs = scratch.path().join("out.safetensors");
    write_case_inputs(&golden, "mixed", &inputs);
    let out = forward(&dir, &inputs, &outputs, &["--dtype", "bf16"]);
    assert!(out.status.success(), "{}", stderr(&out));
    let (_, ours) = SafetensorsFile::open(&outputs)
        .unwrap()
        .read_f32("logits")
        .unwrap();
    let (_, f32_logits) = golden.read_f32("mixed.logits").unwrap();
    let (_, hf_bf16) = reference.read_f32("mixed.logits").unwrap();
    let (_, mask) = golden.read_i64("mixed.attention_mask").unwrap();
    let v = ours.len() / mask.len();
    let mean_drift = |a: &[f32]| {
        let kept: Vec<f32> = a
            .iter()
            .zip(&f32_logits)
            .enumerate()
            .filter(|(i, _)| mask[i / v] == 1)
            .map(|(_, (x, y))| (x - y).abs())
            .collect();
        kept.iter().sum::<f32>() / kept.len() as f32
    };
    let (drift, hf_drift) = (mean_drift(&ours), mean_drift(&hf_bf16));
    assert!(drift > 1e-4, "--dtype bf16 computed in f32 (drift {drift})");
    assert!(
        drift <= 1.2 * hf_drift,
        "bf16 drift {drift} vs transformers' {hf_drift}"
    );
}

#[test]
fn generate_from_inputs_equals_transformers_greedy() {
    let scratch = tempfile::tempdir().unwrap();
    for fixture in ["qwen3vl-tiny-a", "qwen3vl-tiny-b", "qwen3vl-tiny-moe"] {
        let dir = data(fixture);
        let golden = SafetensorsFile::open(dir.join("golden.safetensors")).unwrap();
        for case in case_names(&dir) {
            let Ok((_, expected)) = golden.read_i64(&format!("{case}.generated_ids")) else {
                continue;
            };
            let inputs = scratch.path().join("in.safetensors");
            let outputs = scratch.path().join("out.safetensors");
            write_case_inputs(&golden, &case, &inputs);
            let out = temper(&[
                "generate",
                "--model",
                dir.to_str().unwrap(),
                "--inputs",
                inputs.to_str().unwrap(),
                "--max-new-tokens",
                &expected.len().to_string(),
                "--temperature",
                "0",
                "--out",
                outputs.to_str().unwrap(),
            ]);
            assert!(out.status.success(), "{}", stderr(&out));
            let ours = SafetensorsFile::open(&outputs).unwrap();
            assert_eq!(
                ours.read_i64("generated_ids").unwrap().1,
                expected,
                "{fixture}/{case}"
            );
            let (shape, lps) = ours.read_f32("generated_logprobs").unwrap();
            assert_eq!(shape, vec![1, expected.len()]);
            assert!(lps.iter().all(|&x| x < 0.0 && x.is_finite()));
        }
    }
}

/// tiny-a's weights with a byte-level tokenizer using its special ids, so prompts work.
fn tiny_a_with_tokenizer(max_positions: Option<usize>) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    let src = data("qwen3vl-tiny-a");
    for f in ["model.safetensors", "preprocessor_config.json"] {
        std::fs::copy(src.join(f), dir.path().join(f)).unwrap();
    }
    let mut config: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(src.join("config.json")).unwrap()).unwrap();
    if let Some(max) = max_positions {
        config["text_config"]["max_position_embeddings"] = max.into();
    }
    std::fs::write(dir.path().join("config.json"), config.to_string()).unwrap();
    // tiny-a ids: <|endoftext|> 992, <|im_start|> 993, <|im_end|> 994, vision 1001/1002, pads 1004/1005.
    let ids = [992, 993, 994, 1001, 1002, 1004, 1005];
    let specials: Vec<(&str, u32)> = QWEN_SPECIAL_TOKENS.iter().copied().zip(ids).collect();
    std::fs::write(
        dir.path().join("tokenizer.json"),
        byte_level_tokenizer_json(&specials, &[]),
    )
    .unwrap();
    dir
}

/// `generate --prompt … --out F`: the generated ids and log-probs of the run.
fn prompt_run(model: &str, extra: &[&str], out: &Path) -> (String, Vec<i64>, Vec<f32>) {
    let mut args = vec!["generate", "--model", model, "--out", out.to_str().unwrap()];
    args.extend_from_slice(extra);
    let run = temper(&args);
    assert!(run.status.success(), "{extra:?}: {}", stderr(&run));
    let file = SafetensorsFile::open(out).unwrap();
    let (_, ids) = file.read_i64("generated_ids").unwrap();
    let (_, logprobs) = file.read_f32("generated_logprobs").unwrap();
    (
        String::from_utf8_lossy(&run.stdout).into_owned(),
        ids,
        logprobs,
    )
}

/// The prompt path prints text and, with `--out` (issue 11, defect 12: it was ignored),
/// writes the ids and log-probs. Issue 11, item 19: the image and the video must reach the
/// model — the same prompt without them gives other behaviour log-probs, so a run that
/// dropped `--image` or `--video` fails here.
#[test]
fn generate_from_a_prompt_with_an_image_and_a_video_prints_text() {
    let model = tiny_a_with_tokenizer(None);
    let m = model.path().to_str().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("out.safetensors");
    let image = data("qwen3vl-tiny-a").join("image1_40x100.png");
    let image_arg = image.to_str().unwrap().to_string();
    let question = ["--prompt", "What is shown?", "--max-new-tokens", "5"];
    let (text, ids, with_image) =
        prompt_run(m, &[&question[..], &["--image", &image_arg]].concat(), &out);
    assert!(!text.is_empty());
    assert_eq!(ids.len(), 5);
    let decoded: Vec<u32> = ids.iter().filter(|&&t| t >= 0).map(|&t| t as u32).collect();
    assert!(!decoded.is_empty());
    let (_, _, without_image) = prompt_run(m, &question, &out);
    assert_ne!(with_image, without_image, "--image made no difference");

    // The first clip of tiny-b, as a directory of frames.
    let frames_dir = tempfile::tempdir().unwrap();
    for i in 0..8 {
        let name = format!("video0_frame{i}_48x64.png");
        std::fs::copy(
            data("qwen3vl-tiny-b").join(&name),
            frames_dir.path().join(name),
        )
        .unwrap();
    }
    let frames_arg = frames_dir.path().to_str().unwrap().to_string();
    let sampled = [
        "--prompt",
        "What happens?",
        "--max-new-tokens",
        "3",
        "--temperature",
        "1.0",
        "--group",
        "2",
        "--seed",
        "5",
    ];
    let video = ["--video", frames_arg.as_str(), "--fps", "4"];
    let (text, ids, with_video) = prompt_run(m, &[&sampled[..], &video].concat(), &out);
    assert_eq!(text.matches("--- sample").count(), 2, "{text}");
    assert_eq!(ids.len(), 2 * 3);
    let (again, ids_again, _) = prompt_run(m, &[&sampled[..], &video].concat(), &out);
    assert_eq!((again, ids_again), (text, ids), "same seed, same samples");
    let (_, _, without_video) = prompt_run(m, &sampled, &out);
    assert_ne!(with_video, without_video, "--video made no difference");
}

/// `generate --prompt --tools`: the named built-in tools are offered in the prompt (the same
/// question then gets other behaviour log-probs), an unknown tool is a clear error naming the
/// ones there are.
#[test]
fn generate_offers_the_named_tools_and_refuses_unknown_ones() {
    let model = tiny_a_with_tokenizer(None);
    let m = model.path().to_str().unwrap();
    let scratch = tempfile::tempdir().unwrap();
    let out = scratch.path().join("out.safetensors");
    let question = ["--prompt", "What is 6 * 7?", "--max-new-tokens", "4"];
    let (_, _, plain) = prompt_run(m, &question, &out);
    let (text, _, with_tools) = prompt_run(
        m,
        &[&question[..], &["--tools", "calculator,image_zoom"]].concat(),
        &out,
    );
    assert!(!text.is_empty());
    assert_ne!(plain, with_tools, "--tools did not reach the prompt");
    let unknown = temper(&[
        "generate", "--model", m, "--prompt", "hi", "--tools", "search",
    ]);
    assert_clear_error(
        &unknown,
        &[
            "--tools",
            "no tool named `search`",
            "calculator, image_zoom",
        ],
    );
}

/// Issue 11, defect 9: `--group 100000000` aborted the process (SIGABRT, an allocation of
/// terabytes) and `--max-new-tokens 18446744073709551615` wrapped `seq_len + max_new` and hung.
/// Both are clear errors now, found before anything is allocated.
#[test]
fn absurd_generation_sizes_are_clear_errors() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = data("qwen3vl-tiny-a");
    let golden = SafetensorsFile::open(dir.join("golden.safetensors")).unwrap();
    let inputs = scratch.path().join("in.safetensors");
    write_case_inputs(&golden, "text", &inputs);
    let out = scratch.path().join("out.safetensors");
    let generate = |extra: &[&str]| {
        let mut args = vec![
            "generate",
            "--model",
            dir.to_str().unwrap(),
            "--inputs",
            inputs.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        temper_within(&args, &[], 120)
    };
    assert_clear_error(
        &generate(&["--group", "100000000", "--max-new-tokens", "4"]),
        &["--group 100000000", "GiB", "available"],
    );
    assert_clear_error(
        &generate(&["--group", "18446744073709551615", "--max-new-tokens", "4"]),
        &["--group", "overflows"],
    );
    assert_clear_error(
        &generate(&["--max-new-tokens", "18446744073709551615"]),
        &[
            "max_new_tokens 18446744073709551615",
            "max_position_embeddings 4096",
        ],
    );
    assert!(!out.exists());
}

/// Issue 11, defect 12: clap took `--temperature -1` for an unknown flag; negative values are
/// read and range-checked, and `--stop-token 99999` (outside the 1024-token vocabulary) was
/// accepted silently.
#[test]
fn out_of_range_sampling_flags_are_clear_errors() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = data("qwen3vl-tiny-a");
    let golden = SafetensorsFile::open(dir.join("golden.safetensors")).unwrap();
    let inputs = scratch.path().join("in.safetensors");
    write_case_inputs(&golden, "text", &inputs);
    let out = scratch.path().join("out.safetensors");
    let generate = |extra: &[&str]| {
        let mut args = vec![
            "generate",
            "--model",
            dir.to_str().unwrap(),
            "--inputs",
            inputs.to_str().unwrap(),
            "--out",
            out.to_str().unwrap(),
        ];
        args.extend_from_slice(extra);
        temper(&args)
    };
    assert_clear_error(
        &generate(&["--temperature", "-1"]),
        &["--temperature must be ≥ 0", "-1"],
    );
    assert_clear_error(&generate(&["--temperature", "nan"]), &["--temperature"]);
    assert_clear_error(&generate(&["--top-p", "-0.5"]), &["--top-p", "(0, 1]"]);
    assert_clear_error(&generate(&["--top-p", "1.5"]), &["--top-p", "1.5"]);
    assert_clear_error(
        &generate(&["--stop-token", "99999"]),
        &["--stop-token 99999", "vocabulary", "0..1024"],
    );
    assert!(!out.exists());
}

/// Issue 11, defect 12: write failures said "cannot read …" and named the safetensors crate's
/// temporary file, and `/dev/full` gave no path at all. They say "cannot write" and name the
/// `--out` asked for.
#[test]
fn write_failures_name_the_output_file() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = data("qwen3vl-tiny-a");
    let golden = SafetensorsFile::open(dir.join("golden.safetensors")).unwrap();
    let inputs = scratch.path().join("in.safetensors");
    write_case_inputs(&golden, "text", &inputs);
    let missing_dir = scratch.path().join("no-such-dir").join("out.safetensors");
    let mut targets = vec![missing_dir.to_str().unwrap().to_string()];
    if Path::new("/dev/full").exists() {
        targets.push("/dev/full".into());
    }
    for target in &targets {
        let out = forward(&dir, &inputs, Path::new(target), &[]);
        assert_clear_error(&out, &[&format!("cannot write {target}: ")]);
        let err = stderr(&out);
        assert!(
            !err.contains("cannot read")
                && !err.contains(".tmp-")
                && err.matches("(os error").count() <= 1,
            "{err}"
        );
    }
}

/// Issue 11, defect 12: safetensors outputs were mode 0600 (the temporary file of the
/// `safetensors` crate, renamed) while every other file is `0666 & !umask`.
#[test]
fn safetensors_outputs_get_the_usual_file_mode() {
    use std::os::unix::fs::PermissionsExt;
    let scratch = tempfile::tempdir().unwrap();
    let dir = data("qwen3vl-tiny-a");
    let golden = SafetensorsFile::open(dir.join("golden.safetensors")).unwrap();
    let inputs = scratch.path().join("in.safetensors");
    write_case_inputs(&golden, "text", &inputs);
    let outputs = scratch.path().join("out.safetensors");
    let run = forward(&dir, &inputs, &outputs, &[]);
    assert!(run.status.success(), "{}", stderr(&run));
    let plain = scratch.path().join("plain.txt");
    std::fs::write(&plain, b"x").unwrap();
    let mode = |p: &Path| std::fs::metadata(p).unwrap().permissions().mode() & 0o777;
    assert_eq!(
        format!("{:o}", mode(&outputs)),
        format!("{:o}", mode(&plain)),
        "same mode as any new file of this process's umask"
    );
}

/// Issue 11, defect 12: a NaN weight or input gave all-NaN logits without a word. A warning
/// names the tensor and its file.
#[test]
fn non_finite_weights_and_inputs_are_named_in_a_warning() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = data("qwen3vl-tiny-a");
    let golden = SafetensorsFile::open(dir.join("golden.safetensors")).unwrap();

    // A NaN pixel in the image case's pixel_values.
    let inputs = scratch.path().join("nan_pixels.safetensors");
    write_case_inputs(&golden, "image", &inputs);
    let file = SafetensorsFile::open(&inputs).unwrap();
    let mut tensors: Vec<(String, HostTensor)> = file
        .names()
        .into_iter()
        .map(|n| {
            let t = if n.starts_with("pixel") {
                let (shape, mut v) = file.read_f32(&n).unwrap();
                v[7] = f32::NAN;
                HostTensor::f32(shape, v)
            } else {
                let (shape, v) = file.read_i64(&n).unwrap();
                HostTensor::i64(shape, v)
            };
            (n, t)
        })
        .collect();
    drop(file);
    write_safetensors(&inputs, &tensors, None).unwrap();
    let outputs = scratch.path().join("out.safetensors");
    let run = forward(&dir, &inputs, &outputs, &[]);
    let err = stderr(&run);
    assert!(run.status.success(), "{err}");
    assert!(
        err.contains("`pixel_values`")
            && err.contains("nan_pixels.safetensors")
            && err.contains("NaN"),
        "{err}"
    );

    // A NaN in one weight of a copy of the checkpoint.
    let model = tempfile::tempdir().unwrap();
    std::fs::copy(dir.join("config.json"), model.path().join("config.json")).unwrap();
    let weights = SafetensorsFile::open(dir.join("model.safetensors")).unwrap();
    let poisoned = "model.language_model.norm.weight";
    tensors = weights
        .names()
        .into_iter()
        .map(|n| {
            let (shape, mut v) = weights.read_f32(&n).unwrap();
            if n == poisoned {
                v[0] = f32::NAN;
            }
            (n, HostTensor::f32(shape, v))
        })
        .collect();
    write_safetensors(model.path().join("model.safetensors"), &tensors, None).unwrap();
    let text = scratch.path().join("text.safetensors");
    write_case_inputs(&golden, "text", &text);
    let run = forward(model.path(), &text, &outputs, &[]);
    let err = stderr(&run);
    assert!(run.status.success(), "{err}");
    assert!(err.contains(&format!("`{poisoned}`")), "{err}");
    assert!(err.contains("logits are NaN or infinite"), "{err}");
}

/// Issue 11, defect 12: with `RUST_BACKTRACE=1` exported, anyhow printed a 40-line backtrace
/// for every input error. Errors are one line; backtraces are for panics.
#[test]
fn input_errors_print_no_backtrace_under_rust_backtrace() {
    let run = temper_within(
        &[
            "forward",
            "--model",
            "/nonexistent/model",
            "--inputs",
            "in.safetensors",
            "--out",
            "out.safetensors",
        ],
        &[("RUST_BACKTRACE", "1")],
        60,
    );
    assert_clear_error(&run, &["/nonexistent/model"]);
    let err = stderr(&run);
    assert_eq!(err.trim_end().lines().count(), 1, "{err}");
    assert!(!err.to_lowercase().contains("backtrace"), "{err}");
}

/// `temper convert --model SRC --out DST` plus `extra`.
fn convert(src: &Path, dst: &Path, extra: &[&str]) -> Output {
    let mut args = vec![
        "convert",
        "--model",
        src.to_str().unwrap(),
        "--out",
        dst.to_str().unwrap(),
    ];
    args.extend_from_slice(extra);
    temper(&args)
}

/// The logits `temper forward` writes for the text case of tiny-a's golden inputs.
fn text_logits(model: &Path, scratch: &Path) -> Vec<f32> {
    let golden = SafetensorsFile::open(data("qwen3vl-tiny-a").join("golden.safetensors")).unwrap();
    let inputs = scratch.join("text-in.safetensors");
    write_case_inputs(&golden, "text", &inputs);
    let outputs = scratch.join("text-out.safetensors");
    let run = forward(model, &inputs, &outputs, &[]);
    assert!(
        run.status.success(),
        "{}: {}",
        model.display(),
        stderr(&run)
    );
    SafetensorsFile::open(&outputs)
        .unwrap()
        .read_f32("logits")
        .unwrap()
        .1
}

/// Issue 11, item 19: `temper convert` end to end in CI. f32 is exact (same logits bit for bit);
/// the tokenizer and processor files come along (issue 11, defect 5), so the converted
/// directory answers a prompt with an image as the source does.
#[test]
fn convert_round_trips_and_carries_the_tokenizer() {
    let scratch = tempfile::tempdir().unwrap();
    let src = tiny_a_with_tokenizer(None);
    let dst = scratch.path().join("converted");
    let run = convert(src.path(), &dst, &["--dtype", "f32"]);
    assert!(run.status.success(), "{}", stderr(&run));
    for file in [
        "config.json",
        "model.safetensors",
        "tokenizer.json",
        "preprocessor_config.json",
    ] {
        assert!(
            dst.join(file).is_file(),
            "{file} missing from the converted directory"
        );
    }
    assert_eq!(
        text_logits(&dst, scratch.path()),
        text_logits(src.path(), scratch.path())
    );
    let leftovers: Vec<_> = std::fs::read_dir(scratch.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .filter(|n| n.starts_with('.'))
        .collect();
    assert!(leftovers.is_empty(), "staging left behind: {leftovers:?}");

    let image = data("qwen3vl-tiny-a").join("image1_40x100.png");
    let prompt = [
        "--prompt",
        "What is shown?",
        "--max-new-tokens",
        "4",
        "--image",
        image.to_str().unwrap(),
    ];
    let a = prompt_run(
        src.path().to_str().unwrap(),
        &prompt,
        &scratch.path().join("a.safetensors"),
    );
    let b = prompt_run(
        dst.to_str().unwrap(),
        &prompt,
        &scratch.path().join("b.safetensors"),
    );
    assert_eq!(a, b);

    // bf16 halves the weights and stays close.
    let half = scratch.path().join("bf16");
    let run = convert(src.path(), &half, &["--dtype", "bf16"]);
    assert!(run.status.success(), "{}", stderr(&run));
    let size = |d: &Path| {
        std::fs::metadata(d.join("model.safetensors"))
            .unwrap()
            .len()
    };
    assert!(
        (size(&half) as f64) < 0.55 * size(&dst) as f64,
        "{} vs {}",
        size(&half),
        size(&dst)
    );
    let diff = text_logits(&half, scratch.path())
        .iter()
        .zip(text_logits(&dst, scratch.path()))
        .map(|(a, b)| (a - b).abs())
        .fold(0.0f32, f32::max);
    assert!(diff > 0.0 && diff < 0.1, "bf16 logits differ by {diff}");

    // In place would replace the only copy: refused.
    let run = convert(&dst, &dst, &[]);
    assert_clear_error(&run, &["is the --model directory"]);
}

/// Issue 11, defect 5: converting into a directory that held another checkpoint kept its
/// stale shards and index, and the old `model.safetensors.index.json` was loaded instead of the
/// new single file. The old checkpoint's files go; the directory loads the new weights.
#[test]
fn convert_into_a_used_directory_replaces_the_old_checkpoint() {
    let scratch = tempfile::tempdir().unwrap();
    let dst = scratch.path().join("out");
    // First tiny-b, one shard per tensor (index + shards), plus a file of the user's.
    let run = convert(
        &data("qwen3vl-tiny-b"),
        &dst,
        &["--dtype", "f32", "--max-shard-mib", "0"],
    );
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(dst.join("model.safetensors.index.json").is_file());
    std::fs::write(dst.join("notes.txt"), "mine").unwrap();

    // Then tiny-a as a single file into the same directory.
    let src = tiny_a_with_tokenizer(None);
    let run = convert(src.path(), &dst, &["--dtype", "f32"]);
    assert!(run.status.success(), "{}", stderr(&run));
    let mut names: Vec<String> = std::fs::read_dir(&dst)
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(
        names,
        [
            "config.json",
            "model.safetensors",
            "notes.txt",
            "preprocessor_config.json",
            "tokenizer.json"
        ]
    );
    assert_eq!(
        text_logits(&dst, scratch.path()),
        text_logits(src.path(), scratch.path())
    );

    // And back to sharded: the single file goes.
    let run = convert(
        &data("qwen3vl-tiny-b"),
        &dst,
        &["--dtype", "f32", "--max-shard-mib", "0"],
    );
    assert!(run.status.success(), "{}", stderr(&run));
    assert!(!dst.join("model.safetensors").exists());
    assert!(
        !dst.join("tokenizer.json").exists(),
        "tiny-b has no tokenizer; the old one is stale"
    );
    assert_eq!(
        std::fs::read_to_string(dst.join("notes.txt")).unwrap(),
        "mine"
    );
    assert_eq!(
        text_logits(&dst, scratch.path()),
        text_logits(&data("qwen3vl-tiny-b"), scratch.path())
    );
}

#[test]
fn bad_inputs_are_clear_errors() {
    let scratch = tempfile::tempdir().unwrap();
    let dir = data("qwen3vl-tiny-a");
    let m = dir.to_str().unwrap();
    let golden = SafetensorsFile::open(dir.join("golden.safetensors")).unwrap();
    let out_path = scratch.path().join("out.safetensors");
    let forward = |inputs: &Path| {
        temper(&[
            "forward",
            "--model",
            m,
            "--inputs",
            inputs.to_str().unwrap(),
            "--out",
            out_path.to_str().unwrap(),
        ])
    };
    let write = |name: &str, tensors: Vec<(String, HostTensor)>| {
        let path = scratch.path().join(name);
        write_safetensors(&path, &tensors, None).unwrap();
        path
    };
    let ids = |case: &str| {
        let (s, v) = golden.read_i64(&format!("{case}.input_ids")).unwrap();
        HostTensor::i64(s, v)
    };

    // Missing tensor.
    let path = write(
        "no_ids.safetensors",
        vec![(
            "attention_mask".into(),
            HostTensor::i64(vec![1, 2], vec![1, 1]),
        )],
    );
    assert_clear_error(&forward(&path), &["input_ids", "missing"]);

    // Wrong dtype.
    let path = write(
        "float_ids.safetensors",
        vec![(
            "input_ids".into(),
            HostTensor::f32(vec![1, 2], vec![1.0, 2.0]),
        )],
    );
    assert_clear_error(&forward(&path), &["input_ids", "integer"]);

    // Wrong shape.
    let path = write(
        "mask_shape.safetensors",
        vec![ids("text"), HostTensor::i64(vec![1, 3], vec![1, 1, 1])]
            .into_iter()
            .zip(["input_ids", "attention_mask"])
            .map(|(t, n)| (n.to_string(), t))
            .collect(),
    );
    assert_clear_error(&forward(&path), &["attention_mask", "shape"]);

    // image_grid_thw that disagrees with the prompt (and with pixel_values).
    let (pshape, pv) = golden.read_f32("image.pixel_values").unwrap();
    let path = write(
        "bad_grid.safetensors",
        vec![
            ("input_ids".into(), ids("image")),
            (
                "pixel_values".into(),
                HostTensor::f32(
                    vec![2 * pshape[0], pshape[1]],
                    [pv.clone(), pv.clone()].concat(),
                ),
            ),
            (
                "image_grid_thw".into(),
                HostTensor::i64(vec![1, 3], vec![1, 4, 8]),
            ),
        ],
    );
    assert_clear_error(&forward(&path), &["image_grid_thw", "8 <|image_pad|>"]);
    let path = write(
        "bad_rows.safetensors",
        vec![
            ("input_ids".into(), ids("image")),
            (
                "pixel_values".into(),
                HostTensor::f32(vec![8, 1536], pv[..8 * 1536].to_vec()),
            ),
            (
                "image_grid_thw".into(),
                HostTensor::i64(vec![1, 3], vec![1, 4, 4]),
            ),
        ],
    );
    assert_clear_error(&forward(&path), &["image_grid_thw", "16 patches", "8 rows"]);

    // Token id outside the vocabulary.
    let path = write(
        "oov.safetensors",
        vec![(
            "input_ids".into(),
            HostTensor::i64(vec![1, 2], vec![5, 5000]),
        )],
    );
    assert_clear_error(&forward(&path), &["input_ids", "5000", "vocabulary"]);

    // Truncated and corrupt inputs files.
    let good = write("good.safetensors", vec![("input_ids".into(), ids("text"))]);
    let bytes = std::fs::read(&good).unwrap();
    let truncated = scratch.path().join("truncated.safetensors");
    std::fs::write(&truncated, &bytes[..bytes.len() - 5]).unwrap();
    assert_clear_error(
        &forward(&truncated),
        &["truncated.safetensors", "not a valid safetensors"],
    );
    let garbage = scratch.path().join("garbage.safetensors");
    std::fs::write(&garbage, b"\x10\x00garbage").unwrap();
    assert_clear_error(&forward(&garbage), &["garbage.safetensors"]);

    // Missing model directory.
    let out = temper(&[
        "forward",
        "--model",
        "/nonexistent/model",
        "--inputs",
        good.to_str().unwrap(),
        "--out",
        "x",
    ]);
    assert_clear_error(&out, &["/nonexistent/model"]);

    // Unreadable image, over-long prompt (prompt path).
    let model = tiny_a_with_tokenizer(Some(40));
    let mdir = model.path().to_str().unwrap();
    let corrupt = scratch.path().join("corrupt.png");
    std::fs::write(&corrupt, b"\x89PNG\r\n\x1a\nnot really").unwrap();
    let out = temper(&[
        "generate",
        "--model",
        mdir,
        "--prompt",
        "hi",
        "--image",
        corrupt.to_str().unwrap(),
    ]);
    assert_clear_error(&out, &["corrupt.png"]);
    let long = "word ".repeat(20);
    let out = temper(&[
        "generate",
        "--model",
        mdir,
        "--prompt",
        &long,
        "--max-new-tokens",
        "2",
    ]);
    assert_clear_error(&out, &["40"]);

    // CUDA requested from a CPU-only build.
    if !cfg!(feature = "cuda") {
        let out = temper(&[
            "forward",
            "--model",
            m,
            "--inputs",
            good.to_str().unwrap(),
            "--out",
            "x",
            "--device",
            "cuda",
        ]);
        assert_clear_error(&out, &["--features cuda"]);
    }
}

#[test]
fn shipped_tiny_tokenizer_is_the_generated_one() {
    // model/tests/data/qwen3vl-tiny-a/tokenizer.json is written by Temper (not part of the HF
    // fixture) so the README's demo command can take text prompts; it must stay in sync.
    let ids = [992, 993, 994, 1001, 1002, 1004, 1005];
    let specials: Vec<(&str, u32)> = QWEN_SPECIAL_TOKENS.iter().copied().zip(ids).collect();
    let generated = byte_level_tokenizer_json(&specials, &[]);
    let path = data("qwen3vl-tiny-a").join("tokenizer.json");
    if std::env::var_os("TEMPER_BLESS").is_some() {
        std::fs::write(&path, &generated).unwrap();
    }
    let shipped = std::fs::read_to_string(&path).expect("run with TEMPER_BLESS=1 to write it");
    assert_eq!(shipped, generated);
}
