//! Reading and writing safetensors files on the host: memory-mapped, validated, with every error
//! naming the file (and tensor) at fault. Used for checkpoints, CLI inputs/outputs and fixtures.

use std::borrow::Cow;
use std::collections::HashMap;
use std::fs::File;
use std::io::Write;
use std::path::{Path, PathBuf};

use memmap2::Mmap;
use safetensors::tensor::{Dtype, Metadata, SafeTensors, TensorInfo};

use crate::error::{ModelError, Result};
use crate::output_file::OutputFile;

/// One memory-mapped safetensors file whose header has been validated.
pub struct SafetensorsFile {
    path: PathBuf,
    mmap: Mmap,
    data_start: usize,
    metadata: Metadata,
}

/// A tensor held on the host in one of the dtypes Temper reads and writes.
#[derive(Debug, Clone, PartialEq)]
pub enum HostData {
    F32(Vec<f32>),
    Bf16(Vec<half::bf16>),
    F16(Vec<half::f16>),
    I64(Vec<i64>),
}

/// A named host tensor ready to be written.
#[derive(Debug, Clone, PartialEq)]
pub struct HostTensor {
    pub shape: Vec<usize>,
    pub data: HostData,
}

impl SafetensorsFile {
    /// Maps `path` and validates its header (offsets, sizes, the file length).
    pub fn open(path: impl AsRef<Path>) -> Result<Self> {
        let path = path.as_ref().to_path_buf();
        let file = File::open(&path).map_err(|e| ModelError::io(&path, e))?;
        // SAFETY: the file is opened read-only; a concurrent writer truncating it is the one
        // hazard of mmap, as with every safetensors reader.
        let mmap = unsafe { Mmap::map(&file) }.map_err(|e| ModelError::io(&path, e))?;
        let (header_len, metadata) =
            SafeTensors::read_metadata(&mmap).map_err(|e| ModelError::CorruptCheckpoint {
                path: path.clone(),
                message: e.to_string(),
            })?;
        Ok(Self {
            path,
            mmap,
            data_start: 8 + header_len,
            metadata,
        })
    }

    pub fn path(&self) -> &Path {
        &self.path
    }

    /// Tensor names, sorted.
    pub fn names(&self) -> Vec<String> {
        let mut names: Vec<String> = self.metadata.tensors().into_keys().collect();
        names.sort();
        names
    }

    pub fn contains(&self, name: &str) -> bool {
        self.metadata.info(name).is_some()
    }

    fn info(&self, name: &str) -> Result<&TensorInfo> {
        self.metadata
            .info(name)
            .ok_or_else(|| ModelError::MissingTensor {
                path: self.path.clone(),
                name: name.to_string(),
            })
    }

    /// Shape of tensor `name`.
    pub fn shape(&self, name: &str) -> Result<Vec<usize>> {
        Ok(self.info(name)?.shape.clone())
    }

    /// Dtype of tensor `name`, as safetensors spells it (`F32`, `BF16`, ...).
    pub fn dtype(&self, name: &str) -> Result<String> {
        Ok(format!("{:?}", self.info(name)?.dtype))
    }

    fn bytes(&self, info: &TensorInfo) -> &[u8] {
        let (start, end) = info.data_offsets;
        &self.mmap[self.data_start + start..self.data_start + end]
    }

    /// Reads a floating-point tensor (F32, BF16, F16 or F64) as f32.
    ///
    /// Non-finite values (NaN, ±inf) are read as they are, with a warning naming the file and
    /// the tensor: a NaN weight or pixel otherwise surfaces only as all-NaN logits.
    pub fn read_f32(&self, name: &str) -> Result<(Vec<usize>, Vec<f32>)> {
        let info = self.info(name)?;
        let bytes = self.bytes(info);
        let values: Vec<f32> = match info.dtype {
            Dtype::F32 => bytes
                .chunks_exact(4)
                .map(|b| f32::from_le_bytes([b[0], b[1], b[2], b[3]]))
                .collect(),
            Dtype::BF16 => bytes
                .chunks_exact(2)
                .map(|b| half::bf16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::F16 => bytes
                .chunks_exact(2)
                .map(|b| half::f16::from_le_bytes([b[0], b[1]]).to_f32())
                .collect(),
            Dtype::F64 => bytes
                .chunks_exact(8)
                .map(|b| f64::from_le_bytes(b.try_into().expect("chunk of 8")) as f32)
                .collect(),
            other => {
                return Err(ModelError::TensorDtype {
                    path: self.path.clone(),
                    name: name.to_string(),
                    actual: format!("{other:?}"),
                    expected: "a float type (F32, BF16, F16)".to_string(),
                });
            }
        };
        let non_finite = values.iter().filter(|x| !x.is_finite()).count();
        if non_finite > 0 {
            tracing::warn!(
                file = %self.path.display(),
                tensor = name,
                non_finite,
                of = values.len(),
                "tensor `{name}` in {} holds NaN or infinite values; everything computed from it \
                 will be NaN",
                self.path.display()
            );
        }
        Ok((info.shape.clone(), values))
    }

    /// Reads an integer tensor (I64, I32, U32, U8, I8, BOOL) as i64.
    pub fn read_i64(&self, name: &str) -> Result<(Vec<usize>, Vec<i64>)> {
        let info = self.info(name)?;
        let bytes = self.bytes(info);
        let values = match info.dtype {
            Dtype::I64 => bytes
                .chunks_exact(8)
                .map(|b| i64::from_le_bytes(b.try_into().expect("chunk of 8")))
                .collect(),
            Dtype::I32 => bytes
                .chunks_exact(4)
                .map(|b| i32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64)
                .collect(),
            Dtype::U32 => bytes
                .chunks_exact(4)
                .map(|b| u32::from_le_bytes([b[0], b[1], b[2], b[3]]) as i64)
                .collect(),
            Dtype::U8 | Dtype::BOOL => bytes.iter().map(|&b| b as i64).collect(),
            Dtype::I8 => bytes.iter().map(|&b| b as i8 as i64).collect(),
            other => {
                return Err(ModelError::TensorDtype {
                    path: self.path.clone(),
                    name: name.to_string(),
                    actual: format!("{other:?}"),
                    expected: "an integer type (I64, I32)".to_string(),
                });
            }
        };
        Ok((info.shape.clone(), values))
    }
}

impl HostTensor {
    pub fn f32(shape: Vec<usize>, data: Vec<f32>) -> Self {
        Self {
            shape,
            data: HostData::F32(data),
        }
    }
    pub fn i64(shape: Vec<usize>, data: Vec<i64>) -> Self {
        Self {
            shape,
            data: HostData::I64(data),
        }
    }
    /// Bytes per element.
    fn dtype_size(&self) -> usize {
        match &self.data {
            HostData::F32(_) => 4,
            HostData::Bf16(_) | HostData::F16(_) => 2,
            HostData::I64(_) => 8,
        }
    }

    /// Size of the data in bytes.
    pub fn byte_len(&self) -> usize {
        match &self.data {
            HostData::F32(v) => v.len() * 4,
            HostData::Bf16(v) => v.len() * 2,
            HostData::F16(v) => v.len() * 2,
            HostData::I64(v) => v.len() * 8,
        }
    }
}

impl safetensors::View for &HostTensor {
    fn dtype(&self) -> Dtype {
        match self.data {
            HostData::F32(_) => Dtype::F32,
            HostData::Bf16(_) => Dtype::BF16,
            HostData::F16(_) => Dtype::F16,
            HostData::I64(_) => Dtype::I64,
        }
    }
    fn shape(&self) -> &[usize] {
        &self.shape
    }
    fn data(&self) -> Cow<'_, [u8]> {
        let bytes: Vec<u8> = match &self.data {
            HostData::F32(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            HostData::Bf16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            HostData::F16(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
            HostData::I64(v) => v.iter().flat_map(|x| x.to_le_bytes()).collect(),
        };
        Cow::Owned(bytes)
    }
    fn data_len(&self) -> usize {
        self.byte_len()
    }
}

/// Writes `tensors` to one safetensors file, with optional string metadata, through an
/// [`OutputFile`]: a file that exists is replaced only once the new one is complete, new files
/// get the usual `0666 & !umask` mode, and errors name `path`. The layout is the `safetensors`
/// crate's (tensors by descending dtype alignment, then name; header padded to 8 bytes), but
/// streamed tensor by tensor instead of through the crate's `0600` temporary file.
pub fn write_safetensors(
    path: impl AsRef<Path>,
    tensors: &[(String, HostTensor)],
    metadata: Option<HashMap<String, String>>,
) -> Result<()> {
    let path = path.as_ref();
    let corrupt = |message: String| ModelError::CorruptCheckpoint {
        path: path.to_path_buf(),
        message,
    };
    let mut order: Vec<&(String, HostTensor)> = tensors.iter().collect();
    order.sort_by(|(a, x), (b, y)| {
        safetensors::View::dtype(&y)
            .cmp(&safetensors::View::dtype(&x))
            .then(a.cmp(b))
    });
    let mut offset = 0usize;
    let mut infos = Vec::with_capacity(order.len());
    for (name, tensor) in &order {
        let n = tensor.byte_len();
        let elements: usize = tensor.shape.iter().product();
        if elements * tensor.dtype_size() != n {
            return Err(corrupt(format!(
                "tensor `{name}` has shape {:?} but {n} bytes of data",
                tensor.shape
            )));
        }
        infos.push((
            name.clone(),
            TensorInfo {
                dtype: safetensors::View::dtype(&tensor),
                shape: tensor.shape.clone(),
                data_offsets: (offset, offset + n),
            },
        ));
        offset += n;
    }
    let header = Metadata::new(metadata, infos).map_err(|e| corrupt(e.to_string()))?;
    let mut header = serde_json::to_string(&header)
        .map_err(|e| corrupt(e.to_string()))?
        .into_bytes();
    header.resize(header.len().next_multiple_of(8), b' ');

    let mut out = OutputFile::create(path)?;
    let mut write = |bytes: &[u8]| out.write_all(bytes);
    let written = write(&(header.len() as u64).to_le_bytes())
        .and_then(|()| write(&header))
        .and_then(|()| {
            order
                .iter()
                .try_for_each(|(_, tensor)| write(&safetensors::View::data(&tensor)))
        });
    if let Err(e) = written {
        return Err(out.error(e));
    }
    out.commit()
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn round_trips_every_dtype_and_rejects_truncation() {
        let dir = tempfile::tempdir().unwrap();
        let path = dir.path().join("t.safetensors");
        let tensors = vec![
            (
                "a".to_string(),
                HostTensor::f32(vec![2, 2], vec![1.0, -2.5, 3.25, 0.0]),
            ),
            (
                "b".to_string(),
                HostTensor {
                    shape: vec![3],
                    data: HostData::Bf16(vec![half::bf16::from_f32(1.5); 3]),
                },
            ),
            ("c".to_string(), HostTensor::i64(vec![1, 2], vec![7, -9])),
        ];
        write_safetensors(&path, &tensors, None).unwrap();
        let file = SafetensorsFile::open(&path).unwrap();
        assert_eq!(file.names(), vec!["a", "b", "c"]);
        assert_eq!(file.read_f32("a").unwrap().1, vec![1.0, -2.5, 3.25, 0.0]);
        assert_eq!(file.read_f32("b").unwrap().1, vec![1.5; 3]);
        assert_eq!(file.read_i64("c").unwrap(), (vec![1, 2], vec![7, -9]));
        assert!(matches!(
            file.read_f32("c"),
            Err(ModelError::TensorDtype { .. })
        ));
        assert!(matches!(
            file.read_f32("zz"),
            Err(ModelError::MissingTensor { .. })
        ));

        let bytes = std::fs::read(&path).unwrap();
        std::fs::write(&path, &bytes[..bytes.len() - 3]).unwrap();
        let err = SafetensorsFile::open(&path)
            .err()
            .expect("truncated file must fail");
        assert!(matches!(err, ModelError::CorruptCheckpoint { .. }), "{err}");
        assert!(err.to_string().contains("t.safetensors"), "{err}");
    }
}
