//! The template text of tool responses, as Qwen3-VL's chat template renders `tool` messages
//! (one user turn for all responses of an assistant turn, each in its own block):
//!
//! ```text
//! <|im_end|>\n<|im_start|>user\n<tool_response>\n{text}{image placeholders}\n</tool_response>…<|im_end|>\n<|im_start|>assistant\n
//! ```
//!
//! The leading `<|im_end|>` closes the assistant turn that stopped at `</tool_call>`; it is left
//! out when the policy ended the turn with `<|im_end|>` itself. Each image of a response is one
//! `<|vision_start|><|image_pad|><|vision_end|>` after the text (the template's rendering of a
//! `tool` message whose content is the text then the images), expanded to the image's merged
//! token count before tokenising. None of these tokens is trained on.

use temper_model::chat::{IMAGE_PAD, VISION_END, VISION_START};

/// One tool response: its text and how many images follow it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct ResponsePart<'a> {
    /// The text the model is shown.
    pub text: &'a str,
    /// Images shown after the text.
    pub images: usize,
}

/// The text appended after an assistant turn that called tools (see the module doc).
pub fn tool_response_text(parts: &[ResponsePart<'_>], turn_closed: bool) -> String {
    let mut text = String::new();
    if !turn_closed {
        text.push_str("<|im_end|>");
    }
    text.push_str("\n<|im_start|>user");
    for part in parts {
        text.push_str("\n<tool_response>\n");
        text.push_str(part.text);
        for _ in 0..part.images {
            text.push_str(VISION_START);
            text.push_str(IMAGE_PAD);
            text.push_str(VISION_END);
        }
        text.push_str("\n</tool_response>");
    }
    text.push_str("<|im_end|>\n<|im_start|>assistant\n");
    text
}

/// `text` cut to at most `max_chars` characters, marked when cut.
pub fn truncate_chars(text: &str, max_chars: usize) -> String {
    match text.char_indices().nth(max_chars) {
        None => text.to_string(),
        Some((end, _)) => format!("{}…(truncated)", &text[..end]),
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use temper_model::chat::{ChatTemplate, ContentPart, Message, RenderOptions};

    /// The chunk continues the prompt + assistant text exactly as the chat template renders the
    /// whole conversation.
    #[test]
    fn matches_the_chat_template() {
        let user = Message::user("What is 6*7? Zoom in too.");
        let assistant_text = "<tool_call>\n{\"name\": \"calculator\", \"arguments\": {\"expression\": \"6*7\"}}\n</tool_call>\n<tool_call>\n{\"name\": \"image_zoom\", \"arguments\": {\"bbox_2d\": [0, 0, 10, 10]}}\n</tool_call>";
        let template = ChatTemplate::builtin();
        let prompt = template
            .render(std::slice::from_ref(&user), &RenderOptions::generation())
            .unwrap();
        let conversation = [
            user,
            Message::assistant(assistant_text),
            Message::tool("42"),
            Message::new(
                "tool",
                vec![ContentPart::text("Zoomed."), ContentPart::Image],
            ),
        ];
        let full = template
            .render(&conversation, &RenderOptions::generation())
            .unwrap();
        let parts = [
            ResponsePart {
                text: "42",
                images: 0,
            },
            ResponsePart {
                text: "Zoomed.",
                images: 1,
            },
        ];
        let ours = format!(
            "{prompt}{assistant_text}{}",
            tool_response_text(&parts, false)
        );
        assert_eq!(ours, full);
        // A turn the policy closed itself does not get a second <|im_end|>.
        let closed = format!(
            "{prompt}{assistant_text}<|im_end|>{}",
            tool_response_text(&parts, true)
        );
        assert_eq!(closed, full);
    }

    #[test]
    fn truncation_counts_characters() {
        assert_eq!(truncate_chars("héllo", 10), "héllo");
        assert_eq!(truncate_chars("héllo", 2), "hé…(truncated)");
    }
}
