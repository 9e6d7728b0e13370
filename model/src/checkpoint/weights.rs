//! Where parameters come from and go to, under their HF names.
//!
//! Every module is built by `load(&mut Loader, prefix)` and written by `save(&mut Saver, prefix)`,
//! so one table of names serves both directions. A [`TensorSource`] is either a checkpoint on
//! disk (single file or sharded with `model.safetensors.index.json`, f32/bf16/f16) or a seeded
//! random initialiser (tiny models, benchmarks). [`Saver`] collects HF-named host tensors that
//! [`save_checkpoint`] writes back, sharded and in the requested dtype.

use std::collections::{BTreeMap, HashMap};
use std::hash::{Hash, Hasher};
use std::path::{Path, PathBuf};

use burn::module::Param;
use burn::nn::Linear;
use burn::prelude::*;
use rand::{Rng, SeedableRng};
use rand_chacha::ChaCha8Rng;

use crate::error::{ModelError, Result};
use crate::output_file::write_file;
use crate::safetensors_io::{HostData, HostTensor, SafetensorsFile, write_safetensors};

/// How a parameter is initialised when it is not read from a file.
#[derive(Debug, Clone, Copy)]
pub enum Init {
    Normal(f64),
    Ones,
    Zeros,
}

/// Supplier of named parameters.
pub trait TensorSource {
    /// Host f32 values of `name`, which must have exactly `shape`.
    fn load(&mut self, name: &str, shape: &[usize], init: Init) -> Result<Vec<f32>>;
    /// Shape of `name` if the source has it (`None` for random sources).
    fn shape_of(&self, name: &str) -> Option<Vec<usize>>;
    /// Whether the source can supply `name` (random sources supply everything).
    fn contains(&self, name: &str) -> bool;
}

/// A HF checkpoint directory (or a single `.safetensors` file).
pub struct Checkpoint {
    root: PathBuf,
    files: Vec<SafetensorsFile>,
    /// tensor name → index into `files`.
    index: HashMap<String, usize>,
}

impl Checkpoint {
    /// Opens `path`: a directory with `model.safetensors.index.json` (sharded) or
    /// `model.safetensors`, or a `.safetensors` file.
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let root = path.as_ref().to_path_buf();
        if root.join("model.safetensors.index.json").is_file()
            && root.join("model.safetensors").is_file()
        {
            return Err(ModelError::AmbiguousCheckpoint { path: root });
        }
        let shard_paths = if root.is_file() {
            vec![root.clone()]
        } else if root.join(INDEX_FILE).is_file() {
            let index_path = root.join(INDEX_FILE);
            let text =
                std::fs::read_to_string(&index_path).map_err(|e| ModelError::io(&index_path, e))?;
            let index: ShardIndex =
                serde_json::from_str(&text).map_err(|e| ModelError::CorruptCheckpoint {
                    path: index_path.clone(),
                    message: format!("bad shard index: {e}"),
                })?;
            let unique: std::collections::BTreeSet<&String> = index.weight_map.values().collect();
            unique.into_iter().map(|f| root.join(f)).collect()
        } else if root.join("model.safetensors").is_file() {
            vec![root.join("model.safetensors")]
        } else {
            return Err(ModelError::io(
                &root,
                std::io::Error::new(
                    std::io::ErrorKind::NotFound,
                    "no model.safetensors or model.safetensors.index.json here",
                ),
            ));
        };
        let files = shard_paths
            .iter()
            .map(SafetensorsFile::open)
            .collect::<Result<Vec<_>>>()?;
        let mut index = HashMap::new();
        for (i, file) in files.iter().enumerate() {
            for name in file.names() {
                index.insert(name, i);
            }
        }
        Ok(Self { root, files, index })
    }

    pub fn root(&self) -> &Path {
        &self.root
    }

    pub fn names(&self) -> impl Iterator<Item = &String> {
        self.index.keys()
    }

    fn file_of(&self, name: &str) -> Result<&SafetensorsFile> {
        self.index
            .get(name)
            .map(|&i| &self.files[i])
            .ok_or_else(|| ModelError::MissingTensor {
                path: self.root.clone(),
                name: name.to_string(),
            })
    }
}

#[derive(serde::Deserialize)]
struct ShardIndex {
    weight_map: BTreeMap<String, String>,
}

impl TensorSource for Checkpoint {
    fn load(&mut self, name: &str, shape: &[usize], _init: Init) -> Result<Vec<f32>> {
        let file = self.file_of(name)?;
        let actual = file.shape(name)?;
        if actual != shape {
            return Err(ModelError::TensorShape {
                path: file.path().to_path_buf(),
                name: name.to_string(),
                actual,
                expected: shape.to_vec(),
            });
        }
        Ok(file.read_f32(name)?.1)
    }

    fn shape_of(&self, name: &str) -> Option<Vec<usize>> {
        self.file_of(name).ok().and_then(|f| f.shape(name).ok())
    }

    fn contains(&self, name: &str) -> bool {
        self.index.contains_key(name)
    }
}

/// Seeded random parameters: `Normal(std)` for weights, ones/zeros for norms and biases.
/// Each tensor's stream is keyed by its name, so values do not depend on load order.
pub struct RandomInit {
    pub seed: u64,
    /// Standard deviation of every normally initialised tensor (HF's `initializer_range`);
    /// `None` keeps the loader's default (0.02).
    pub std: Option<f64>,
}

impl TensorSource for RandomInit {
    fn load(&mut self, name: &str, shape: &[usize], init: Init) -> Result<Vec<f32>> {
        let n: usize = shape.iter().product();
        Ok(match init {
            Init::Ones => vec![1.0; n],
            Init::Zeros => vec![0.0; n],
            Init::Normal(default_std) => {
                let std = self.std.unwrap_or(default_std);
                let mut hasher = std::collections::hash_map::DefaultHasher::new();
                name.hash(&mut hasher);
                let mut rng = ChaCha8Rng::seed_from_u64(self.seed ^ hasher.finish());
                (0..n)
                    .map(|_| (standard_normal(&mut rng) * std) as f32)
                    .collect()
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

/// Box–Muller; one sample per call keeps the stream simple and reproducible.
fn standard_normal(rng: &mut impl Rng) -> f64 {
    let u1: f64 = rng.random::<f64>().max(f64::MIN_POSITIVE);
    let u2: f64 = rng.random::<f64>();
    (-2.0 * u1.ln()).sqrt() * (std::f64::consts::TAU * u2).cos()
}

/// Builds burn parameters from a [`TensorSource`] on one device.
pub struct Loader<'a, B: Backend> {
    pub source: &'a mut dyn TensorSource,
    pub device: B::Device,
}

impl<B: Backend> Loader<'_, B> {
    /// A parameter stored as-is.
    pub fn param<const D: usize>(
        &mut self,
        name: &str,
        shape: [usize; D],
        init: Init,
    ) -> Result<Param<Tensor<B, D>>> {
        let values = self.source.load(name, &shape, init)?;
        let data = TensorData::new(values, shape);
        Ok(Param::from_tensor(Tensor::from_data(data, &self.device)))
    }

    /// A HF `nn.Linear` (`weight` is `[out, in]` on disk, `[in, out]` in burn).
    pub fn linear(
        &mut self,
        prefix: &str,
        d_in: usize,
        d_out: usize,
        bias: bool,
    ) -> Result<Linear<B>> {
        self.linear_shaped(prefix, &[d_out, d_in], d_in, d_out, bias)
    }

    /// A linear map stored on disk with another shape of the same `[out, in...]` layout
    /// (the Conv3d patch embedding is `[Dv, C, Tp, P, P]`).
    pub fn linear_shaped(
        &mut self,
        prefix: &str,
        disk_shape: &[usize],
        d_in: usize,
        d_out: usize,
        bias: bool,
    ) -> Result<Linear<B>> {
        let name = format!("{prefix}.weight");
        let values = self.source.load(&name, disk_shape, Init::Normal(0.02))?;
        let transposed = transpose(&values, d_out, d_in);
        let weight = Tensor::from_data(TensorData::new(transposed, [d_in, d_out]), &self.device);
        let bias = if bias {
            Some(self.param(&format!("{prefix}.bias"), [d_out], Init::Zeros)?)
        } else {
            None
        };
        Ok(Linear {
            weight: Param::from_tensor(weight),
            bias,
        })
    }

    pub fn contains(&self, name: &str) -> bool {
        self.source.contains(name)
    }

    pub fn shape_of(&self, name: &str) -> Option<Vec<usize>> {
        self.source.shape_of(name)
    }
}

/// Row-major `[rows, cols]` → `[cols, rows]`.
pub(crate) fn transpose(values: &[f32], rows: usize, cols: usize) -> Vec<f32> {
    let mut out = vec![0.0; values.len()];
    for r in 0..rows {
        for c in 0..cols {
            out[c * rows + r] = values[r * cols + c];
        }
    }
    out
}

/// On-disk float type of a saved checkpoint.
#[derive(Debug, Clone, Copy, PartialEq, Eq, serde::Serialize, serde::Deserialize)]
#[serde(rename_all = "lowercase")]
pub enum SaveDtype {
    F32,
    Bf16,
    F16,
}

/// Collects HF-named host tensors from a model.
#[derive(Default)]
pub struct Saver {
    pub tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
}

impl Saver {
    pub fn param<B: Backend, const D: usize>(&mut self, name: &str, param: &Param<Tensor<B, D>>) {
        self.tensor(name, param.val());
    }

    pub fn tensor<B: Backend, const D: usize>(&mut self, name: &str, tensor: Tensor<B, D>) {
        let shape = tensor.dims().to_vec();
        let values = host_f32(tensor);
        self.tensors.push((name.to_string(), shape, values));
    }

    pub fn linear<B: Backend>(&mut self, prefix: &str, linear: &Linear<B>) {
        let [d_in, d_out] = linear.weight.val().dims();
        self.linear_shaped(prefix, linear, &[d_out, d_in]);
    }

    /// A linear map written with the on-disk shape `disk_shape` (`[out, in...]`).
    pub fn linear_shaped<B: Backend>(
        &mut self,
        prefix: &str,
        linear: &Linear<B>,
        disk_shape: &[usize],
    ) {
        let [d_in, d_out] = linear.weight.val().dims();
        let values = host_f32(linear.weight.val());
        self.tensors.push((
            format!("{prefix}.weight"),
            disk_shape.to_vec(),
            transpose(&values, d_in, d_out),
        ));
        if let Some(bias) = &linear.bias {
            self.param(&format!("{prefix}.bias"), bias);
        }
    }
}

/// Copies a tensor to the host as f32.
pub fn host_f32<B: Backend, const D: usize>(tensor: Tensor<B, D>) -> Vec<f32> {
    tensor
        .into_data()
        .convert::<f32>()
        .into_vec::<f32>()
        .expect("converted to f32")
}

/// Writes HF-named tensors as `model.safetensors`, or as shards of at most `max_shard_bytes`
/// with `model.safetensors.index.json` when they do not fit in one.
pub fn save_checkpoint(
    dir: &Path,
    tensors: Vec<(String, Vec<usize>, Vec<f32>)>,
    dtype: SaveDtype,
    max_shard_bytes: usize,
) -> Result<()> {
    std::fs::create_dir_all(dir).map_err(|e| ModelError::write(dir, e))?;
    let host: Vec<(String, HostTensor)> = tensors
        .into_iter()
        .map(|(name, shape, values)| {
            let data = match dtype {
                SaveDtype::F32 => HostData::F32(values),
                SaveDtype::Bf16 => {
                    HostData::Bf16(values.into_iter().map(half::bf16::from_f32).collect())
                }
                SaveDtype::F16 => {
                    HostData::F16(values.into_iter().map(half::f16::from_f32).collect())
                }
            };
            (name, HostTensor { shape, data })
        })
        .collect();
    let metadata = Some(HashMap::from([("format".to_string(), "pt".to_string())]));
    let total: usize = host.iter().map(|(_, t)| t.byte_len()).sum();
    if total <= max_shard_bytes {
        write_safetensors(dir.join("model.safetensors"), &host, metadata)?;
        return remove_stale_weights(dir, &["model.safetensors".to_string()]);
    }
    // Greedy packing in name order, like HF's `save_pretrained`.
    let mut shards: Vec<Vec<(String, HostTensor)>> = vec![Vec::new()];
    let mut current = 0usize;
    let mut sorted = host;
    sorted.sort_by(|a, b| a.0.cmp(&b.0));
    for (name, tensor) in sorted {
        let size = tensor.byte_len();
        if current > 0 && current + size > max_shard_bytes {
            shards.push(Vec::new());
            current = 0;
        }
        current += size;
        shards.last_mut().expect("one shard").push((name, tensor));
    }
    let count = shards.len();
    let mut weight_map = BTreeMap::new();
    let mut written = vec![INDEX_FILE.to_string()];
    for (i, shard) in shards.iter().enumerate() {
        let file = format!("model-{:05}-of-{count:05}.safetensors", i + 1);
        for (name, _) in shard {
            weight_map.insert(name.clone(), file.clone());
        }
        write_safetensors(dir.join(&file), shard, metadata.clone())?;
        written.push(file);
    }
    let index = serde_json::json!({
        "metadata": { "total_size": total },
        "weight_map": weight_map,
    });
    write_file(
        dir.join(INDEX_FILE),
        serde_json::to_string_pretty(&index)
            .expect("json")
            .as_bytes(),
    )?;
    remove_stale_weights(dir, &written)
}

const INDEX_FILE: &str = "model.safetensors.index.json";

/// The weight files of a checkpoint in `dir`: `model.safetensors`, the shard index and every
/// `model-NNNNN-of-NNNNN.safetensors` shard (also shards the index does not name). Sorted.
pub fn checkpoint_weight_files(dir: &Path) -> std::io::Result<Vec<PathBuf>> {
    let mut found = Vec::new();
    for entry in std::fs::read_dir(dir)? {
        let entry = entry?;
        let name = entry.file_name();
        if is_weight_file(&name.to_string_lossy()) {
            found.push(entry.path());
        }
    }
    found.sort();
    Ok(found)
}

fn is_weight_file(name: &str) -> bool {
    if name == "model.safetensors" || name == INDEX_FILE {
        return true;
    }
    // model-00001-of-00003.safetensors
    let Some(middle) = name
        .strip_prefix("model-")
        .and_then(|n| n.strip_suffix(".safetensors"))
    else {
        return false;
    };
    match middle.split_once("-of-") {
        Some((i, n)) => {
            !i.is_empty()
                && !n.is_empty()
                && i.bytes().all(|b| b.is_ascii_digit())
                && n.bytes().all(|b| b.is_ascii_digit())
        }
        None => false,
    }
}

/// Removes the weight files of an earlier checkpoint in `dir` that this save did not write
/// (`keep`, file names): a stale index or stale shards would otherwise be loaded instead of,
/// or mixed with, the new weights.
fn remove_stale_weights(dir: &Path, keep: &[String]) -> Result<()> {
    let stale = checkpoint_weight_files(dir).map_err(|e| ModelError::io(dir, e))?;
    for path in stale {
        let name = path.file_name().map(|n| n.to_string_lossy().into_owned());
        if name.is_some_and(|n| !keep.contains(&n)) {
            tracing::info!(file = %path.display(), "removing a weight file of the previous checkpoint");
            std::fs::remove_file(&path).map_err(|e| ModelError::write(&path, e))?;
        }
    }
    Ok(())
}
