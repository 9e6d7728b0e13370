//! Checkpoint I/O: HF names both ways (load → save → load is exact), sharded and bf16/f16 files,
//! both config layouts, and clear errors for missing, mis-shaped, mis-typed or corrupt tensors.

mod common;

use std::path::Path;

use common::{B, data_dir};
use temper_model::safetensors_io::{HostTensor, SafetensorsFile, write_safetensors};
use temper_model::weights::SaveDtype;
use temper_model::{ModelError, Qwen3Vl, Qwen3VlConfig};

fn tiny_a() -> std::path::PathBuf {
    data_dir().join("qwen3vl-tiny-a")
}

/// Copies config + weights of a fixture into a scratch dir.
fn scratch_copy(src: &Path) -> tempfile::TempDir {
    let dir = tempfile::tempdir().unwrap();
    for file in ["config.json", "model.safetensors"] {
        std::fs::copy(src.join(file), dir.path().join(file)).unwrap();
    }
    dir
}

fn sorted(mut t: Vec<(String, Vec<usize>, Vec<f32>)>) -> Vec<(String, Vec<usize>, Vec<f32>)> {
    t.sort_by(|a, b| a.0.cmp(&b.0));
    t
}

#[test]
fn load_save_load_is_exact_and_keeps_hf_names() {
    let device = Default::default();
    let model = Qwen3Vl::<B>::load(tiny_a(), &device).unwrap();
    let original = SafetensorsFile::open(tiny_a().join("model.safetensors")).unwrap();
    let saved = sorted(model.hf_tensors());
    let names: Vec<&String> = saved.iter().map(|t| &t.0).collect();
    assert_eq!(
        names,
        original.names().iter().collect::<Vec<_>>(),
        "same HF tensor names"
    );
    for (name, shape, values) in &saved {
        let (oshape, ovalues) = original.read_f32(name).unwrap();
        assert_eq!(shape, &oshape, "{name}");
        assert_eq!(
            values, &ovalues,
            "{name}: values must round-trip bit for bit"
        );
    }

    let dir = tempfile::tempdir().unwrap();
    model.save(dir.path(), SaveDtype::F32, usize::MAX).unwrap();
    let reloaded = Qwen3Vl::<B>::load(dir.path(), &device).unwrap();
    assert_eq!(sorted(reloaded.hf_tensors()), saved);
    assert_eq!(reloaded.config, model.config);
}

#[test]
fn sharded_bf16_and_f16_checkpoints_load() {
    let device = Default::default();
    let model = Qwen3Vl::<B>::load(tiny_a(), &device).unwrap();
    let reference = sorted(model.hf_tensors());
    for (dtype, tol) in [(SaveDtype::Bf16, 1e-2f32), (SaveDtype::F16, 1e-3)] {
        let dir = tempfile::tempdir().unwrap();
        model.save(dir.path(), dtype, 200_000).unwrap();
        let index = dir.path().join("model.safetensors.index.json");
        assert!(index.is_file(), "{dtype:?}: expected a sharded checkpoint");
        let shards = std::fs::read_dir(dir.path())
            .unwrap()
            .filter(|e| {
                e.as_ref()
                    .unwrap()
                    .file_name()
                    .to_string_lossy()
                    .starts_with("model-")
            })
            .count();
        assert!(shards > 1, "{dtype:?}: {shards} shards");
        let reloaded = sorted(
            Qwen3Vl::<B>::load(dir.path(), &device)
                .unwrap()
                .hf_tensors(),
        );
        for ((name, _, a), (_, _, b)) in reference.iter().zip(&reloaded) {
            let diff = a
                .iter()
                .zip(b)
                .map(|(x, y)| (x - y).abs() / x.abs().max(1.0))
                .fold(0.0, f32::max);
            assert!(diff < tol, "{dtype:?} {name}: relative diff {diff}");
        }
        // bf16 → load → save bf16 → load is exact (no double rounding).
        let dir2 = tempfile::tempdir().unwrap();
        let reloaded_model = Qwen3Vl::<B>::load(dir.path(), &device).unwrap();
        reloaded_model.save(dir2.path(), dtype, usize::MAX).unwrap();
        let again = sorted(
            Qwen3Vl::<B>::load(dir2.path(), &device)
                .unwrap()
                .hf_tensors(),
        );
        assert_eq!(
            again, reloaded,
            "{dtype:?}: second round trip must be exact"
        );
    }
}

#[test]
fn hub_and_transformers5_config_layouts_agree() {
    let read = |f: &str| Qwen3VlConfig::from_file(tiny_a().join(f)).unwrap();
    let (v5, hub) = (read("config.json"), read("config.hub_style.json"));
    assert_eq!(v5.text_config.rope_theta(), hub.text_config.rope_theta());
    assert_eq!(v5.text_config.rope_axes(), hub.text_config.rope_axes());
    assert_eq!(v5.text_config.mrope_section(), [4, 2, 2]);
    assert_eq!(
        v5.vision_config.rope_theta(),
        hub.vision_config.rope_theta()
    );
    assert!(!hub.tie_word_embeddings);
}

fn load_err(dir: &Path) -> ModelError {
    Qwen3Vl::<B>::load(dir, &Default::default()).expect_err("load must fail")
}

/// Rewrites the fixture's weights through `edit`.
fn with_edited_weights(edit: impl FnOnce(&mut Vec<(String, HostTensor)>)) -> tempfile::TempDir {
    let dir = scratch_copy(&tiny_a());
    let path = dir.path().join("model.safetensors");
    let file = SafetensorsFile::open(&path).unwrap();
    let mut tensors: Vec<(String, HostTensor)> = file
        .names()
        .into_iter()
        .map(|n| {
            let (shape, values) = file.read_f32(&n).unwrap();
            (n, HostTensor::f32(shape, values))
        })
        .collect();
    drop(file);
    edit(&mut tensors);
    write_safetensors(&path, &tensors, None).unwrap();
    dir
}

#[test]
fn bad_checkpoints_are_clear_errors() {
    let missing = "model.language_model.layers.1.self_attn.k_norm.weight";
    let dir = with_edited_weights(|t| t.retain(|(n, _)| n != missing));
    let err = load_err(dir.path());
    assert!(matches!(err, ModelError::MissingTensor { .. }), "{err}");
    assert!(err.to_string().contains(missing), "{err}");

    let dir = with_edited_weights(|t| {
        let entry = t
            .iter_mut()
            .find(|(n, _)| n == "model.visual.merger.norm.bias")
            .unwrap();
        entry.1 = HostTensor::f32(vec![31], vec![0.0; 31]);
    });
    let err = load_err(dir.path());
    assert!(matches!(err, ModelError::TensorShape { .. }), "{err}");
    assert!(
        err.to_string().contains("[31]") && err.to_string().contains("[32]"),
        "{err}"
    );

    let dir = with_edited_weights(|t| {
        let entry = t.iter_mut().find(|(n, _)| n == "lm_head.weight").unwrap();
        entry.1 = HostTensor::i64(entry.1.shape.clone(), vec![0; 1024 * 64]);
    });
    let err = load_err(dir.path());
    assert!(matches!(err, ModelError::TensorDtype { .. }), "{err}");
    assert!(
        err.to_string().contains("lm_head.weight") && err.to_string().contains("I64"),
        "{err}"
    );

    let dir = scratch_copy(&tiny_a());
    let path = dir.path().join("model.safetensors");
    let bytes = std::fs::read(&path).unwrap();
    std::fs::write(&path, &bytes[..bytes.len() / 2]).unwrap();
    let err = load_err(dir.path());
    assert!(matches!(err, ModelError::CorruptCheckpoint { .. }), "{err}");
    assert!(err.to_string().contains("model.safetensors"), "{err}");

    std::fs::write(&path, b"this is not a safetensors file at all").unwrap();
    assert!(matches!(
        load_err(dir.path()),
        ModelError::CorruptCheckpoint { .. }
    ));

    std::fs::remove_file(&path).unwrap();
    let err = load_err(dir.path());
    assert!(err.to_string().contains("no model.safetensors"), "{err}");

    std::fs::write(dir.path().join("config.json"), r#"{"text_config": {}}"#).unwrap();
    let err = load_err(dir.path());
    assert!(matches!(err, ModelError::Config { .. }), "{err}");
    assert!(err.to_string().contains("config.json"), "{err}");
}

fn tiny_moe() -> std::path::PathBuf {
    data_dir().join("qwen3vl-tiny-moe")
}

/// Issue 11, item 19: MoE save → load in CI. The experts keep the hub layout and their HF names;
/// load → save → load is bit-exact and the config keeps the MoE fields.
#[test]
fn moe_save_load_is_exact() {
    let device = Default::default();
    let model = Qwen3Vl::<B>::load(tiny_moe(), &device).unwrap();
    assert!(model.config.text_config.is_moe());
    let original = SafetensorsFile::open(tiny_moe().join("model.safetensors")).unwrap();
    let saved = sorted(model.hf_tensors());
    let names: Vec<&String> = saved.iter().map(|t| &t.0).collect();
    assert_eq!(names, original.names().iter().collect::<Vec<_>>());
    for (name, shape, values) in &saved {
        let (oshape, ovalues) = original.read_f32(name).unwrap();
        assert_eq!((shape, values), (&oshape, &ovalues), "{name}");
    }
    let dir = tempfile::tempdir().unwrap();
    model.save(dir.path(), SaveDtype::F32, 300_000).unwrap();
    assert!(dir.path().join("model.safetensors.index.json").is_file());
    let reloaded = Qwen3Vl::<B>::load(dir.path(), &device).unwrap();
    assert_eq!(sorted(reloaded.hf_tensors()), saved);
    assert_eq!(reloaded.config, model.config);
}

/// Issue 11, item 19: the expert layout transformers 5 writes (`gate_up_proj` [E, 2I, D],
/// `down_proj` [E, D, I], the transpose of the hub's) loads to the same parameters.
#[test]
fn transformers5_expert_layout_loads_the_same_moe() {
    let device = Default::default();
    let hub = Qwen3Vl::<B>::load(tiny_moe(), &device).unwrap();
    let file = SafetensorsFile::open(tiny_moe().join("model.safetensors")).unwrap();
    let mut transposed = 0;
    let tensors: Vec<(String, HostTensor)> = file
        .names()
        .into_iter()
        .map(|n| {
            let (shape, values) = file.read_f32(&n).unwrap();
            if n.ends_with("experts.gate_up_proj") || n.ends_with("experts.down_proj") {
                // [E, a, b] -> [E, b, a]
                let (e, a, b) = (shape[0], shape[1], shape[2]);
                let mut out = vec![0.0; values.len()];
                for x in 0..e {
                    for i in 0..a {
                        for j in 0..b {
                            out[x * a * b + j * a + i] = values[x * a * b + i * b + j];
                        }
                    }
                }
                transposed += 1;
                return (n, HostTensor::f32(vec![e, b, a], out));
            }
            (n, HostTensor::f32(shape, values))
        })
        .collect();
    assert!(transposed >= 6, "{transposed} expert tensors");
    let dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        tiny_moe().join("config.json"),
        dir.path().join("config.json"),
    )
    .unwrap();
    write_safetensors(dir.path().join("model.safetensors"), &tensors, None).unwrap();
    let v5 = Qwen3Vl::<B>::load(dir.path(), &device).unwrap();
    assert_eq!(sorted(v5.hf_tensors()), sorted(hub.hf_tensors()));
}

/// Issue 11, defect 5: a directory with both a single `model.safetensors` and a shard index
/// (a checkpoint saved over another) loaded the index's stale shards silently. It is refused,
/// naming the directory; and saving into a used directory removes the other layout's files.
#[test]
fn a_directory_mixing_two_checkpoints_is_refused_and_save_cleans_up() {
    let device = Default::default();
    let model = Qwen3Vl::<B>::load(tiny_a(), &device).unwrap();
    let dir = tempfile::tempdir().unwrap();
    model.save(dir.path(), SaveDtype::F32, 200_000).unwrap();
    std::fs::copy(
        tiny_a().join("model.safetensors"),
        dir.path().join("model.safetensors"),
    )
    .unwrap();
    let err = load_err(dir.path());
    assert!(
        matches!(err, ModelError::AmbiguousCheckpoint { .. }),
        "{err}"
    );
    let message = err.to_string();
    assert!(
        message.contains(&dir.path().display().to_string())
            && message.contains("model.safetensors.index.json"),
        "{message}"
    );

    // Saving a single file over the sharded one removes the index and every shard ...
    std::fs::remove_file(dir.path().join("model.safetensors")).unwrap();
    model.save(dir.path(), SaveDtype::F32, usize::MAX).unwrap();
    let mut names: Vec<String> = std::fs::read_dir(dir.path())
        .unwrap()
        .map(|e| e.unwrap().file_name().to_string_lossy().into_owned())
        .collect();
    names.sort();
    assert_eq!(names, ["config.json", "model.safetensors"]);
    // ... and a sharded save over a single file removes it.
    model.save(dir.path(), SaveDtype::Bf16, 200_000).unwrap();
    assert!(!dir.path().join("model.safetensors").exists());
    let reloaded = Qwen3Vl::<B>::load(dir.path(), &device).unwrap();
    assert_eq!(reloaded.config.text_config, model.config.text_config);
}
