//! Image loading and the image path of `Qwen2VLImageProcessor` (torchvision backend):
//! `smart_resize` → uint8 antialiased bicubic resize → normalise in f32 → patchify in
//! merge-window order.

use std::path::Path;

use image::metadata::Orientation;
use image::{DynamicImage, ImageDecoder, RgbImage, RgbaImage};

use super::config::VisionPreprocessConfig;
use super::error::{PreprocessError, Result};
use super::resize::{resize_rgb, smart_resize};

/// Patch rows of one image: `pixel_values` is `rows x row_len` row-major, with
/// `rows = t·h·w` of `grid_thw` and `row_len = 3·Tp·P·P`.
#[derive(Debug, Clone, PartialEq)]
pub struct ProcessedImage {
    /// Flattened `(rows, C·Tp·P·P)` patch matrix, rows in merge-window order.
    pub pixel_values: Vec<f32>,
    /// Grid in patches: `(1, h'/P, w'/P)`.
    pub grid_thw: [usize; 3],
}

impl ProcessedImage {
    /// Number of patch rows (`t·h·w`).
    pub fn num_patches(&self) -> usize {
        self.grid_thw.iter().product()
    }

    /// Number of merged visual tokens this image takes in the prompt.
    pub fn num_merged_tokens(&self, merge_size: usize) -> usize {
        merged_token_count(self.grid_thw, merge_size)
    }
}

/// Several images packed as HF does for one batch: rows concatenated, one grid per image.
#[derive(Debug, Clone, PartialEq, Default)]
pub struct ProcessedImages {
    /// Concatenated patch rows of all images.
    pub pixel_values: Vec<f32>,
    /// One `(t, h, w)` grid per image, in input order.
    pub grid_thw: Vec<[usize; 3]>,
}

/// Number of merged tokens (`<|image_pad|>` / `<|video_pad|>` placeholders) for a grid:
/// `t·h·w / merge²`.
pub fn merged_token_count(grid_thw: [usize; 3], merge_size: usize) -> usize {
    let [t, h, w] = grid_thw;
    t * h * w / (merge_size * merge_size).max(1)
}

/// Loads an image file (PNG or JPEG) and converts it to 8-bit RGB the way HF's
/// `transformers.image_utils.load_image` does (what processors and chat templates do with an
/// image path or URL): the EXIF orientation is applied (`PIL.ImageOps.exif_transpose`), then
/// PIL `convert("RGB")` semantics ([`to_rgb`]): alpha is dropped, not composited.
pub fn load_image(path: impl AsRef<Path>) -> Result<RgbImage> {
    let path = path.as_ref();
    Ok(to_rgb(decode(&read_image_file(path)?, path, true)?))
}

/// Loads an image file as if `PIL.Image.open(path)` were passed to the HF image processor:
/// no EXIF rotation, and transparency composited onto white ([`to_rgb_over_white`], HF's
/// `convert_to_rgb`). Identical to [`load_image`] for opaque images without EXIF rotation.
pub fn load_image_over_white(path: impl AsRef<Path>) -> Result<RgbImage> {
    let path = path.as_ref();
    Ok(to_rgb_over_white(&decode(
        &read_image_file(path)?,
        path,
        false,
    )?))
}

/// Decodes an in-memory PNG or JPEG like [`load_image`] (EXIF orientation, alpha dropped).
pub fn decode_image(bytes: &[u8]) -> Result<RgbImage> {
    Ok(to_rgb(decode(bytes, Path::new("<memory>"), true)?))
}

fn read_image_file(path: &Path) -> Result<Vec<u8>> {
    std::fs::read(path).map_err(|source| {
        if source.kind() == std::io::ErrorKind::NotFound {
            PreprocessError::ImageNotFound {
                path: path.to_path_buf(),
            }
        } else {
            PreprocessError::ImageIo {
                path: path.to_path_buf(),
                source,
            }
        }
    })
}

fn decode(bytes: &[u8], path: &Path, apply_orientation: bool) -> Result<DynamicImage> {
    let fail = |message: String| PreprocessError::ImageDecode {
        path: path.to_path_buf(),
        message,
    };
    let mut decoder = image::ImageReader::new(std::io::Cursor::new(bytes))
        .with_guessed_format()
        .map_err(|e| fail(e.to_string()))?
        .into_decoder()
        .map_err(|e| fail(e.to_string()))?;
    // Unreadable EXIF is ignored, as PIL does.
    let orientation = if apply_orientation {
        decoder.orientation().unwrap_or(Orientation::NoTransforms)
    } else {
        Orientation::NoTransforms
    };
    let mut image = DynamicImage::from_decoder(decoder).map_err(|e| fail(e.to_string()))?;
    image.apply_orientation(orientation);
    Ok(image)
}

/// The 8-bit RGBA view PIL has of a decoded image, and whether it carries alpha.
///
/// PIL reads 16-bit RGB(A) and gray+alpha PNGs keeping the high byte, and 16-bit gray as mode
/// `I;16`, whose conversion to RGB clamps at 255.
fn pil_rgba(image: &DynamicImage) -> (RgbaImage, bool) {
    let high = |v: u16| (v >> 8) as u8;
    let (w, h) = (image.width(), image.height());
    let raw: Vec<u8> = match image {
        DynamicImage::ImageLuma16(img) => img
            .as_raw()
            .iter()
            .flat_map(|&v| {
                let l = v.min(255) as u8;
                [l, l, l, 255]
            })
            .collect(),
        DynamicImage::ImageLumaA16(img) => img
            .as_raw()
            .chunks_exact(2)
            .flat_map(|la| {
                let l = high(la[0]);
                [l, l, l, high(la[1])]
            })
            .collect(),
        DynamicImage::ImageRgb16(img) => img
            .as_raw()
            .chunks_exact(3)
            .flat_map(|p| [high(p[0]), high(p[1]), high(p[2]), 255])
            .collect(),
        DynamicImage::ImageRgba16(img) => img.as_raw().iter().map(|&v| high(v)).collect(),
        other => other.to_rgba8().into_raw(),
    };
    let rgba = RgbaImage::from_raw(w, h, raw).unwrap_or_else(|| RgbaImage::new(w, h));
    (rgba, image.color().has_alpha())
}

/// Converts a decoded image to RGB with PIL `convert("RGB")` semantics: grayscale replicated,
/// alpha dropped (16-bit input as described on [`load_image`]).
pub fn to_rgb(image: DynamicImage) -> RgbImage {
    if let DynamicImage::ImageRgb8(rgb) = image {
        return rgb;
    }
    let (rgba, _) = pil_rgba(&image);
    drop_alpha(&rgba)
}

/// Converts a decoded image to RGB like HF's `convert_to_rgb` on a PIL image: images with
/// alpha (including a PNG tRNS colour key, which the decoder expands to alpha) are composited
/// onto white with PIL's integer `alpha_composite` arithmetic; others as [`to_rgb`].
pub fn to_rgb_over_white(image: &DynamicImage) -> RgbImage {
    let (rgba, has_alpha) = pil_rgba(image);
    if has_alpha {
        composite_on_white(&rgba)
    } else {
        drop_alpha(&rgba)
    }
}

fn drop_alpha(rgba: &RgbaImage) -> RgbImage {
    let (w, h) = rgba.dimensions();
    let raw = rgba
        .as_raw()
        .chunks_exact(4)
        .flat_map(|p| [p[0], p[1], p[2]])
        .collect();
    RgbImage::from_raw(w, h, raw).unwrap_or_else(|| RgbImage::new(w, h))
}

/// PIL `alpha_composite(white, image).convert("RGB")`.
fn composite_on_white(rgba: &RgbaImage) -> RgbImage {
    let (w, h) = rgba.dimensions();
    let mut out = RgbImage::new(w, h);
    for (o, p) in out.pixels_mut().zip(rgba.pixels()) {
        let [r, g, b, a] = p.0;
        o.0 = [over_white(r, a), over_white(g, a), over_white(b, a)];
    }
    out
}

/// One channel of PIL `alpha_composite(white, src)` (integer arithmetic, 7 extra bits).
fn over_white(c: u8, a: u8) -> u8 {
    const PREC: u32 = 7;
    if a == 0 {
        return 255;
    }
    let (c, a) = (u32::from(c), u32::from(a));
    // With an opaque white destination: blend = 255·(255−a), out_a·255 = 255·255.
    let out_a255 = a * 255 + 255 * (255 - a);
    let coef1 = a * 255 * 255 * (1 << PREC) / out_a255;
    let coef2 = 255 * (1 << PREC) - coef1;
    let tmp = c * coef1 + 255 * coef2 + (0x80 << PREC);
    let div255 = ((tmp >> 8) + tmp) >> 8;
    (div255 >> PREC) as u8
}

/// Per-channel uint8 → f32 lookup table that reproduces HF's fused rescale + normalise in f32:
/// `(x − f32(mean)·f32(1/rescale)) / (f32(std)·f32(1/rescale))`.
pub(crate) fn normalization_lut(
    cfg: &VisionPreprocessConfig,
    mean: [f64; 3],
    std: [f64; 3],
) -> [[f32; 256]; 3] {
    let mut lut = [[0f32; 256]; 3];
    for c in 0..3 {
        for (v, out) in lut[c].iter_mut().enumerate() {
            let x = v as f32;
            *out = match (cfg.do_rescale, cfg.do_normalize) {
                (true, true) => {
                    let inv = (1.0 / cfg.rescale_factor) as f32;
                    let m = mean[c] as f32 * inv;
                    let s = std[c] as f32 * inv;
                    (x - m) / s
                }
                (false, true) => (x - mean[c] as f32) / std[c] as f32,
                (true, false) => x * cfg.rescale_factor as f32,
                (false, false) => x,
            };
        }
    }
    lut
}

/// Appends the patch rows of `frames` (all `h x w` uint8 RGB, `Tp` consecutive frames per
/// temporal patch) to `out`, normalising through `lut`: rows in `t`-major, then merge-window
/// order; each row is `(C, Tp, P, P)`. Returns `grid_thw`.
///
/// Works from the uint8 frames (not f32 planes) so a long clip needs no extra f32 copy.
pub(crate) fn patchify_into(
    frames: &[&RgbImage],
    lut: &[[f32; 256]; 3],
    cfg: &VisionPreprocessConfig,
    out: &mut Vec<f32>,
) -> [usize; 3] {
    let (p, m, tp) = (cfg.patch_size, cfg.merge_size, cfg.temporal_patch_size);
    let Some(first) = frames.first() else {
        return [0, 0, 0];
    };
    let (width, height) = (first.width() as usize, first.height() as usize);
    let (gt, gh, gw) = (frames.len() / tp, height / p, width / p);
    out.reserve(gt * gh * gw * cfg.row_len());
    for group in frames.chunks_exact(tp) {
        for bh in 0..gh / m {
            for bw in 0..gw / m {
                for ih in 0..m {
                    for iw in 0..m {
                        let (y0, x0) = ((bh * m + ih) * p, (bw * m + iw) * p);
                        for (c, lut_c) in lut.iter().enumerate() {
                            for frame in group {
                                let raw = frame.as_raw();
                                for y in y0..y0 + p {
                                    let at = (y * width + x0) * 3;
                                    let px = &raw[at..at + p * 3];
                                    out.extend(px.chunks_exact(3).map(|v| lut_c[v[c] as usize]));
                                }
                            }
                        }
                    }
                }
            }
        }
    }
    [gt, gh, gw]
}

/// Checks that a target size fits the image crate's u32 dimensions.
pub(crate) fn check_target_fits(th: usize, tw: usize) -> Result<()> {
    if u32::try_from(th).is_err() || u32::try_from(tw).is_err() {
        return Err(PreprocessError::InvalidConfig(format!(
            "resize target {th}x{tw} is too large; lower min_pixels (size.shortest_edge)"
        )));
    }
    Ok(())
}

/// Computes the resized size of an image as the processor would (`smart_resize`, or the input
/// size when `do_resize` is off, which must then be a multiple of `patch_size·merge_size`).
pub fn image_target_size(
    height: usize,
    width: usize,
    cfg: &VisionPreprocessConfig,
) -> Result<(usize, usize)> {
    let factor = cfg.factor();
    if cfg.do_resize {
        smart_resize(height, width, factor, cfg.min_pixels, cfg.max_pixels)
    } else if height == 0 || width == 0 {
        Err(PreprocessError::EmptyImage {
            what: "image".to_string(),
            height,
            width,
        })
    } else if !height.is_multiple_of(factor) || !width.is_multiple_of(factor) {
        Err(PreprocessError::NotPatchAligned {
            what: "image".to_string(),
            height,
            width,
            factor,
        })
    } else {
        Ok((height, width))
    }
}

/// Resizes an image to its processor size (the uint8 image the model actually sees).
pub fn resize_for_model(image: &RgbImage, cfg: &VisionPreprocessConfig) -> Result<RgbImage> {
    cfg.validate()?;
    let (h, w) = (image.height() as usize, image.width() as usize);
    let (th, tw) = image_target_size(h, w, cfg)?;
    check_target_fits(th, tw)?;
    Ok(resize_rgb(image, th, tw, cfg.resample))
}

/// Runs the full image pipeline of `Qwen2VLImageProcessor` on one RGB image.
///
/// Output rows are in merge-window order, each the flattened `(C, Tp, P, P)` block with the
/// single frame repeated `Tp` times; `grid_thw = (1, h'/P, w'/P)`.
pub fn preprocess_image(image: &RgbImage, cfg: &VisionPreprocessConfig) -> Result<ProcessedImage> {
    let resized = resize_for_model(image, cfg)?;
    let lut = normalization_lut(cfg, cfg.image_mean, cfg.image_std);
    // One frame, repeated Tp times along the temporal axis.
    let frames = vec![&resized; cfg.temporal_patch_size];
    let mut pixel_values = Vec::new();
    let grid_thw = patchify_into(&frames, &lut, cfg, &mut pixel_values);
    Ok(ProcessedImage {
        pixel_values,
        grid_thw,
    })
}

/// Preprocesses several images and packs them as one batch (rows concatenated in order).
pub fn preprocess_images(
    images: &[RgbImage],
    cfg: &VisionPreprocessConfig,
) -> Result<ProcessedImages> {
    let mut out = ProcessedImages::default();
    for image in images {
        let one = preprocess_image(image, cfg)?;
        out.pixel_values.extend_from_slice(&one.pixel_values);
        out.grid_thw.push(one.grid_thw);
    }
    Ok(out)
}
