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
