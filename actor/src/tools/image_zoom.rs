//! `image_zoom`: crops a region of one of the prompt's images and shows it enlarged.
//!
//! Arguments: `{"bbox_2d": [x1, y1, x2, y2], "image_index": 0}` (`image_index` optional, 0 by
//! default). Coordinates are Qwen3-VL's grounding convention: relative to the image on a
//! 0–1000 scale in both axes (`(0, 0)` top-left, `(1000, 1000)` bottom-right), whatever the
//! image's pixel size. The rule:
//!
//! - each coordinate must be a finite number in `[0, 1000]`, with `x1 < x2` and `y1 < y2`;
//! - the pixel crop of a `W×H` image is columns `floor(x1·W/1000) .. ceil(x2·W/1000)` and rows
//!   `floor(y1·H/1000) .. ceil(y2·H/1000)` (at least one pixel each way);
//! - the crop (`w×h`) is enlarged by `s = max(min_scale, sqrt(min_pixels / (w·h)))` — at least
//!   `min_scale` times, and at least to the processor's minimum area — with `s` lowered so that
//!   the result stays within `max_pixels`; bicubic (Catmull-Rom) resampling.
//!
//! The processor then resizes the returned image to its patch grid like any other image.

use image::RgbImage;
use image::imageops::{FilterType, crop_imm, resize};
use serde_json::{Map, Value};
use temper_model::chat::JsonValue;
use temper_model::preprocess::VisionPreprocessConfig;

use super::{BoxFuture, Tool, ToolContext, ToolError, ToolOutput};

/// The coordinate scale of Qwen3-VL's relative boxes.
pub const COORDINATE_SCALE: f64 = 1000.0;

/// The `image_zoom` tool.
#[derive(Debug, Clone, Copy, PartialEq)]
pub struct ImageZoom {
    /// The processor's minimum image area, in pixels: crops are enlarged to at least this.
    pub min_pixels: usize,
    /// The processor's maximum image area, in pixels: crops are never enlarged past this.
    pub max_pixels: usize,
    /// Crops are enlarged at least this many times per side [2.0].
    pub min_scale: f64,
}

/// A validated region: the image and the pixel rectangle.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ZoomRegion {
    /// Index of the prompt image.
    pub image_index: usize,
    /// Left column, inclusive.
    pub left: u32,
    /// Top row, inclusive.
    pub top: u32,
    /// Width of the crop in pixels.
    pub width: u32,
    /// Height of the crop in pixels.
    pub height: u32,
}

impl ImageZoom {
    /// The tool for a processor's pixel limits, enlarging at least 2× per side.
    pub fn new(pixels: &VisionPreprocessConfig) -> Self {
        Self {
            min_pixels: pixels.min_pixels,
            max_pixels: pixels.max_pixels,
            min_scale: 2.0,
        }
    }

    /// Validates the arguments against the context's images and maps the box to pixels.
    pub fn region(
        &self,
        arguments: &Map<String, Value>,
        context: &ToolContext,
    ) -> Result<ZoomRegion, ToolError> {
        let invalid = |m: String| ToolError::InvalidArguments(m);
        let image_index = match arguments.get("image_index") {
            None | Some(Value::Null) => 0,
            Some(v) => v.as_u64().ok_or_else(|| {
                invalid(format!(
                    "\"image_index\" must be a non-negative integer, got {v}"
                ))
            })? as usize,
        };
        let image = match context.images.get(image_index) {
            Some(image) => image,
            None if context.images.is_empty() => {
                return Err(ToolError::Failed(
                    "the prompt has no image to zoom into".into(),
                ));
            }
            None => {
                return Err(invalid(format!(
                    "\"image_index\" {image_index} is out of range: the prompt has {} image(s), numbered from 0",
                    context.images.len()
                )));
            }
        };
        if image.width() == 0 || image.height() == 0 {
            return Err(ToolError::Failed(format!("image {image_index} is empty")));
        }
        let bbox = arguments
            .get("bbox_2d")
            .and_then(Value::as_array)
            .filter(|b| b.len() == 4)
            .ok_or_else(|| {
                invalid("\"bbox_2d\" must be [x1, y1, x2, y2] on Qwen's 0-1000 scale".into())
            })?;
        let mut c = [0.0f64; 4];
        for (slot, v) in c.iter_mut().zip(bbox) {
            *slot = v
                .as_f64()
                .filter(|x| x.is_finite())
                .ok_or_else(|| invalid(format!("\"bbox_2d\" holds {v}, not a number")))?;
        }
        if let Some(x) = c.iter().find(|x| !(0.0..=COORDINATE_SCALE).contains(*x)) {
            return Err(invalid(format!(
                "\"bbox_2d\" coordinate {x} is outside 0-1000 (coordinates are relative: 0 = left/top edge, 1000 = right/bottom edge)"
            )));
        }
        let [x1, y1, x2, y2] = c;
        if x1 >= x2 || y1 >= y2 {
            return Err(invalid(format!(
                "\"bbox_2d\" [{x1}, {y1}, {x2}, {y2}] is empty: it needs x1 < x2 and y1 < y2"
            )));
        }
        let span = |a: f64, b: f64, size: u32| {
            let size_f = size as f64;
            let lo = ((a * size_f / COORDINATE_SCALE).floor() as u32).min(size - 1);
            let hi = ((b * size_f / COORDINATE_SCALE).ceil() as u32).clamp(lo + 1, size);
            (lo, hi - lo)
        };
        let (left, width) = span(x1, x2, image.width());
        let (top, height) = span(y1, y2, image.height());
        Ok(ZoomRegion {
            image_index,
            left,
            top,
            width,
            height,
        })
    }

    /// The enlarged size of a `w×h` crop (see the module doc).
    pub fn zoomed_size(&self, width: u32, height: u32) -> (u32, u32) {
        let area = (width as f64) * (height as f64);
        let mut scale = self.min_scale.max((self.min_pixels as f64 / area).sqrt());
        let largest = (self.max_pixels as f64 / area).sqrt();
        if scale > largest {
            scale = largest.max(1.0);
        }
        let side = |n: u32| ((n as f64 * scale).round() as u32).max(1);
        (side(width), side(height))
    }
}

impl Tool for ImageZoom {
    fn name(&self) -> &str {
        "image_zoom"
    }

    fn description(&self) -> &str {
        "Zooms into a region of an image and shows it enlarged. The box uses relative coordinates from 0 to 1000."
    }

    fn parameters(&self) -> JsonValue {
        JsonValue::parse(
            r#"{"type": "object", "properties": {"bbox_2d": {"type": "array", "items": {"type": "number"}, "minItems": 4, "maxItems": 4, "description": "[x1, y1, x2, y2], relative coordinates from 0 to 1000"}, "image_index": {"type": "integer", "description": "Which image of the conversation, from 0 (default 0)"}}, "required": ["bbox_2d"]}"#,
        )
        .expect("the image_zoom schema is valid JSON")
    }

    fn call<'a>(
        &'a self,
        arguments: &'a Map<String, Value>,
        context: &'a ToolContext,
    ) -> BoxFuture<'a, Result<ToolOutput, ToolError>> {
        Box::pin(async move {
            let r = self.region(arguments, context)?;
            let (w, h) = self.zoomed_size(r.width, r.height);
            // Crop and resample off the runtime's threads (large images take a while).
            let images = context.images.clone();
            let zoomed = tokio::task::spawn_blocking(move || {
                let image: &RgbImage = &images[r.image_index];
                let crop = crop_imm(image, r.left, r.top, r.width, r.height).to_image();
                resize(&crop, w, h, FilterType::CatmullRom)
            })
            .await
            .map_err(|e| ToolError::Failed(format!("the zoom did not complete: {e}")))?;
            Ok(ToolOutput {
                text: format!(
                    "Zoomed into image {} at pixels x {}..{}, y {}..{} (shown at {w}x{h}).",
                    r.image_index,
                    r.left,
                    r.left + r.width,
                    r.top,
                    r.top + r.height
                ),
                images: vec![zoomed],
            })
        })
    }
}

#[cfg(test)]
mod tests {
    use std::sync::Arc;

    use super::*;
    use serde_json::json;

    fn tool() -> ImageZoom {
        ImageZoom {
            min_pixels: 1024,
            max_pixels: 100_000,
            min_scale: 2.0,
        }
    }

    /// A 200×100 image whose pixel (x, y) is (x, y, 7) so crops can be checked by value.
    fn context() -> ToolContext {
        let image = RgbImage::from_fn(200, 100, |x, y| image::Rgb([x as u8, y as u8, 7]));
        ToolContext {
            images: Arc::new(vec![image]),
        }
    }

    fn args(v: Value) -> Map<String, Value> {
        v.as_object().unwrap().clone()
    }

    #[test]
    fn relative_boxes_map_to_pixels() {
        let r = tool()
            .region(&args(json!({"bbox_2d": [250, 500, 500, 1000]})), &context())
            .unwrap();
        assert_eq!((r.left, r.top, r.width, r.height), (50, 50, 50, 50));
        let r = tool()
            .region(
                &args(json!({"bbox_2d": [0, 0, 1000, 1000], "image_index": 0})),
                &context(),
            )
            .unwrap();
        assert_eq!((r.left, r.top, r.width, r.height), (0, 0, 200, 100));
        // A sliver narrower than a pixel still crops one pixel; fractional edges round outwards.
        let r = tool()
            .region(
                &args(json!({"bbox_2d": [999.9, 0.5, 1000, 10.1]})),
                &context(),
            )
            .unwrap();
        assert_eq!((r.left, r.width), (199, 1));
        assert_eq!((r.top, r.height), (0, 2));
    }

    #[test]
    fn the_crop_is_enlarged_and_holds_the_region() {
        let runtime = tokio::runtime::Builder::new_current_thread()
            .build()
            .unwrap();
        let (arguments, context) = (args(json!({"bbox_2d": [250, 500, 500, 1000]})), context());
        let out = runtime.block_on(tool().call(&arguments, &context)).unwrap();
        assert_eq!(out.images.len(), 1);
        let zoomed = &out.images[0];
        // 50×50 crop: 2× gives 100×100 ≥ 1024 px.
        assert_eq!(zoomed.dimensions(), (100, 100));
        // The crop's pixels come from x 50..100, y 50..100 (a smooth ramp survives resampling).
        let p = zoomed.get_pixel(50, 50);
        assert!(
            (70..=80).contains(&p[0]) && (70..=80).contains(&p[1]),
            "{p:?}"
        );
        assert!(out.text.contains("x 50..100"));
    }

    #[test]
    fn tiny_crops_reach_min_pixels_and_large_ones_stay_under_max() {
        let t = tool();
        let (w, h) = t.zoomed_size(4, 4);
        assert!(w * h >= 1024, "{w}x{h}");
        assert_eq!((w, h), (32, 32));
        let (w, h) = t.zoomed_size(200, 200);
        assert!(
            w * h <= 100_000 && w > 200,
            "{w}x{h}: enlarged up to max_pixels"
        );
        assert_eq!(t.zoomed_size(400, 400), (400, 400), "never shrinks");
    }

    #[test]
    fn bad_boxes_are_invalid_arguments() {
        let err = |v: Value| tool().region(&args(v), &context()).unwrap_err();
        let message = |v: Value| err(v).to_string();
        assert!(message(json!({"bbox_2d": [0, 0, 10]})).contains("[x1, y1, x2, y2]"));
        assert!(message(json!({})).contains("bbox_2d"));
        assert!(message(json!({"bbox_2d": [0, 0, 1001, 10]})).contains("outside 0-1000"));
        assert!(message(json!({"bbox_2d": [-1, 0, 10, 10]})).contains("outside 0-1000"));
        assert!(message(json!({"bbox_2d": [10, 0, 10, 10]})).contains("x1 < x2"));
        assert!(message(json!({"bbox_2d": [0, 50, 10, 20]})).contains("y1 < y2"));
        assert!(message(json!({"bbox_2d": ["a", 0, 10, 10]})).contains("not a number"));
        assert!(
            message(json!({"bbox_2d": [0, 0, 10, 10], "image_index": 1})).contains("out of range")
        );
        assert!(
            message(json!({"bbox_2d": [0, 0, 10, 10], "image_index": -1})).contains("non-negative")
        );
        assert!(matches!(
            err(json!({"bbox_2d": [0, 0, 10, 10], "image_index": 3})),
            ToolError::InvalidArguments(_)
        ));
        let none = tool()
            .region(
                &args(json!({"bbox_2d": [0, 0, 10, 10]})),
                &ToolContext::default(),
            )
            .unwrap_err();
        assert_eq!(
            none,
            ToolError::Failed("the prompt has no image to zoom into".into())
        );
    }
}
