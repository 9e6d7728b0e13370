//! Text tokenisation for Qwen3-VL.
//!
//! This module holds:
//! - [`Tokenizer`], a thin wrapper around a HuggingFace `tokenizers` tokenizer loaded from a
//!   checkpoint's `tokenizer.json` (byte-level BPE, 151,669 ids for Qwen3). Encoding inserts no
//!   special tokens (Qwen adds no BOS/EOS); special tokens written in the text, such as
//!   `<|im_start|>` or `<|image_pad|>`, map to their single ids.
//! - [`SpecialTokens`], the ids of the chat and vision marker tokens, resolved from the tokenizer
//!   and checked against the model config ([`ConfigTokenIds`]).
//! - [`IncrementalDecoder`], a streaming detokeniser that turns generated ids into text pieces,
//!   emitting text only once the bytes decoded so far form complete UTF-8 characters.
//! - [`TokenizerError`], the errors of all of the above.

use std::path::{Path, PathBuf};

use serde::{Deserialize, Serialize};
use thiserror::Error;

/// Name of the tokenizer file inside a model directory.
pub const TOKENIZER_FILE: &str = "tokenizer.json";

/// Errors raised while loading or using a [`Tokenizer`].
#[derive(Debug, Error)]
pub enum TokenizerError {
    /// The tokenizer file does not exist.
    #[error(
        "tokenizer file {} not found; a Qwen3-VL model directory must contain tokenizer.json",
        path.display()
    )]
    NotFound {
        /// The path that was looked up.
        path: PathBuf,
    },
    /// The tokenizer file exists but could not be read.
    #[error("cannot read tokenizer file {}: {source}", path.display())]
    Io {
        /// The file that failed to read.
        path: PathBuf,
        /// The underlying I/O error.
        #[source]
        source: std::io::Error,
    },
    /// The tokenizer file is not a valid HuggingFace `tokenizers` JSON file.
    #[error(
        "tokenizer file {} is corrupt or not a huggingface tokenizer.json: {message}",
        path.display()
    )]
    Parse {
        /// The file that failed to parse (`<memory>` for [`Tokenizer::from_bytes`]).
        path: PathBuf,
        /// What the parser reported.
        message: String,
    },
    /// Encoding text failed.
    #[error("tokenizer failed to encode text: {0}")]
    Encode(String),
    /// Decoding ids failed.
    #[error("tokenizer failed to decode ids: {0}")]
    Decode(String),
    /// A special token is neither in the tokenizer nor given by the model config.
    #[error(
        "special token {token} is not in the tokenizer vocabulary and the model config gives no id \
         for it; is this a Qwen3-VL tokenizer?"
    )]
    MissingSpecialToken {
        /// The token text, e.g. `<|image_pad|>`.
        token: &'static str,
    },
    /// The tokenizer and the model config disagree on a special token id.
    #[error(
        "special token {token} has id {tokenizer_id} in the tokenizer but the model config says \
         {field} = {config_id}; the tokenizer and the checkpoint config do not belong together"
    )]
    SpecialTokenMismatch {
        /// The token text.
        token: &'static str,
        /// The config field that holds the id (e.g. `image_token_id`).
        field: &'static str,
        /// The id in the tokenizer vocabulary.
        tokenizer_id: u32,
        /// The id in the model config.
        config_id: u32,
    },
}

/// A Qwen tokenizer loaded from a `tokenizer.json`.
///
/// Cloning copies the whole vocabulary; share it by reference (it is `Send + Sync`).
#[derive(Clone)]
pub struct Tokenizer {
    inner: tokenizers::Tokenizer,
    path: Option<PathBuf>,
}

impl std::fmt::Debug for Tokenizer {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        f.debug_struct("Tokenizer")
            .field("path", &self.path)
            .field("vocab_size", &self.vocab_size())
            .finish()
    }
}

impl Tokenizer {
    /// Loads `tokenizer.json` from a model directory.
    pub fn from_model_dir(dir: impl AsRef<Path>) -> Result<Self, TokenizerError> {
        Self::from_file(dir.as_ref().join(TOKENIZER_FILE))
    }

    /// Loads a tokenizer from a `tokenizer.json` file.
    ///
    /// Errors name the path and say whether the file is missing, unreadable or corrupt.
    pub fn from_file(path: impl AsRef<Path>) -> Result<Self, TokenizerError> {
        let path = path.as_ref();
        let bytes = std::fs::read(path).map_err(|source| {
            if source.kind() == std::io::ErrorKind::NotFound {
                TokenizerError::NotFound {
                    path: path.to_path_buf(),
                }
            } else {
                TokenizerError::Io {
                    path: path.to_path_buf(),
                    source,
                }
            }
        })?;
        let mut tokenizer = Self::parse(&bytes, path)?;
        tokenizer.path = Some(path.to_path_buf());
        Ok(tokenizer)
    }

    /// Parses a tokenizer from the bytes of a `tokenizer.json`.
    pub fn from_bytes(bytes: &[u8]) -> Result<Self, TokenizerError> {
        Self::parse(bytes, Path::new("<memory>"))
    }

    fn parse(bytes: &[u8], path: &Path) -> Result<Self, TokenizerError> {
        if bytes.iter().all(u8::is_ascii_whitespace) {
            return Err(TokenizerError::Parse {
                path: path.to_path_buf(),
                message: "the file is empty".into(),
            });
        }
        let inner =
            tokenizers::Tokenizer::from_bytes(bytes).map_err(|e| TokenizerError::Parse {
                path: path.to_path_buf(),
                message: e.to_string(),
            })?;
        Ok(Self { inner, path: None })
    }

    /// The file this tokenizer was loaded from, if any.
    pub fn path(&self) -> Option<&Path> {
        self.path.as_deref()
    }

    /// The wrapped `tokenizers` tokenizer.
    pub fn inner(&self) -> &tokenizers::Tokenizer {
        &self.inner
    }

    /// Encodes text to ids without inserting any special tokens.
    ///
    /// Special tokens written in the text (`<|im_start|>`, `<|image_pad|>`, …) become their
    /// single ids; everything else is byte-level BPE.
    pub fn encode(&self, text: &str) -> Result<Vec<u32>, TokenizerError> {
        let encoding = self
            .inner
            .encode(text, false)
            .map_err(|e| TokenizerError::Encode(e.to_string()))?;
        Ok(encoding.get_ids().to_vec())
    }

    /// Decodes ids to text. With `skip_special_tokens`, tokens marked special in the tokenizer
    /// (`<|im_end|>`, `<|image_pad|>`, …) are dropped; `<think>` or `<tool_call>` are not special
    /// in Qwen's tokenizer and are kept. Ids outside the vocabulary are skipped.
    pub fn decode(&self, ids: &[u32], skip_special_tokens: bool) -> Result<String, TokenizerError> {
        self.inner
            .decode(ids, skip_special_tokens)
            .map_err(|e| TokenizerError::Decode(e.to_string()))
    }

    /// The id of a token string (vocabulary or added token), if it exists.
    pub fn token_to_id(&self, token: &str) -> Option<u32> {
        self.inner.token_to_id(token)
    }

    /// The token string of an id (byte-level form for vocabulary tokens), if it exists.
    pub fn id_to_token(&self, id: u32) -> Option<String> {
        self.inner.id_to_token(id)
    }

    /// Number of ids the tokenizer knows, added tokens included (151,669 for Qwen3).
    ///
    /// The model's embedding table is larger (151,936 rows); the extra rows are padding.
    pub fn vocab_size(&self) -> usize {
        self.inner.get_vocab_size(true)
    }

    /// Resolves the special tokens from the tokenizer alone.
    pub fn special_tokens(&self) -> Result<SpecialTokens, TokenizerError> {
        SpecialTokens::resolve(self, &ConfigTokenIds::default())
    }

    /// Starts a streaming detokeniser over this tokenizer.
    pub fn incremental_decoder(&self, skip_special_tokens: bool) -> IncrementalDecoder<'_> {
        IncrementalDecoder::new(self, skip_special_tokens)
    }
}

/// Special-token ids given by a model config (`config.json` of a Qwen3-VL checkpoint).
///
/// Field names match the config keys, so this deserialises from the top level of `config.json`
/// (other keys are ignored). `None` means "not given".
#[derive(Clone, Copy, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
#[serde(default)]
pub struct ConfigTokenIds {
    /// `image_token_id` (`<|image_pad|>`).
    pub image_token_id: Option<u32>,
    /// `video_token_id` (`<|video_pad|>`).
    pub video_token_id: Option<u32>,
    /// `vision_start_token_id` (`<|vision_start|>`).
    pub vision_start_token_id: Option<u32>,
    /// `vision_end_token_id` (`<|vision_end|>`).
    pub vision_end_token_id: Option<u32>,
}

/// Ids of the chat and vision marker tokens of Qwen3-VL.
#[derive(Clone, Copy, Debug, PartialEq, Eq, Serialize, Deserialize)]
pub struct SpecialTokens {
    /// `<|endoftext|>`: the pad token (left padding in batches); also ends base-model text.
    pub endoftext: u32,
    /// `<|im_start|>`: opens a chat turn.
    pub im_start: u32,
    /// `<|im_end|>`: closes a chat turn; ends generation.
    pub im_end: u32,
    /// `<|vision_start|>`: opens a visual block.
    pub vision_start: u32,
    /// `<|vision_end|>`: closes a visual block.
    pub vision_end: u32,
    /// `<|image_pad|>`: one per merged image token.
    pub image_pad: u32,
    /// `<|video_pad|>`: one per merged video token.
    pub video_pad: u32,
}

impl SpecialTokens {
    /// The ids of the released Qwen3 / Qwen3-VL tokenizer.
    pub const QWEN3_VL: SpecialTokens = SpecialTokens {
        endoftext: 151643,
        im_start: 151644,
        im_end: 151645,
        vision_start: 151652,
        vision_end: 151653,
        image_pad: 151655,
        video_pad: 151656,
    };

    /// Token text of `<|endoftext|>`.
    pub const ENDOFTEXT: &'static str = "<|endoftext|>";
    /// Token text of `<|im_start|>`.
    pub const IM_START: &'static str = "<|im_start|>";
    /// Token text of `<|im_end|>`.
    pub const IM_END: &'static str = "<|im_end|>";
    /// Token text of `<|vision_start|>`.
    pub const VISION_START: &'static str = "<|vision_start|>";
    /// Token text of `<|vision_end|>`.
    pub const VISION_END: &'static str = "<|vision_end|>";
    /// Token text of `<|image_pad|>`.
    pub const IMAGE_PAD: &'static str = "<|image_pad|>";
    /// Token text of `<|video_pad|>`.
    pub const VIDEO_PAD: &'static str = "<|video_pad|>";

    /// Resolves the ids from the tokenizer and checks them against the model config.
    ///
    /// A token found in the tokenizer takes the tokenizer's id; if the config gives a different
    /// id for it, that is an error ([`TokenizerError::SpecialTokenMismatch`]). A token missing
    /// from the tokenizer takes the config's id when there is one, else it is an error.
    pub fn resolve(tokenizer: &Tokenizer, config: &ConfigTokenIds) -> Result<Self, TokenizerError> {
        let get = |token: &'static str,
                   field: &'static str,
                   config_id: Option<u32>|
         -> Result<u32, TokenizerError> {
            match (tokenizer.token_to_id(token), config_id) {
                (Some(t), Some(c)) if t != c => Err(TokenizerError::SpecialTokenMismatch {
                    token,
                    field,
                    tokenizer_id: t,
                    config_id: c,
                }),
                (Some(t), _) => Ok(t),
                (None, Some(c)) => Ok(c),
                (None, None) => Err(TokenizerError::MissingSpecialToken { token }),
            }
        };
        Ok(Self {
            endoftext: get(Self::ENDOFTEXT, "", None)?,
            im_start: get(Self::IM_START, "", None)?,
            im_end: get(Self::IM_END, "", None)?,
            vision_start: get(
                Self::VISION_START,
                "vision_start_token_id",
                config.vision_start_token_id,
            )?,
            vision_end: get(
                Self::VISION_END,
                "vision_end_token_id",
                config.vision_end_token_id,
            )?,
            image_pad: get(Self::IMAGE_PAD, "image_token_id", config.image_token_id)?,
            video_pad: get(Self::VIDEO_PAD, "video_token_id", config.video_token_id)?,
        })
    }

    /// The padding id (`<|endoftext|>`).
    pub fn pad(&self) -> u32 {
        self.endoftext
    }

    /// Ids that end generation of a chat reply: `<|im_end|>` and `<|endoftext|>`.
    pub fn eos_ids(&self) -> [u32; 2] {
        [self.im_end, self.endoftext]
    }

    /// The `mm_token_type_ids` value of a token: 1 for image pads, 2 for video pads, 0 else.
    pub fn mm_token_type(&self, id: u32) -> u8 {
        if id == self.image_pad {
            1
        } else if id == self.video_pad {
            2
        } else {
            0
        }
    }
}

/// Streaming detokeniser: feed generated ids one at a time, get text pieces back.
///
/// Byte-level BPE tokens can end inside a multi-byte UTF-8 character; such a piece decodes to
/// U+FFFD. The decoder holds text back until the bytes form complete characters, so the
/// concatenation of all pieces (plus [`flush`](Self::flush)) equals decoding all ids at once.
///
/// It keeps a small window of ids: text is computed as the difference between decoding
/// `ids[prefix..]` and `ids[prefix..read]`, which is correct for decoders that depend on the
/// neighbouring tokens (e.g. leading-space handling).
#[derive(Debug)]
pub struct IncrementalDecoder<'a> {
    tokenizer: &'a Tokenizer,
    skip_special_tokens: bool,
    ids: Vec<u32>,
    prefix_offset: usize,
    read_offset: usize,
}

impl<'a> IncrementalDecoder<'a> {
    /// A decoder with no ids yet.
    pub fn new(tokenizer: &'a Tokenizer, skip_special_tokens: bool) -> Self {
        Self {
            tokenizer,
            skip_special_tokens,
            ids: Vec::new(),
            prefix_offset: 0,
            read_offset: 0,
        }
    }

    /// Adds one id; returns the new text it completes, or `None` while the bytes so far end
    /// inside a character (or the id decodes to nothing, e.g. a skipped special token).
    pub fn push(&mut self, id: u32) -> Result<Option<String>, TokenizerError> {
        self.ids.push(id);
        let prefix_text = self.decode_window(self.prefix_offset, self.read_offset)?;
        let new_text = self.decode_window(self.prefix_offset, self.ids.len())?;
        if new_text.len() <= prefix_text.len() || new_text.ends_with('\u{FFFD}') {
            return Ok(None);
        }
        let piece = new_text_after(&prefix_text, &new_text);
        self.prefix_offset = self.read_offset;
        self.read_offset = self.ids.len();
        // Ids before the window are never decoded again.
        if self.prefix_offset > 0 {
            self.ids.drain(..self.prefix_offset);
            self.read_offset -= self.prefix_offset;
            self.prefix_offset = 0;
        }
        Ok(Some(piece))
    }

    /// Emits whatever text is still held back (incomplete characters come out as U+FFFD) and
    /// clears the pending state. Call at the end of generation.
    pub fn flush(&mut self) -> Result<Option<String>, TokenizerError> {
        let prefix_text = self.decode_window(self.prefix_offset, self.read_offset)?;
        let new_text = self.decode_window(self.prefix_offset, self.ids.len())?;
        self.ids.clear();
        self.prefix_offset = 0;
        self.read_offset = 0;
        if new_text.len() <= prefix_text.len() {
            return Ok(None);
        }
        Ok(Some(new_text_after(&prefix_text, &new_text)))
    }

    fn decode_window(&self, start: usize, end: usize) -> Result<String, TokenizerError> {
        if start >= end {
            return Ok(String::new());
        }
        self.tokenizer
            .decode(&self.ids[start..end], self.skip_special_tokens)
    }
}

/// The part of `new` after `prefix`; falls back to the part after the longest common prefix when
/// the decoder is not prefix-stable.
fn new_text_after(prefix: &str, new: &str) -> String {
    if let Some(rest) = new.strip_prefix(prefix) {
        return rest.to_string();
    }
    let common = prefix
        .char_indices()
        .zip(new.chars())
        .take_while(|((_, a), b)| a == b)
        .last()
        .map(|((i, c), _)| i + c.len_utf8())
        .unwrap_or(0);
    new[common..].to_string()
}

/// Qwen3-VL's special tokens in the order [`byte_level_tokenizer_json`] expects their ids.
pub const QWEN_SPECIAL_TOKENS: [&str; 7] = [
    "<|endoftext|>",
    "<|im_start|>",
    "<|im_end|>",
    "<|vision_start|>",
    "<|vision_end|>",
    "<|image_pad|>",
    "<|video_pad|>",
];

/// A byte-level BPE `tokenizer.json` with no merges: ids 0–255 are the 256 bytes (GPT-2 byte
/// alphabet), each `(content, id)` of `specials` is an added special token and each of `plain`
/// an added ordinary token (kept by `decode(.., skip_special_tokens = true)`, like `<think>`).
/// Tiny models (tests, the embedded demo) use it so any text round-trips through a small vocabulary.
pub fn byte_level_tokenizer_json(specials: &[(&str, u32)], plain: &[(&str, u32)]) -> String {
    let mut printable: Vec<u32> = (b'!' as u32..=b'~' as u32).collect();
    printable.extend(0xA1..=0xAC);
    printable.extend(0xAE..=0xFF);
    let mut vocab = serde_json::Map::new();
    let mut extra = 0;
    for b in 0u32..256 {
        let c = if printable.contains(&b) {
            char::from_u32(b).expect("latin-1 code point")
        } else {
            extra += 1;
            char::from_u32(255 + extra).expect("code point below 0x200")
        };
        vocab.insert(c.to_string(), serde_json::json!(b));
    }
    // `tokenizers` renumbers added tokens that the model vocabulary lacks, so the added tokens
    // are in the vocabulary too, and the ids in between are reserved entries that BPE (with no
    // merges) never emits.
    let added_ids: Vec<u32> = specials.iter().chain(plain).map(|(_, id)| *id).collect();
    let last_added = added_ids.iter().copied().max().unwrap_or(255);
    for id in (256..last_added).filter(|id| !added_ids.contains(id)) {
        vocab.insert(format!("<|reserved_{id}|>"), serde_json::json!(id));
    }
    for (content, id) in specials.iter().chain(plain) {
        vocab.insert(content.to_string(), serde_json::json!(id));
    }
    let added: Vec<serde_json::Value> = specials
        .iter()
        .map(|t| (t, true))
        .chain(plain.iter().map(|t| (t, false)))
        .map(|((content, id), special)| {
            serde_json::json!({
                "id": id, "content": content, "single_word": false, "lstrip": false,
                "rstrip": false, "normalized": false, "special": special
            })
        })
        .collect();
    let byte_level = serde_json::json!({
        "type": "ByteLevel", "add_prefix_space": false, "trim_offsets": false, "use_regex": true
    });
    serde_json::json!({
        "version": "1.0",
        "truncation": null,
        "padding": null,
        "added_tokens": added,
        "normalizer": null,
        "pre_tokenizer": byte_level,
        "post_processor": null,
        "decoder": byte_level,
        "model": {
            "type": "BPE", "dropout": null, "unk_token": null,
            "continuing_subword_prefix": null, "end_of_word_suffix": null, "fuse_unk": false,
            "byte_fallback": false, "ignore_merges": false, "vocab": vocab, "merges": []
        }
    })
    .to_string()
}
