//! Target-size computation (`smart_resize`) and the uint8 antialiased resize.
//!
//! The resize reproduces ATen's `_upsample_bicubic2d_aa` / `_upsample_bilinear2d_aa` uint8
//! kernels, which torchvision's `resize(..., antialias=True)` calls on uint8 tensors: weights are
//! computed in f64 (PIL-style support that widens with the downscale factor, normalised to sum
//! 1), converted to int16 fixed point with a precision chosen from the largest weight, and
//! applied separably — horizontal pass first, then vertical — with round-half-up and clamping to
//! `[0, 255]` after each pass. All sums are exact integer arithmetic, so the AVX2/AVX-512 and
//! the generic ATen kernels agree, and so does this code, bit for bit.

use image::RgbImage;

use super::config::Resample;
use super::error::{PreprocessError, Result};

/// Python's `round()` on a float: round half to even.
pub fn round_half_even(x: f64) -> f64 {
    x.round_ties_even()
}

fn check_aspect(height: usize, width: usize) -> Result<()> {
    let (hi, lo) = (height.max(width), height.min(width));
    let ratio = hi as f64 / lo as f64;
    if ratio > 200.0 {
        return Err(PreprocessError::AspectRatio {
            height,
            width,
            ratio,
        });
    }
    Ok(())
}

/// `smart_resize` of HF `Qwen2VLImageProcessor`: the target `(height, width)`, both multiples of
/// `factor`, with area in `[min_pixels, max_pixels]` where possible and the aspect ratio kept.
///
/// `h' = round(h/factor)·factor` (half-to-even), same for `w'`; if `h'·w' > max_pixels` both
/// sides shrink by `β = sqrt(h·w/max_pixels)` (floored to a multiple of `factor`, at least
/// `factor`); if `h'·w' < min_pixels` they grow by `β = sqrt(min_pixels/(h·w))` (ceiled).
/// Fails on an empty input, an aspect ratio above 200, or an empty result.
pub fn smart_resize(
    height: usize,
    width: usize,
    factor: usize,
    min_pixels: usize,
    max_pixels: usize,
) -> Result<(usize, usize)> {
    if height == 0 || width == 0 {
        return Err(PreprocessError::EmptyImage {
            what: "image".to_string(),
            height,
            width,
        });
    }
    if factor == 0 {
        return Err(PreprocessError::InvalidConfig(
            "resize factor (patch_size * merge_size) is 0".to_string(),
        ));
    }
    check_aspect(height, width)?;
    let f = factor as f64;
    let (h, w) = (height as f64, width as f64);
    let mut h_bar = round_half_even(h / f) as usize * factor;
    let mut w_bar = round_half_even(w / f) as usize * factor;
    if h_bar * w_bar > max_pixels {
        let beta = ((height * width) as f64 / max_pixels as f64).sqrt();
        h_bar = factor.max((h / beta / f).floor() as usize * factor);
        w_bar = factor.max((w / beta / f).floor() as usize * factor);
    } else if h_bar * w_bar < min_pixels {
        let beta = (min_pixels as f64 / (height * width) as f64).sqrt();
        h_bar = (h * beta / f).ceil() as usize * factor;
        w_bar = (w * beta / f).ceil() as usize * factor;
    }
    check_target(height, width, h_bar, w_bar)
}

fn check_target(height: usize, width: usize, th: usize, tw: usize) -> Result<(usize, usize)> {
    if th == 0 || tw == 0 {
        return Err(PreprocessError::EmptyTarget {
            height,
            width,
            target_height: th,
            target_width: tw,
        });
    }
    Ok((th, tw))
}

/// `smart_resize` of HF `Qwen3VLVideoProcessor`: one target `(height, width)` for a whole clip
/// of `num_frames` frames of `height x width`.
///
/// Differences from [`smart_resize`]: a frame smaller than `factor` on either side is first
/// scaled up (in the size computation only) so its short side reaches `factor`
/// (int-truncated); the area tests use `t'·h'·w'` with `t' = round(n/Tp)·Tp` (half-to-even),
/// and the β formulas use `n·h·w`. Fails if `num_frames < temporal_factor`.
pub fn smart_resize_video(
    num_frames: usize,
    height: usize,
    width: usize,
    temporal_factor: usize,
    factor: usize,
    min_pixels: usize,
    max_pixels: usize,
) -> Result<(usize, usize)> {
    if num_frames < temporal_factor || num_frames == 0 {
        return Err(PreprocessError::TooFewFrames {
            frames: num_frames,
            required: temporal_factor.max(1),
        });
    }
    if height == 0 || width == 0 {
        return Err(PreprocessError::EmptyImage {
            what: "video frame".to_string(),
            height,
            width,
        });
    }
    if factor == 0 || temporal_factor == 0 {
        return Err(PreprocessError::InvalidConfig(
            "resize factor (patch_size * merge_size) or temporal_patch_size is 0".to_string(),
        ));
    }
    let (orig_h, orig_w) = (height, width);
    let (mut height, mut width) = (height, width);
    let f = factor as f64;
    if height < factor || width < factor {
        let scale = (f / height as f64).max(f / width as f64);
        height = (height as f64 * scale) as usize;
        width = (width as f64 * scale) as usize;
    }
    check_aspect(height, width)?;
    let (h, w) = (height as f64, width as f64);
    let mut h_bar = round_half_even(h / f) as usize * factor;
    let mut w_bar = round_half_even(w / f) as usize * factor;
    let t_bar =
        round_half_even(num_frames as f64 / temporal_factor as f64) as usize * temporal_factor;
    let volume = (num_frames * height * width) as f64;
    if t_bar * h_bar * w_bar > max_pixels {
        let beta = (volume / max_pixels as f64).sqrt();
        h_bar = factor.max((h / beta / f).floor() as usize * factor);
        w_bar = factor.max((w / beta / f).floor() as usize * factor);
    } else if t_bar * h_bar * w_bar < min_pixels {
        let beta = (min_pixels as f64 / volume).sqrt();
        h_bar = (h * beta / f).ceil() as usize * factor;
        w_bar = (w * beta / f).ceil() as usize * factor;
    }
    check_target(orig_h, orig_w, h_bar, w_bar)
}

/// Fixed-point filter taps of one resized axis.
#[derive(Debug, Clone)]
struct AxisTaps {
    /// First input index read by each output index.
    start: Vec<usize>,
    /// Number of input indices read by each output index.
    len: Vec<usize>,
    /// `weights[o * stride + j]`: int16 weight of input `start[o] + j`.
    weights: Vec<i32>,
    stride: usize,
    /// Fractional bits of the weights.
    precision: u32,
}

/// Keys cubic convolution with a = -0.5 (the antialiased bicubic filter, as in PIL).
fn cubic_aa(x: f64) -> f64 {
    const A: f64 = -0.5;
    let x = x.abs();
    if x < 1.0 {
        ((A + 2.0) * x - (A + 3.0)) * x * x + 1.0
    } else if x < 2.0 {
        ((A * x - 5.0 * A) * x + 8.0 * A) * x - 4.0 * A
    } else {
        0.0
    }
}

fn triangle(x: f64) -> f64 {
    let x = x.abs();
    if x < 1.0 { 1.0 - x } else { 0.0 }
}

impl AxisTaps {
    fn new(input: usize, output: usize, resample: Resample) -> Self {
        let (filter, interp_size): (fn(f64) -> f64, f64) = match resample {
            Resample::Bicubic => (cubic_aa, 4.0),
            Resample::Bilinear => (triangle, 2.0),
        };
        let scale = input as f64 / output as f64;
        let support = if scale >= 1.0 {
            (interp_size * 0.5) * scale
        } else {
            interp_size * 0.5
        };
        let stride = support.ceil() as usize * 2 + 1;
        let inv_scale = if scale >= 1.0 { 1.0 / scale } else { 1.0 };

        let mut start = Vec::with_capacity(output);
        let mut len = Vec::with_capacity(output);
        let mut wf = vec![0.0f64; output * stride];
        let mut w_max = 0.0f64;
        for o in 0..output {
            let center = scale * (o as f64 + 0.5);
            // C++ `static_cast<int64_t>` truncates toward zero.
            let lo = ((center - support + 0.5) as i64).max(0);
            let hi = ((center + support + 0.5) as i64).min(input as i64);
            let n = (hi - lo).clamp(0, stride as i64) as usize;
            let taps = &mut wf[o * stride..o * stride + n];
            let mut total = 0.0f64;
            for (j, t) in taps.iter_mut().enumerate() {
                *t = filter(((j as i64 + lo) as f64 - center + 0.5) * inv_scale);
                total += *t;
            }
            if total != 0.0 {
                for t in taps.iter_mut() {
                    *t /= total;
                    w_max = w_max.max(*t);
                }
            }
            start.push(lo as usize);
            len.push(n);
        }

        // The largest precision such that the largest weight still fits in int16 (at most 22).
        let mut precision = 0u32;
        while precision < 22 {
            let next = (0.5 + w_max * f64::from(1u32 << (precision + 1))) as i32;
            if next >= 1 << 15 {
                break;
            }
            precision += 1;
        }
        let one = f64::from(1u32 << precision);
        let weights = wf
            .iter()
            .map(|&w| {
                let v = w * one;
                let r = if v < 0.0 {
                    (-0.5 + v) as i32
                } else {
                    (0.5 + v) as i32
                };
                i32::from(r as i16)
            })
            .collect();
        Self {
            start,
            len,
            weights,
            stride,
            precision,
        }
    }

    /// The taps of output `o`: first input index and int16 weights.
    #[inline]
    fn taps(&self, o: usize) -> (usize, &[i32]) {
        let w = &self.weights[o * self.stride..o * self.stride + self.len[o]];
        (self.start[o], w)
    }

    /// Rounding offset added before the final shift (round half up).
    fn half(&self) -> i32 {
        (1i32 << self.precision) >> 1
    }

    /// Final shift and uint8 saturation, as the ATen kernel (`>>`, then pack with saturation).
    #[inline]
    fn finish(&self, acc: i32) -> u8 {
        (acc >> self.precision).clamp(0, 255) as u8
    }
}

/// Horizontal pass over interleaved RGB rows: `src` is `rows x in_w x 3`.
fn resize_horizontal(
    src: &[u8],
    rows: usize,
    in_w: usize,
    taps: &AxisTaps,
    out_w: usize,
) -> Vec<u8> {
    let mut out = vec![0u8; rows * out_w * 3];
    for (row, orow) in src
        .chunks_exact(in_w * 3)
        .zip(out.chunks_exact_mut(out_w * 3))
        .take(rows)
    {
        for (x, px) in orow.chunks_exact_mut(3).enumerate() {
            let (start, w) = taps.taps(x);
            let mut acc = [taps.half(); 3];
            for (s, &wj) in row[start * 3..(start + w.len()) * 3].chunks_exact(3).zip(w) {
                for c in 0..3 {
                    acc[c] = acc[c].wrapping_add(i32::from(s[c]).wrapping_mul(wj));
                }
            }
            for c in 0..3 {
                px[c] = taps.finish(acc[c]);
            }
        }
    }
    out
}

/// Vertical pass: `src` is `in_h` rows of `row_len` bytes.
fn resize_vertical(src: &[u8], row_len: usize, taps: &AxisTaps, out_h: usize) -> Vec<u8> {
    let mut out = vec![0u8; out_h * row_len];
    let mut acc = vec![0i32; row_len];
    for (y, orow) in out.chunks_exact_mut(row_len).enumerate() {
        let (start, w) = taps.taps(y);
        acc.fill(taps.half());
        for (j, &wj) in w.iter().enumerate() {
            let row = &src[(start + j) * row_len..(start + j + 1) * row_len];
            for (a, &v) in acc.iter_mut().zip(row) {
                *a = a.wrapping_add(i32::from(v).wrapping_mul(wj));
            }
        }
        for (o, &a) in orow.iter_mut().zip(&acc) {
            *o = taps.finish(a);
        }
    }
    out
}

/// Resizes an RGB image to `height x width` exactly like torchvision v2
/// `resize(uint8 CHW tensor, [height, width], interpolation, antialias=True)` on CPU.
///
/// Same size returns a copy; an empty input or target gives an all-black image of the target
/// size. Sides must fit in `u32` (image crate dimensions).
pub fn resize_rgb(image: &RgbImage, height: usize, width: usize, resample: Resample) -> RgbImage {
    let (in_w, in_h) = (image.width() as usize, image.height() as usize);
    if (in_h, in_w) == (height, width) {
        return image.clone();
    }
    if height == 0 || width == 0 || in_h == 0 || in_w == 0 {
        // Nothing to interpolate from or to: an all-black image of the requested size.
        return RgbImage::new(width as u32, height as u32);
    }
    // Horizontal first, then vertical, each rounded to uint8 (as ATen does).
    let mut cur: Vec<u8> = image.as_raw().clone();
    if width != in_w {
        let taps = AxisTaps::new(in_w, width, resample);
        cur = resize_horizontal(&cur, in_h, in_w, &taps, width);
    }
    if height != in_h {
        let taps = AxisTaps::new(in_h, height, resample);
        cur = resize_vertical(&cur, width * 3, &taps, height);
    }
    RgbImage::from_raw(width as u32, height as u32, cur)
        .expect("buffer length is height * width * 3 by construction")
}

/// [`resize_rgb`] with the bicubic filter (what Qwen3-VL uses).
pub fn resize_bicubic_aa(image: &RgbImage, height: usize, width: usize) -> RgbImage {
    resize_rgb(image, height, width, Resample::Bicubic)
}
