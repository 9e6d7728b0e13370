//! Shared helpers for tests against HF golden fixtures (`tests/data/<fixture>/`).
#![allow(dead_code)]

use std::path::{Path, PathBuf};

use burn::prelude::*;
use temper_model::backend::Cpu;
use temper_model::safetensors_io::SafetensorsFile;
use temper_model::{Batch, VisualInput};

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
        let (shape, ids) = self.i64(&format!("{case}.input_ids"));
        let (_, mask) = self.i64(&format!("{case}.attention_mask"));
        let (b, l) = (shape[0], shape[1]);
        let rows = |v: &[i64]| -> Vec<Vec<i64>> { v.chunks(l).map(<[i64]>::to_vec).collect() };
        let visual = |pixels: &str, grid: &str| -> Option<VisualInput<B>> {
            if !self.has(&format!("{case}.{pixels}")) {
                return None;
            }
            let (pshape, pv) = self.f32(&format!("{case}.{pixels}"));
            let (_, g) = self.i64(&format!("{case}.{grid}"));
            Some(VisualInput {
                pixel_values: Tensor::from_data(
                    TensorData::new(pv, [pshape[0], pshape[1]]),
                    device,
                ),
                grid_thw: g
                    .chunks(3)
                    .map(|c| [c[0] as usize, c[1] as usize, c[2] as usize])
                    .collect(),
            })
        };
        let batch = Batch {
            input_ids: rows(&ids)
                .into_iter()
                .map(|r| r.into_iter().map(|x| x as u32).collect())
                .collect(),
            attention_mask: rows(&mask)
                .into_iter()
                .map(|r| r.into_iter().map(|x| x != 0).collect())
                .collect(),
            images: visual("pixel_values", "image_grid_thw"),
            videos: visual("pixel_values_videos", "video_grid_thw"),
            segment_ids: None,
        };
        assert_eq!(batch.input_ids.len(), b);
        batch
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
