//! Shared helpers for tests against HF golden fixtures (`tests/data/<fixture>/`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use burn::prelude::*;
use temper_model::Batch;
use temper_model::backend::Cpu;
use temper_model::inputs::read_batch;
use temper_model::safetensors_io::SafetensorsFile;

pub type B = Cpu;

/// `TEMPER_REPO_ROOT` overrides the checkout location when a prebuilt test binary runs on
/// another machine (the GPU check in tools/device/).
pub fn data_dir() -> PathBuf {
    match std::env::var_os("TEMPER_REPO_ROOT") {
        Some(root) => PathBuf::from(root).join("model/tests/data"),
        None => Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data"),
    }
}

/// Fixtures present in the repo (each has `golden.safetensors` + `cases.json`).
pub fn fixtures() -> Vec<PathBuf> {
    let mut found: Vec<PathBuf> = std::fs::read_dir(data_dir())
        .unwrap()
        .filter_map(|e| e.ok().map(|e| e.path()))
        .filter(|p| p.join("golden.safetensors").is_file() && p.join("cases.json").is_file())
        .collect();
    found.sort();
    found
}

pub struct Golden {
    pub dir: PathBuf,
    pub file: SafetensorsFile,
    pub cases: serde_json::Value,
}

impl Golden {
    pub fn open(dir: &Path) -> Self {
        let cases = serde_json::from_str(&std::fs::read_to_string(dir.join("cases.json")).unwrap())
            .unwrap();
        Self {
            dir: dir.to_path_buf(),
            file: SafetensorsFile::open(dir.join("golden.safetensors")).unwrap(),
            cases,
        }
    }

    pub fn name(&self) -> String {
        self.dir.file_name().unwrap().to_string_lossy().into_owned()
    }

    pub fn case_names(&self) -> Vec<String> {
        self.cases["cases"]
            .as_object()
            .unwrap()
            .keys()
            .cloned()
            .collect()
    }

    pub fn has(&self, key: &str) -> bool {
        self.file.contains(key)
    }

    pub fn f32(&self, key: &str) -> (Vec<usize>, Vec<f32>) {
        self.file.read_f32(key).unwrap_or_else(|e| panic!("{e}"))
    }

    pub fn i64(&self, key: &str) -> (Vec<usize>, Vec<i64>) {
        self.file.read_i64(key).unwrap_or_else(|e| panic!("{e}"))
    }

    /// The case's inputs as a model batch.
    pub fn batch(&self, case: &str, device: &burn::tensor::Device<B>) -> Batch<B> {
        self.batch_on::<B>(case, device)
    }

    /// The case's inputs as a batch on any backend.
    pub fn batch_on<B: Backend>(&self, case: &str, device: &burn::tensor::Device<B>) -> Batch<B> {
        read_batch(&self.file, &format!("{case}."), device).unwrap_or_else(|e| panic!("{e}"))
    }
}

/// Max |a − b| over entries where `keep` is true.
pub fn max_abs_diff(a: &[f32], b: &[f32], keep: impl Fn(usize) -> bool) -> f32 {
    assert_eq!(a.len(), b.len(), "length mismatch");
    a.iter()
        .zip(b)
        .enumerate()
        .filter(|(i, _)| keep(*i))
        .map(|(_, (x, y))| (x - y).abs())
        .fold(0.0, f32::max)
}
