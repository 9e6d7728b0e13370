//! Model inputs exchanged as safetensors files under the HF processor's names
//! (`input_ids`, `attention_mask`, `pixel_values` + `image_grid_thw`,
//! `pixel_values_videos` + `video_grid_thw`), and the forward outputs written back.

use std::path::Path;

use burn::prelude::*;

use crate::error::{ModelError, Result};
use crate::model::{Batch, VisualInput};
use crate::safetensors_io::SafetensorsFile;

/// Reads a processor-style inputs file into a batch, checking names, dtypes and shapes.
pub fn read_inputs<B: Backend>(path: &Path, device: &B::Device) -> Result<Batch<B>> {
    read_batch(&SafetensorsFile::open(path)?, "", device)
}

/// Reads the inputs stored under `prefix` (e.g. `image.` in a golden file) into a batch.
pub fn read_batch<B: Backend>(
    file: &SafetensorsFile,
    prefix: &str,
    device: &B::Device,
) -> Result<Batch<B>> {
    let path = file.path();
    let key = |name: &str| format!("{prefix}{name}");
    let at = |name: &str| format!("{} (in {})", key(name), path.display());
    let int_2d = |name: &str| -> Result<(usize, usize, Vec<i64>)> {
        let (shape, values) = file.read_i64(&key(name)).map_err(|e| match e {
            ModelError::MissingTensor { .. } => {
                ModelError::input(at(name), "is missing; it is required")
            }
            ModelError::TensorDtype { actual, .. } => ModelError::input(
                at(name),
                format!("must be an integer tensor (I64), got {actual}"),
            ),
            other => other,
        })?;
        match shape.as_slice() {
            [b, l] => Ok((*b, *l, values)),
            _ => Err(ModelError::input(
                at(name),
                format!("must be 2-D [B, L], got shape {shape:?}"),
            )),
        }
    };
    let (b, l, ids) = int_2d("input_ids")?;
    let mask = if file.contains(&key("attention_mask")) {
        let (mb, ml, mask) = int_2d("attention_mask")?;
        if (mb, ml) != (b, l) {
            return Err(ModelError::input(
                at("attention_mask"),
                format!("has shape [{mb}, {ml}] but input_ids is [{b}, {l}]"),
            ));
        }
        mask
    } else {
        vec![1; b * l]
    };
    if let Some(bad) = ids.iter().find(|&&id| id < 0 || id > u32::MAX as i64) {
        return Err(ModelError::input(
            at("input_ids"),
            format!("holds the invalid token id {bad}"),
        ));
    }
    let visual = |pixels: &str, grid: &str| -> Result<Option<VisualInput<B>>> {
        match (file.contains(&key(pixels)), file.contains(&key(grid))) {
            (false, false) => return Ok(None),
            (true, false) => {
                return Err(ModelError::input(
                    at(grid),
                    format!("is missing but {pixels} is present"),
                ));
            }
            (false, true) => {
                return Err(ModelError::input(
                    at(pixels),
                    format!("is missing but {grid} is present"),
                ));
            }
            (true, true) => {}
        }
        let (pshape, values) = file.read_f32(&key(pixels)).map_err(|e| match e {
            ModelError::TensorDtype { actual, .. } => {
                ModelError::input(at(pixels), format!("must be a float tensor, got {actual}"))
            }
            other => other,
        })?;
        let [rows, dim] = pshape[..] else {
            return Err(ModelError::input(
                at(pixels),
                format!("must be 2-D [patches, C·Tp·P·P], got {pshape:?}"),
            ));
        };
        let (gshape, g) = file.read_i64(&key(grid)).map_err(|e| match e {
            ModelError::TensorDtype { actual, .. } => {
                ModelError::input(at(grid), format!("must be an integer tensor, got {actual}"))
            }
            other => other,
        })?;
        if gshape.len() != 2 || gshape[1] != 3 || g.iter().any(|&x| x <= 0) {
            return Err(ModelError::input(
                at(grid),
                format!("must be [n, 3] positive (t, h, w) rows, got shape {gshape:?}"),
            ));
        }
        Ok(Some(VisualInput {
            pixel_values: Tensor::from_data(TensorData::new(values, [rows, dim]), device),
            grid_thw: g
                .chunks(3)
                .map(|c| [c[0] as usize, c[1] as usize, c[2] as usize])
                .collect(),
        }))
    };
    let rows = |v: &[i64]| -> Vec<Vec<i64>> { v.chunks(l.max(1)).map(<[i64]>::to_vec).collect() };
    Ok(Batch {
        input_ids: rows(&ids)
            .into_iter()
            .map(|r| r.into_iter().map(|x| x as u32).collect())
            .collect(),
        attention_mask: rows(&mask)
            .into_iter()
            .map(|r| r.into_iter().map(|x| x != 0).collect())
            .collect(),
        images: visual("pixel_values", "image_grid_thw")?,
        videos: visual("pixel_values_videos", "video_grid_thw")?,
        segment_ids: None,
    })
}
