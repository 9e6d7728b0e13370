//! Continuing cached sequences (`Qwen3Vl::extend`, `decode_rows`): a prompt with an image,
//! ragged decoding, a chunk holding text and a new non-square image, more decoding — every
//! next-token logit equals a cache-free forward over the whole sequence of that row.

mod common;

use burn::prelude::*;
use common::{B, Golden, data_dir, max_abs_diff};
use temper_model::preprocess::{VisionPreprocessConfig, load_image, preprocess_image};
use temper_model::weights::host_f32;
use temper_model::{Batch, Qwen3Vl, VisualInput};

const TOL: f32 = 1e-4;

/// Logits `[L, V]` of a cache-free forward over one unpadded row.
fn full_logits(model: &Qwen3Vl<B>, ids: &[u32], images: Option<VisualInput<B>>) -> Vec<f32> {
    let mut batch = Batch::<B>::text(ids.to_vec());
    batch.images = images;
    let out = model.forward(&batch, None, None).unwrap();
    host_f32(model.logits(out.hidden))
}

#[test]
fn extended_cache_equals_full_forward_with_a_new_image() {
    let device = Default::default();
    let dir = data_dir().join("qwen3vl-tiny-a");
    let golden = Golden::open(&dir);
    let model = Qwen3Vl::<B>::load(&dir, &device).unwrap();
    let vocab = model.config.text_config.vocab_size;
    let prompt = golden.batch("image", &device);
    assert_eq!(prompt.batch_size(), 1);
    let prompt_ids = prompt.input_ids[0].clone();
    let prompt_image = prompt.images.clone().unwrap();

    // The new image: 40×100 → 32×96 → grid (1, 2, 6) → 1×3 merged tokens (gh ≠ gw).
    let pixels = VisionPreprocessConfig::from_model_dir(&dir).unwrap();
    let zoom =
        preprocess_image(&load_image(dir.join("image1_40x100.png")).unwrap(), &pixels).unwrap();
    assert_eq!(zoom.grid_thw, [1, 2, 6]);
    let zoom_rows = zoom.pixel_values.len() / pixels.row_len();
    let zoom_tensor = || {
        Tensor::<B, 2>::from_data(
            TensorData::new(zoom.pixel_values.clone(), [zoom_rows, pixels.row_len()]),
            &device,
        )
    };
    let (vs, ve, pad) = (
        model.config.vision_start_token_id,
        model.config.vision_end_token_id,
        model.config.image_token_id,
    );

    let mut cache = model.new_cache(1, 8);
    let first = host_f32(model.prefill(&prompt, &mut cache).unwrap());
    let mut cache = cache.fork(2);
    // Per row: the tokens after the prompt and the logits that followed each fed position.
    let mut seq: [Vec<u32>; 2] = [Vec::new(), Vec::new()];
    let mut seen: [Vec<(usize, Vec<f32>)>; 2] = [
        vec![(prompt_ids.len() - 1, first.clone())],
        vec![(prompt_ids.len() - 1, first)],
    ];
    let record = |seq: &[Vec<u32>; 2],
                  seen: &mut [Vec<(usize, Vec<f32>)>; 2],
                  logits: Vec<f32>,
                  rows: &[usize]| {
        for &r in rows {
            let at = prompt_ids.len() + seq[r].len() - 1;
            seen[r].push((at, logits[r * vocab..(r + 1) * vocab].to_vec()));
        }
    };

    // Ragged decode: row 1 sits out the third step.
    for step in [[Some(5), Some(8)], [Some(6), Some(9)], [Some(7), None]] {
        for (r, t) in step.iter().enumerate() {
            seq[r].extend(t);
        }
        let logits = host_f32(model.decode_rows(&step, &mut cache).unwrap());
        let rows: Vec<usize> = (0..2).filter(|&r| step[r].is_some()).collect();
        record(&seq, &mut seen, logits, &rows);
    }
    // A tool-response-like chunk with the new image for row 0, text only (shorter) for row 1.
    let chunk0: Vec<u32> = [
        vec![994, 10, 993, 11, 12, vs],
        vec![pad; 3],
        vec![ve, 13, 994, 10, 993, 14],
    ]
    .concat();
    let chunk1: Vec<u32> = vec![994, 10, 993, 15, 16];
    seq[0].extend(&chunk0);
    seq[1].extend(&chunk1);
    let images = VisualInput {
        pixel_values: zoom_tensor(),
        grid_thw: vec![zoom.grid_thw],
    };
    let logits = host_f32(
        model
            .extend(&[chunk0, chunk1], Some(images), &mut cache)
            .unwrap(),
    );
    record(&seq, &mut seen, logits, &[0, 1]);
    for step in [[Some(20), Some(21)], [None, Some(22)], [Some(23), Some(24)]] {
        for (r, t) in step.iter().enumerate() {
            seq[r].extend(t);
        }
        let logits = host_f32(model.decode_rows(&step, &mut cache).unwrap());
        let rows: Vec<usize> = (0..2).filter(|&r| step[r].is_some()).collect();
        record(&seq, &mut seen, logits, &rows);
    }

    for r in 0..2 {
        let ids = [prompt_ids.clone(), seq[r].clone()].concat();
        let images = if r == 0 {
            VisualInput {
                pixel_values: Tensor::cat(
                    vec![prompt_image.pixel_values.clone(), zoom_tensor()],
                    0,
                ),
                grid_thw: vec![prompt_image.grid_thw[0], zoom.grid_thw],
            }
        } else {
            prompt_image.clone()
        };
        let full = full_logits(&model, &ids, Some(images));
        for (at, cached) in &seen[r] {
            let reference = &full[at * vocab..(at + 1) * vocab];
            let diff = max_abs_diff(cached, reference, |_| true);
            assert!(diff < TOL, "row {r}, position {at}: max |Δlogit| = {diff}");
        }
        assert_eq!(seen[r].len(), 7);
    }
}

#[test]
fn extend_rejects_bad_chunks() {
    let device = Default::default();
    let dir = data_dir().join("qwen3vl-tiny-a");
    let model = Qwen3Vl::<B>::load(&dir, &device).unwrap();
    let mut cache = model.new_cache(1, 8);
    let err = model.extend(&[vec![1]], None, &mut cache).unwrap_err();
    assert!(err.to_string().contains("prefill"), "{err}");
    model
        .prefill(&Batch::text(vec![1, 2, 3]), &mut cache)
        .unwrap();
    let err = model
        .extend(&[vec![1], vec![2]], None, &mut cache)
        .unwrap_err();
    assert!(
        err.to_string()
            .contains("one (possibly empty) chunk per row"),
        "{err}"
    );
    let err = model.extend(&[vec![]], None, &mut cache).unwrap_err();
    assert!(err.to_string().contains("every chunk is empty"), "{err}");
    let err = model.extend(&[vec![5000]], None, &mut cache).unwrap_err();
    assert!(err.to_string().contains("outside the vocabulary"), "{err}");
    // An image pad run with no grid.
    let pad = model.config.image_token_id;
    assert!(model.extend(&[vec![pad; 4]], None, &mut cache).is_err());
}
