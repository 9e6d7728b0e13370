//! Continuing cached sequences with a multi-token chunk: the tool loop appends a tool response
//! (text, and images that go through the vision tower) after generated text and decodes on from
//! the KV cache instead of recomputing the whole sequence.
//!
//! The rule: row `b` of the chunk is laid out exactly as `get_rope_index` would lay it out if it
//! followed the row's cached tokens: its counter starts at the row's next position
//! `p = valid_count[b] + rope_delta[b]` (the id a decode step would give the next token), text
//! tokens take `p, p+1, …`, an image run takes `(cur, cur + r, cur + c)` and advances `cur` by
//! `max(gh, gw)`; the row's `rope_delta` grows by the chunk's own `max id + 1 − length`. Visual
//! rows are substituted and DeepStack features added at the chunk's image pads as in a prefill.
//!
//! Rows are ragged (a group's samples diverge): chunks are left-padded to the longest, padding is
//! masked out of attention and never counted, and a row may receive an empty chunk (it is left
//! untouched apart from masked padding slots). The logits returned for such a row are meaningless.

use burn::prelude::*;

use crate::cache::KvCache;
use crate::error::{ModelError, Result};
use crate::model::{Batch, Qwen3Vl, VisualInput};

impl<B: Backend> Qwen3Vl<B> {
    /// Appends `chunks[b]` to row `b` of `cache` (images, in row then sequence order, for the
    /// chunks' `<|image_pad|>` runs) and returns each row's next-token logits `[B, V]` (those
    /// after its chunk's last token).
    pub fn extend(
        &self,
        chunks: &[Vec<u32>],
        images: Option<VisualInput<B>>,
        cache: &mut KvCache<B>,
    ) -> Result<Tensor<B, 2>> {
        let hidden = self.extend_hidden(chunks, images, cache)?;
        let [b, l, d] = hidden.dims();
        let last = hidden.narrow(1, l - 1, 1).reshape([b, d]);
        Ok(self.language.logits(last))
    }

    /// [`extend`](Self::extend), returning the final hidden states `[B, L, d]` of every chunk
    /// position (chunks left-padded to the longest, `L`) instead of the last one's logits. Under
    /// an autodiff backend the gradient flows back through the cache into whatever filled it:
    /// the learner scores a group's samples as continuations of one prefilled prompt this way.
    pub fn extend_hidden(
        &self,
        chunks: &[Vec<u32>],
        images: Option<VisualInput<B>>,
        cache: &mut KvCache<B>,
    ) -> Result<Tensor<B, 3>> {
        if chunks.len() != cache.batch() {
            return Err(ModelError::input(
                "chunks",
                format!(
                    "{} chunks for a cache of {} rows; pass one (possibly empty) chunk per row",
                    chunks.len(),
                    cache.batch()
                ),
            ));
        }
        if cache.is_empty() {
            return Err(ModelError::input(
                "cache",
                "the cache is empty: prefill the prompt before extending it",
            ));
        }
        let len = chunks.iter().map(Vec::len).max().unwrap_or(0);
        if len == 0 {
            return Err(ModelError::input("chunks", "every chunk is empty"));
        }
        let vocab = self.config.text_config.vocab_size;
        let limit = self.config.text_config.max_position_embeddings;
        for (row, chunk) in chunks.iter().enumerate() {
            if let Some(&bad) = chunk.iter().find(|&&id| id as usize >= vocab) {
                return Err(ModelError::input(
                    "chunks",
                    format!("row {row} holds token id {bad}, outside the vocabulary of {vocab}"),
                ));
            }
            let total = cache.valid_count()[row] + chunk.len();
            if total > limit {
                return Err(ModelError::input(
                    "chunks",
                    format!(
                        "row {row} would hold {total} tokens, more than max_position_embeddings {limit}"
                    ),
                ));
            }
        }
        // Padding slots hold a real id (masked), so any in-vocabulary id does.
        let pad = chunks.iter().flatten().next().copied().unwrap_or(0);
        let batch = Batch {
            input_ids: chunks
                .iter()
                .map(|c| [vec![pad; len - c.len()], c.clone()].concat())
                .collect(),
            attention_mask: chunks
                .iter()
                .map(|c| [vec![false; len - c.len()], vec![true; c.len()]].concat())
                .collect(),
            images,
            videos: None,
            segment_ids: None,
        };
        self.validate_visual(&batch)?;
        Ok(self.run(&batch, Some((cache, true)), None)?.hidden)
    }

    /// Feeds one token to each row whose entry is `Some` and leaves the others untouched;
    /// returns next-token logits `[B, V]` (meaningless for the untouched rows).
    pub fn decode_rows(
        &self,
        tokens: &[Option<u32>],
        cache: &mut KvCache<B>,
    ) -> Result<Tensor<B, 2>> {
        let chunks: Vec<Vec<u32>> = tokens.iter().map(|t| t.iter().copied().collect()).collect();
        self.extend(&chunks, None, cache)
    }
}
