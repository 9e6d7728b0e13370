//! Image/video preprocessing against HF transformers 5.24 + torchvision 0.29.2 reference
//! vectors: the `qwen3vl-tiny-a` fixture and `tests/data/preprocess/` (made by
//! `tools/golden/preprocess_reference.py`).

use std::path::{Path, PathBuf};

use image::RgbImage;
use safetensors::{Dtype, SafeTensors};
use serde_json::Value;
use temper_model::preprocess::{
    PreprocessError, Resample, VisionPreprocessConfig, format_f64_1dp, format_timestamp,
    image_target_size, load_image, load_image_over_white, load_video_frames_dir,
    merged_token_count, preprocess_image, preprocess_images, preprocess_sampled_video,
    preprocess_video, resize_for_model, resize_rgb, sample_frame_indices, smart_resize,
    smart_resize_video, video_timestamps,
};

/// Pixel values must match the reference to this max-abs difference.
const PIXEL_TOL: f32 = 1e-6;

fn data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data")
}

fn pre_dir() -> PathBuf {
    data_dir().join("preprocess")
}

fn read_json(path: &Path) -> Value {
    let text = std::fs::read_to_string(path)
        .unwrap_or_else(|e| panic!("cannot read {}: {e}", path.display()));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("bad json {}: {e}", path.display()))
}

/// Reads a safetensors tensor as (shape, f32 values); integer tensors are converted.
fn tensor_f32(st: &SafeTensors<'_>, name: &str) -> (Vec<usize>, Vec<f32>) {
    let t = st
        .tensor(name)
        .unwrap_or_else(|e| panic!("tensor {name} missing: {e}"));
    let data = t.data();
    let values = match t.dtype() {
        Dtype::F32 => data
            .chunks_exact(4)
            .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
            .collect(),
        Dtype::I64 => data
            .chunks_exact(8)
            .map(|b| i64::from_le_bytes(b.try_into().unwrap()) as f32)
            .collect(),
        other => panic!("tensor {name}: unexpected dtype {other:?}"),
    };
    (t.shape().to_vec(), values)
}

fn tensor_u8(st: &SafeTensors<'_>, name: &str) -> Vec<u8> {
    let t = st.tensor(name).unwrap();
    assert_eq!(t.dtype(), Dtype::U8, "{name}");
    t.data().to_vec()
}

fn max_abs_diff(a: &[f32], b: &[f32]) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .map(|(x, y)| (x - y).abs())
        .fold(0.0, f32::max)
}

/// Asserts `got` matches `want` to [`PIXEL_TOL`] and, beyond that, bit for bit: the f32
/// arithmetic reproduces torch's operation order exactly, so any difference is a bug.
fn assert_pixels(what: &str, got: &[f32], want: &[f32]) {
    let diff = max_abs_diff(got, want);
    assert!(diff < PIXEL_TOL, "{what}: max abs diff {diff}");
    let differing = got
        .iter()
        .zip(want)
        .filter(|(a, b)| a.to_bits() != b.to_bits())
        .count();
    assert_eq!(
        differing, 0,
        "{what}: {differing} values differ in the last bits (max {diff})"
    );
}

fn as_usize_vec(v: &Value) -> Vec<usize> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|x| x.as_u64().unwrap() as usize)
        .collect()
}

fn as_grid(v: &Value) -> [usize; 3] {
    as_usize_vec(v).try_into().unwrap()
}

fn f64_from_hex(bits: &str) -> f64 {
    f64::from_bits(u64::from_str_radix(bits, 16).unwrap())
}

fn config_from_value(v: &Value) -> VisionPreprocessConfig {
    VisionPreprocessConfig::from_json_str(&v.to_string()).unwrap()
}

// ---------------------------------------------------------------- fixture qwen3vl-tiny-a

fn tiny_a() -> (VisionPreprocessConfig, Vec<u8>) {
    let dir = data_dir().join("qwen3vl-tiny-a");
    let cfg = VisionPreprocessConfig::from_file(dir.join("preprocessor_config.json")).unwrap();
    let golden = std::fs::read(dir.join("golden.safetensors")).unwrap();
    (cfg, golden)
}

#[test]
fn fixture_single_image_matches_processor() {
    let (cfg, golden) = tiny_a();
    let st = SafeTensors::deserialize(&golden).unwrap();
    let img = load_image(data_dir().join("qwen3vl-tiny-a/image0_64x64.png")).unwrap();
    let out = preprocess_image(&img, &cfg).unwrap();

    let (shape, want) = tensor_f32(&st, "image.pixel_values");
    assert_eq!(shape, vec![16, 1536]);
    let (_, grid) = tensor_f32(&st, "image.image_grid_thw");
    assert_eq!(out.grid_thw.map(|x| x as f32).to_vec(), grid);
    assert_pixels("image0", &out.pixel_values, &want);
    assert_eq!(out.num_patches(), 16);
    assert_eq!(out.num_merged_tokens(cfg.merge_size), 4);
}

#[test]
fn fixture_batch_matches_processor() {
    let (cfg, golden) = tiny_a();
    let st = SafeTensors::deserialize(&golden).unwrap();
    let dir = data_dir().join("qwen3vl-tiny-a");
    let images = [
        load_image(dir.join("image0_64x64.png")).unwrap(),
        load_image(dir.join("image1_40x100.png")).unwrap(),
    ];
    assert_eq!(
        image_target_size(40, 100, &cfg).unwrap(),
        (32, 96),
        "the processor resizes image1 to 32x96"
    );
    let out = preprocess_images(&images, &cfg).unwrap();

    let (shape, want) = tensor_f32(&st, "batch.pixel_values");
    assert_eq!(shape, vec![28, 1536]);
    let (_, grid) = tensor_f32(&st, "batch.image_grid_thw");
    let got: Vec<f32> = out.grid_thw.iter().flatten().map(|&x| x as f32).collect();
    assert_eq!(got, grid);
    assert_pixels("batch", &out.pixel_values, &want);
}

// ---------------------------------------------------------------- generated image cases

#[test]
fn image_cases_match_processor() {
    let dir = pre_dir();
    let cases = read_json(&dir.join("image_cases.json"));
    let golden = std::fs::read(dir.join("golden.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&golden).unwrap();
    let mut full = 0;
    for case in cases["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let cfg = config_from_value(&case["preprocessor_config"]);
        let img = load_image(dir.join(case["input_png"].as_str().unwrap())).unwrap();
        let want_hw = as_usize_vec(&case["resized_hw"]);

        // Resize: bit-exact with torchvision.
        let resized = resize_for_model(&img, &cfg).unwrap();
        assert_eq!(
            vec![resized.height() as usize, resized.width() as usize],
            want_hw,
            "{name}: size"
        );
        let want_resized = load_image(dir.join(case["resized_png"].as_str().unwrap())).unwrap();
        let wrong = resized
            .as_raw()
            .iter()
            .zip(want_resized.as_raw())
            .filter(|(a, b)| a != b)
            .count();
        assert_eq!(
            wrong, 0,
            "{name}: {wrong} resized bytes differ from torchvision"
        );

        let out = preprocess_image(&img, &cfg).unwrap();
        assert_eq!(out.grid_thw, as_grid(&case["grid_thw"]), "{name}: grid");
        let shape = as_usize_vec(&case["pixel_values_shape"]);
        assert_eq!(out.pixel_values.len(), shape[0] * shape[1], "{name}: size");
        assert_eq!(shape[1], cfg.row_len());
        if let Some(tensor) = case["pixel_values"].as_str() {
            let (_, want) = tensor_f32(&st, tensor);
            assert_pixels(name, &out.pixel_values, &want);
            full += 1;
        }
        let sum: f64 = out.pixel_values.iter().map(|&v| f64::from(v)).sum();
        let weighted: f64 = out
            .pixel_values
            .iter()
            .enumerate()
            .map(|(i, &v)| f64::from(v) * ((i % 997) + 1) as f64)
            .sum();
        let ck = &case["pixel_values_checksum"];
        for (what, got, want) in [
            ("sum", sum, ck["sum"].as_f64().unwrap()),
            ("weighted", weighted, ck["weighted"].as_f64().unwrap()),
        ] {
            assert!(
                (got - want).abs() <= 1e-9 * want.abs().max(1.0),
                "{name}: checksum {what} {got} != {want}"
            );
        }
    }
    assert_eq!(full, 3, "three cases carry full tensors");
}

#[test]
fn same_size_resize_is_identity() {
    let img = RgbImage::from_fn(7, 5, |x, y| image::Rgb([x as u8 * 30, y as u8 * 50, 7]));
    for mode in [Resample::Bicubic, Resample::Bilinear] {
        assert_eq!(resize_rgb(&img, 5, 7, mode), img);
    }
}

// ---------------------------------------------------------------- resize sweep

fn check_sweep(dir: &Path) -> usize {
    let index = read_json(&dir.join("sweep.json"));
    let bytes = std::fs::read(dir.join("sweep.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&bytes).unwrap();
    let inputs = tensor_u8(&st, "sweep.input");
    let outputs = tensor_u8(&st, "sweep.output");
    let mut failures = Vec::new();
    let cases = index.as_array().unwrap();
    for c in cases {
        let get = |k: &str| c[k].as_u64().unwrap() as usize;
        let (h, w, oh, ow) = (get("h"), get("w"), get("out_h"), get("out_w"));
        let (io, oo) = (get("input_offset"), get("output_offset"));
        let mode = match c["mode"].as_str().unwrap() {
            "bicubic" => Resample::Bicubic,
            "bilinear" => Resample::Bilinear,
            other => panic!("mode {other}"),
        };
        let input =
            RgbImage::from_raw(w as u32, h as u32, inputs[io..io + h * w * 3].to_vec()).unwrap();
        let got = resize_rgb(&input, oh, ow, mode);
        let want = &outputs[oo..oo + oh * ow * 3];
        let bad = got
            .as_raw()
            .iter()
            .zip(want)
            .filter(|(a, b)| a != b)
            .count();
        if bad > 0 {
            failures.push(format!("{h}x{w} -> {oh}x{ow} {mode:?}: {bad} bytes differ"));
        }
    }
    assert!(
        failures.is_empty(),
        "{} of {} resize cases differ from torchvision:\n{}",
        failures.len(),
        cases.len(),
        failures.join("\n")
    );
    cases.len()
}

#[test]
fn resize_sweep_is_bit_exact() {
    assert!(check_sweep(&pre_dir()) >= 40);
    // Optional larger sweep: see tools/golden/preprocess_reference.py --sweep-only.
    if let Ok(extra) = std::env::var("TEMPER_PREPROCESS_SWEEP") {
        let n = check_sweep(Path::new(&extra));
        eprintln!("extra resize sweep: {n} cases bit-exact");
    }
}

// ---------------------------------------------------------------- videos

#[test]
fn video_cases_match_processor() {
    let dir = pre_dir();
    let cases = read_json(&dir.join("video_cases.json"));
    let golden = std::fs::read(dir.join("golden.safetensors")).unwrap();
    let st = SafeTensors::deserialize(&golden).unwrap();
    for case in cases["cases"].as_array().unwrap() {
        let name = case["name"].as_str().unwrap();
        let cfg = config_from_value(&case["preprocessor_config"])
            .with_video_json_str(&case["video_preprocessor_config"].to_string())
            .unwrap();
        let frames = load_video_frames_dir(dir.join(case["frames_dir"].as_str().unwrap())).unwrap();
        assert_eq!(frames.len() as u64, case["total_frames"].as_u64().unwrap());
        let fps = case["source_fps"].as_f64().unwrap();
        let out = preprocess_video(&frames, Some(fps), &cfg).unwrap();

        assert_eq!(
            out.frame_indices,
            as_usize_vec(&case["frame_indices"]),
            "{name}: sampled indices"
        );
        assert_eq!(out.grid_thw, as_grid(&case["grid_thw"]), "{name}: grid");
        let (shape, want) = tensor_f32(&st, case["pixel_values"].as_str().unwrap());
        assert_eq!(shape[1], cfg.row_len());
        assert_pixels(name, &out.pixel_values, &want);

        let want_ts: Vec<u64> = case["timestamps_bits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| f64_from_hex(b.as_str().unwrap()).to_bits())
            .collect();
        let got_ts: Vec<u64> = out.timestamps_seconds.iter().map(|t| t.to_bits()).collect();
        assert_eq!(got_ts, want_ts, "{name}: timestamps");
        let want_str: Vec<String> = case["timestamp_strings"]
            .as_array()
            .unwrap()
            .iter()
            .map(|s| s.as_str().unwrap().to_string())
            .collect();
        assert_eq!(out.timestamp_strings(), want_str, "{name}: timestamp text");
        assert_eq!(out.grid_thw[0], out.timestamps_seconds.len());

        // Pre-sampled path gives the same result.
        let sampled: Vec<RgbImage> = out
            .frame_indices
            .iter()
            .map(|&i| frames[i].clone())
            .collect();
        let again = preprocess_sampled_video(&sampled, &out.frame_indices, fps, &cfg).unwrap();
        assert_eq!(again, out, "{name}: pre-sampled path");
        // Unknown fps means 24, as in HF.
        if fps == 24.0 {
            assert_eq!(preprocess_video(&frames, None, &cfg).unwrap(), out);
        }
    }
}

// ---------------------------------------------------------------- scalar rules

#[test]
fn smart_resize_matches_python() {
    let cases = read_json(&pre_dir().join("smart_resize.json"));
    let mut n = 0;
    for c in cases["image"].as_array().unwrap() {
        let g = |k: &str| c[k].as_u64().unwrap() as usize;
        let got = smart_resize(
            g("h"),
            g("w"),
            g("factor"),
            g("min_pixels"),
            g("max_pixels"),
        );
        match (&c["expect"], got) {
            (Value::String(_), Err(PreprocessError::AspectRatio { .. })) => {}
            (Value::Array(_), Ok((h, w))) => {
                assert_eq!(vec![h, w], as_usize_vec(&c["expect"]), "{c}")
            }
            (want, got) => panic!("{c}: want {want}, got {got:?}"),
        }
        n += 1;
    }
    for c in cases["video"].as_array().unwrap() {
        let g = |k: &str| c[k].as_u64().unwrap() as usize;
        let got = smart_resize_video(
            g("num_frames"),
            g("h"),
            g("w"),
            g("temporal_factor"),
            g("factor"),
            g("min_pixels"),
            g("max_pixels"),
        );
        match (&c["expect"], got) {
            (
                Value::String(_),
                Err(PreprocessError::AspectRatio { .. } | PreprocessError::TooFewFrames { .. }),
            ) => {}
            (Value::Array(_), Ok((h, w))) => {
                assert_eq!(vec![h, w], as_usize_vec(&c["expect"]), "{c}")
            }
            (want, got) => panic!("{c}: want {want}, got {got:?}"),
        }
        n += 1;
    }
    assert!(n > 200);
    // Half-to-even: 80/32 = 2.5 -> 2, 48/32 = 1.5 -> 2.
    assert_eq!(smart_resize(80, 48, 32, 1, 1 << 30).unwrap(), (64, 64));
}

#[test]
fn frame_sampling_matches_numpy() {
    let cases = read_json(&pre_dir().join("frame_sampling.json"));
    for c in cases.as_array().unwrap() {
        let got = sample_frame_indices(
            c["total_frames"].as_u64().unwrap() as usize,
            c["source_fps"].as_f64().unwrap(),
            c["target_fps"].as_f64().unwrap(),
            c["min_frames"].as_u64().unwrap() as usize,
            c["max_frames"].as_u64().unwrap() as usize,
        );
        assert_eq!(got, as_usize_vec(&c["indices"]), "{c}");
    }
    // 9 frames at 3 fps sampled at 2 fps: 6 frames, round(linspace(0, 8, 6)) half-to-even.
    assert_eq!(
        sample_frame_indices(9, 3.0, 2.0, 4, 768),
        vec![0, 2, 3, 5, 6, 8]
    );
}

#[test]
fn format_matches_python() {
    let cases = read_json(&pre_dir().join("format.json"));
    for c in cases["format"].as_array().unwrap() {
        let x = f64_from_hex(c["bits"].as_str().unwrap());
        assert_eq!(format_f64_1dp(x), c["formatted"].as_str().unwrap(), "{x:e}");
    }
    for c in cases["timestamps"].as_array().unwrap() {
        let ts = video_timestamps(
            &as_usize_vec(&c["indices"]),
            c["fps"].as_f64().unwrap(),
            c["temporal_patch_size"].as_u64().unwrap() as usize,
        );
        let want: Vec<u64> = c["timestamps_bits"]
            .as_array()
            .unwrap()
            .iter()
            .map(|b| f64_from_hex(b.as_str().unwrap()).to_bits())
            .collect();
        assert_eq!(
            ts.iter().map(|t| t.to_bits()).collect::<Vec<_>>(),
            want,
            "{c}"
        );
        let text: Vec<String> = ts.iter().map(|&t| format_timestamp(t)).collect();
        assert_eq!(text, as_strings(&c["strings"]), "{c}");
    }
    assert_eq!(format_timestamp(0.25), "<0.2 seconds>");
    assert_eq!(format_timestamp(1.5625), "<1.6 seconds>");
    assert_eq!(format_timestamp(0.35), "<0.3 seconds>");
}

fn as_strings(v: &Value) -> Vec<String> {
    v.as_array()
        .unwrap()
        .iter()
        .map(|s| s.as_str().unwrap().to_string())
        .collect()
}

#[test]
fn merged_token_counts() {
    assert_eq!(merged_token_count([1, 4, 4], 2), 4);
    assert_eq!(merged_token_count([1, 2, 6], 2), 3);
    assert_eq!(merged_token_count([3, 2, 4], 2), 6);
}

// ---------------------------------------------------------------- config

#[test]
fn config_defaults_and_hf_keys() {
    let d = VisionPreprocessConfig::from_json_str("{}").unwrap();
    assert_eq!(d, VisionPreprocessConfig::default());
    assert_eq!((d.min_pixels, d.max_pixels), (65_536, 16_777_216));
    assert_eq!((d.video.min_pixels, d.video.max_pixels), (4096, 25_165_824));
    assert_eq!(
        (d.video.min_frames, d.video.max_frames, d.video.fps),
        (4, 768, 2.0)
    );

    // Unknown keys are ignored; top-level min/max_pixels override `size`; scalar mean is
    // broadcast.
    let cfg = VisionPreprocessConfig::from_json_str(
        r#"{"size": {"shortest_edge": 10, "longest_edge": 20}, "max_pixels": 99,
            "image_mean": 0.25, "processor_class": "Qwen3VLProcessor", "anything": [1, 2]}"#,
    )
    .unwrap();
    assert_eq!((cfg.min_pixels, cfg.max_pixels), (10, 99));
    assert_eq!(cfg.image_mean, [0.25; 3]);

    // serde path works too.
    let via_serde: VisionPreprocessConfig = serde_json::from_str(r#"{"patch_size": 14}"#).unwrap();
    assert_eq!(via_serde.patch_size, 14);
    assert_eq!(via_serde.row_len(), 3 * 2 * 14 * 14);

    let v = d
        .clone()
        .with_video_json_str(r#"{"size": {"shortest_edge": 1, "longest_edge": 2}, "fps": 1}"#)
        .unwrap();
    assert_eq!(
        (v.video.min_pixels, v.video.max_pixels, v.video.fps),
        (1, 2, 1.0)
    );
}

#[test]
fn config_errors_are_reported() {
    for (json, needle) in [
        (r#"{"image_std": [0.5, 0.0, 0.5]}"#, "image_std"),
        (
            r#"{"size": {"height": 224, "width": 224}}"#,
            "shortest_edge",
        ),
        (r#"{"patch_size": 0}"#, "patch_size"),
        (r#"{"resample": 1}"#, "resample"),
        (r#"{"image_mean": [0.5, 0.5]}"#, "image_mean"),
        ("{not json", "preprocessor_config"),
    ] {
        let err = VisionPreprocessConfig::from_json_str(json).unwrap_err();
        let msg = err.to_string();
        assert!(msg.contains(needle), "{json}: {msg}");
    }
    let err = VisionPreprocessConfig::default()
        .with_video_json_str(r#"{"patch_size": 14}"#)
        .unwrap_err();
    assert!(err.to_string().contains("patch_size"), "{err}");
    let missing = Path::new("/nonexistent/preprocessor_config.json");
    let err = VisionPreprocessConfig::from_file(missing).unwrap_err();
    assert!(
        err.to_string()
            .contains("/nonexistent/preprocessor_config.json"),
        "{err}"
    );
}

// ---------------------------------------------------------------- errors

fn assert_lowercase_message(err: &PreprocessError) {
    let msg = err.to_string();
    assert!(
        msg.chars().next().is_some_and(|c| !c.is_uppercase()),
        "message should start lowercase: {msg}"
    );
}

#[test]
fn missing_image_file_is_an_error() {
    let path = Path::new("/definitely/not/here/picture.png");
    let err = load_image(path).unwrap_err();
    assert!(
        matches!(err, PreprocessError::ImageNotFound { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("/definitely/not/here/picture.png"),
        "{err}"
    );
    assert_lowercase_message(&err);
}

#[test]
fn corrupt_image_files_are_errors() {
    let tmp = tempfile::tempdir().unwrap();
    let good = std::fs::read(pre_dir().join("images/a_37x53.png")).unwrap();
    let truncated = tmp.path().join("truncated.png");
    std::fs::write(&truncated, &good[..good.len() / 2]).unwrap();
    let garbage = tmp.path().join("garbage.png");
    std::fs::write(&garbage, b"this is not an image at all").unwrap();
    let empty = tmp.path().join("empty.jpg");
    std::fs::write(&empty, b"").unwrap();
    for path in [&truncated, &garbage, &empty] {
        let err = load_image(path).unwrap_err();
        assert!(
            matches!(err, PreprocessError::ImageDecode { .. }),
            "{err:?}"
        );
        assert!(err.to_string().contains(&*path.to_string_lossy()), "{err}");
        assert_lowercase_message(&err);
    }
}

#[test]
fn extreme_aspect_ratio_is_an_error() {
    let cfg = VisionPreprocessConfig::default();
    let thin = RgbImage::new(201, 1);
    let err = preprocess_image(&thin, &cfg).unwrap_err();
    assert!(
        matches!(err, PreprocessError::AspectRatio { .. }),
        "{err:?}"
    );
    assert!(err.to_string().contains("200"), "{err}");
    assert_lowercase_message(&err);
    // Exactly 200 is allowed.
    assert!(smart_resize(1, 200, 32, 1024, 1 << 24).is_ok());
    let err = preprocess_image(&RgbImage::new(0, 0), &cfg).unwrap_err();
    assert!(matches!(err, PreprocessError::EmptyImage { .. }), "{err:?}");
}

#[test]
fn bad_videos_are_errors() {
    let cfg = VisionPreprocessConfig::default();
    let tmp = tempfile::tempdir().unwrap();
    std::fs::write(tmp.path().join("notes.txt"), "no frames here").unwrap();
    let err = load_video_frames_dir(tmp.path()).unwrap_err();
    assert!(
        matches!(err, PreprocessError::EmptyVideoDir { .. }),
        "{err:?}"
    );
    assert!(
        err.to_string().contains(&*tmp.path().to_string_lossy()),
        "{err}"
    );
    assert_lowercase_message(&err);
    let err = load_video_frames_dir(tmp.path().join("missing")).unwrap_err();
    assert!(matches!(err, PreprocessError::VideoDirIo { .. }), "{err:?}");

    let frame = RgbImage::new(40, 30);
    let err = preprocess_video(std::slice::from_ref(&frame), Some(2.0), &cfg).unwrap_err();
    assert!(
        matches!(
            err,
            PreprocessError::TooFewFrames {
                frames: 1,
                required: 2
            }
        ),
        "{err:?}"
    );
    assert_lowercase_message(&err);
    let err = preprocess_video(&[], Some(2.0), &cfg).unwrap_err();
    assert!(
        matches!(err, PreprocessError::TooFewFrames { .. }),
        "{err:?}"
    );

    let mixed = [RgbImage::new(40, 30), RgbImage::new(40, 31)];
    let err = preprocess_sampled_video(&mixed, &[0, 1], 2.0, &cfg).unwrap_err();
    assert!(
        matches!(err, PreprocessError::FrameSizeMismatch { index: 1, .. }),
        "{err:?}"
    );
    let err = preprocess_sampled_video(&mixed[..1], &[0, 1], 2.0, &cfg).unwrap_err();
    assert!(
        matches!(err, PreprocessError::FrameIndexCount { .. }),
        "{err:?}"
    );
    for fps in [0.0, -1.0, f64::NAN] {
        let err = preprocess_video(&mixed, Some(fps), &cfg).unwrap_err();
        assert!(matches!(err, PreprocessError::InvalidFps { .. }), "{err:?}");
    }
}

// ---------------------------------------------------------------- colour modes

#[test]
fn colour_modes_convert_like_hf() {
    let dir = pre_dir();
    let cases = read_json(&dir.join("modes.json"));
    let mut report = Vec::new();
    for c in cases.as_array().unwrap() {
        let file = c["file"].as_str().unwrap();
        // PNG decoding is exact; JPEG decoders (image crate vs PIL's libjpeg-turbo) differ by
        // a few levels (IDCT and chroma-upsampling rounding).
        let allowed = if file.ends_with(".jpg") { 8 } else { 0 };
        for (how, got, expect) in [
            ("load_image", load_image(dir.join(file)), "load_png"),
            (
                "load_image_over_white",
                load_image_over_white(dir.join(file)),
                "convert_png",
            ),
        ] {
            let got = got.unwrap();
            let want = load_image(dir.join(c[expect].as_str().unwrap())).unwrap();
            assert_eq!(got.dimensions(), want.dimensions(), "{file} {how}");
            let diffs: Vec<i32> = got
                .as_raw()
                .iter()
                .zip(want.as_raw())
                .map(|(a, b)| (i32::from(*a) - i32::from(*b)).abs())
                .collect();
            let max = diffs.iter().copied().max().unwrap_or(0);
            let n = diffs.iter().filter(|d| **d != 0).count();
            report.push(format!(
                "{file} ({}) {how}: max diff {max}, {n} bytes differ",
                c["pil_mode"]
            ));
            assert!(max <= allowed, "{file} {how}: max diff {max} > {allowed}");
        }
    }
    assert!(report.len() >= 2 * 17);
    eprintln!("{}", report.join("\n"));
}
