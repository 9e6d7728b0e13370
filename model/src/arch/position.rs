//! MRoPE position ids (`get_rope_index`) computed on the host from token ids and visual grids.
//!
//! Per sequence, over its attended tokens only, with a running counter `cur`: a text token gets
//! `(cur, cur, cur)`; a visual run (one image, or one temporal patch of a video) with merged
//! grid `gh × gw` gives its token at merged row `r`, col `c` the ids `(cur, cur + r, cur + c)`,
//! then `cur += max(gh, gw)`. Padded positions get 0; `rope_delta = max id + 1 − valid length`.

use crate::error::{ModelError, Result};

/// Token ids that mark visual tokens.
#[derive(Debug, Clone, Copy)]
pub struct VisualTokens {
    pub image_token_id: u32,
    pub video_token_id: u32,
    pub spatial_merge_size: usize,
}

/// `[3][B][L]` position ids and `[B]` deltas.
#[derive(Debug, Clone, PartialEq)]
pub struct RopeIndex {
    /// `positions[axis][b][l]`, axis 0 = T, 1 = H, 2 = W.
    pub positions: [Vec<Vec<i64>>; 3],
    pub rope_deltas: Vec<i64>,
}

impl RopeIndex {
    /// Flattened `[3, B, L]` row-major.
    pub fn flat(&self) -> Vec<i64> {
        self.positions
            .iter()
            .flat_map(|axis| axis.iter().flatten().copied())
            .collect()
    }
}

/// Computes MRoPE ids for a left- (or right-) padded batch.
///
/// Images are consumed in order across the whole batch (`image_grids`, one `(t, h, w)` each in
/// patches), and likewise videos, whose every temporal patch is its own visual run.
pub fn rope_index(
    input_ids: &[Vec<u32>],
    attention_mask: &[Vec<bool>],
    image_grids: &[[usize; 3]],
    video_grids: &[[usize; 3]],
    tokens: VisualTokens,
) -> Result<RopeIndex> {
    rope_index_packed(
        input_ids,
        attention_mask,
        None,
        image_grids,
        video_grids,
        tokens,
    )
}

/// [`rope_index`] for rows that pack several sequences: `segments[b][l]` names the sequence of
/// each token, and positions restart at 0 where it changes. `rope_deltas` then describe each
/// row's last sequence.
pub fn rope_index_packed(
    input_ids: &[Vec<u32>],
    attention_mask: &[Vec<bool>],
    segments: Option<&[Vec<u32>]>,
    image_grids: &[[usize; 3]],
    video_grids: &[[usize; 3]],
    tokens: VisualTokens,
) -> Result<RopeIndex> {
    let m = tokens.spatial_merge_size;
    let batch = input_ids.len();
    let seq = input_ids.first().map_or(0, Vec::len);
    let mut positions: [Vec<Vec<i64>>; 3] = std::array::from_fn(|_| vec![vec![0i64; seq]; batch]);
    let mut rope_deltas = Vec::with_capacity(batch);

    // Runs of visual tokens still expected, as (merged rows, merged cols) per run.
    let mut image_runs = image_grids
        .iter()
        .map(|&[t, h, w]| {
            if t != 1 {
                return Err(ModelError::input(
                    "image_grid_thw",
                    format!("an image grid must have t = 1, got ({t}, {h}, {w})"),
                ));
            }
            Ok((h / m, w / m))
        })
        .collect::<Result<Vec<_>>>()?
        .into_iter();
    let mut video_runs = video_grids
        .iter()
        .flat_map(|&[t, h, w]| std::iter::repeat_n((h / m, w / m), t))
        .collect::<Vec<_>>()
        .into_iter();

    for b in 0..batch {
        let ids = &input_ids[b];
        let mask = &attention_mask[b];
        if ids.len() != seq || mask.len() != seq {
            return Err(ModelError::input(
                "input_ids",
                "every row of input_ids and attention_mask must have the same length",
            ));
        }
        let valid: Vec<usize> = (0..seq).filter(|&l| mask[l]).collect();
        let mut cur: i64 = 0;
        let mut max_id: i64 = -1;
        let mut k = 0;
        let segment_of = |l: usize| segments.map_or(0, |s| s[b][l]);
        let mut segment = valid.first().map_or(0, |&l| segment_of(l));
        let mut segment_start = 0;
        while k < valid.len() {
            if segment_of(valid[k]) != segment {
                segment = segment_of(valid[k]);
                segment_start = k;
                cur = 0;
                max_id = -1;
            }
            let token = ids[valid[k]];
            let (runs, what) = if token == tokens.image_token_id {
                (&mut image_runs, "image")
            } else if token == tokens.video_token_id {
                (&mut video_runs, "video")
            } else {
                for axis in &mut positions {
                    axis[b][valid[k]] = cur;
                }
                max_id = max_id.max(cur);
                cur += 1;
                k += 1;
                continue;
            };
            let Some((gh, gw)) = runs.next() else {
                return Err(ModelError::input(
                    format!("{what}_grid_thw"),
                    format!(
                        "input_ids row {b} has more <|{what}_pad|> runs than {what}_grid_thw describes; \
                         each {what} needs one grid row (one per temporal patch for videos)"
                    ),
                ));
            };
            let count = gh * gw;
            let pad_id = token;
            let run_ok =
                k + count <= valid.len() && valid[k..k + count].iter().all(|&l| ids[l] == pad_id);
            if !run_ok {
                return Err(ModelError::input(
                    format!("{what}_grid_thw"),
                    format!(
                        "input_ids row {b}: a {what} run starting at position {} should have {count} \
                         <|{what}_pad|> tokens ({gh}×{gw} merged patches) but has fewer; the grid \
                         and the prompt's placeholders disagree",
                        valid[k]
                    ),
                ));
            }
            for r in 0..gh {
                for c in 0..gw {
                    let l = valid[k + r * gw + c];
                    positions[0][b][l] = cur;
                    positions[1][b][l] = cur + r as i64;
                    positions[2][b][l] = cur + c as i64;
                }
            }
            max_id = max_id.max(cur + (gh.max(gw) as i64) - 1);
            cur += gh.max(gw) as i64;
            k += count;
        }
        rope_deltas.push(max_id + 1 - (valid.len() - segment_start) as i64);
    }
    let unused_images = image_runs.len();
    let unused_videos = video_runs.len();
    if unused_images > 0 || unused_videos > 0 {
        return Err(ModelError::input(
            if unused_images > 0 {
                "image_grid_thw"
            } else {
                "video_grid_thw"
            },
            format!(
                "{unused_images} image and {unused_videos} video-patch grids have no <|image_pad|>/<|video_pad|> \
                 run in input_ids; the prompt lost its vision placeholders"
            ),
        ));
    }
    Ok(RopeIndex {
        positions,
        rope_deltas,
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    const TOKENS: VisualTokens = VisualTokens {
        image_token_id: 9,
        video_token_id: 8,
        spatial_merge_size: 2,
    };

    #[test]
    fn spec_example_four_text_then_two_by_two_image() {
        // 4 text tokens, 2×2 merged image (4×4 patches), then 2 text tokens.
        let ids = vec![vec![1, 2, 3, 4, 9, 9, 9, 9, 5, 6]];
        let mask = vec![vec![true; 10]];
        let index = rope_index(&ids, &mask, &[[1, 4, 4]], &[], TOKENS).unwrap();
        assert_eq!(index.positions[0][0], vec![0, 1, 2, 3, 4, 4, 4, 4, 6, 7]);
        assert_eq!(index.positions[1][0], vec![0, 1, 2, 3, 4, 4, 5, 5, 6, 7]);
        assert_eq!(index.positions[2][0], vec![0, 1, 2, 3, 4, 5, 4, 5, 6, 7]);
        assert_eq!(index.rope_deltas, vec![8 - 10]);
    }

    #[test]
    fn left_padding_and_video_patches() {
        // row 0: 2 pads, text, video with 2 temporal patches of 1×2 merged tokens, separated by text.
        let ids = vec![vec![0, 0, 1, 8, 8, 2, 8, 8, 3]];
        let mask = vec![vec![false, false, true, true, true, true, true, true, true]];
        let index = rope_index(&ids, &mask, &[], &[[2, 2, 4]], TOKENS).unwrap();
        assert_eq!(index.positions[0][0], vec![0, 0, 0, 1, 1, 3, 4, 4, 6]);
        assert_eq!(index.positions[2][0], vec![0, 0, 0, 1, 2, 3, 4, 5, 6]);
        assert_eq!(index.rope_deltas, vec![7 - 7]);
    }

    #[test]
    fn packed_rows_restart_positions_per_segment() {
        let ids = vec![vec![1, 2, 9, 9, 9, 9, 3, 4, 5]];
        let mask = vec![vec![true; 9]];
        let segments = vec![vec![0, 0, 0, 0, 0, 0, 0, 1, 1]];
        let index =
            rope_index_packed(&ids, &mask, Some(&segments), &[[1, 4, 4]], &[], TOKENS).unwrap();
        assert_eq!(index.positions[0][0], vec![0, 1, 2, 2, 2, 2, 4, 0, 1]);
        assert_eq!(index.positions[1][0], vec![0, 1, 2, 2, 3, 3, 4, 0, 1]);
        assert_eq!(index.rope_deltas, vec![0]);
    }

    #[test]
    fn mismatched_grids_are_clear_errors() {
        let ids = vec![vec![1, 9, 9, 9, 2]];
        let mask = vec![vec![true; 5]];
        let err = rope_index(&ids, &mask, &[[1, 4, 4]], &[], TOKENS).unwrap_err();
        assert!(err.to_string().contains("image_grid_thw"), "{err}");
        let err = rope_index(&ids, &mask, &[], &[], TOKENS).unwrap_err();
        assert!(err.to_string().contains("more <|image_pad|> runs"), "{err}");
        let err =
            rope_index(&[vec![1, 2]], &[vec![true; 2]], &[[1, 2, 2]], &[], TOKENS).unwrap_err();
        assert!(err.to_string().contains("no <|image_pad|>"), "{err}");
    }
}
