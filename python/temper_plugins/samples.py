"""What a reward plug-in sees of one generated response: `Sample` and its parts.

These mirror `temper_rewards::Sample` in Rust. JSON values (metadata, tool-call arguments)
arrive parsed; token counts are `None` when Temper did not know them.
"""

from __future__ import annotations

import json
from dataclasses import dataclass, field
from typing import Any, List, Optional

from temper_plugins._proto import reward_pb2

# Tool-call statuses by their protobuf enum value.
_STATUS = {
    reward_pb2.TOOL_CALL_STATUS_UNSPECIFIED: "ok",
    reward_pb2.TOOL_CALL_STATUS_OK: "ok",
    reward_pb2.TOOL_CALL_STATUS_MALFORMED: "malformed",
    reward_pb2.TOOL_CALL_STATUS_UNKNOWN_TOOL: "unknown_tool",
    reward_pb2.TOOL_CALL_STATUS_FAILED: "failed",
    reward_pb2.TOOL_CALL_STATUS_TIMEOUT: "timeout",
}
_STATUS_VALUE = {name: value for value, name in _STATUS.items() if value != 0}


@dataclass
class Message:
    """One chat message of the prompt (text only)."""

    role: str
    content: str


@dataclass
class ToolCallRecord:
    """One tool call as the actor saw and executed it.

    `status` is one of "ok", "malformed", "unknown_tool", "failed", "timeout".
    """

    name: Optional[str] = None
    arguments: Any = None
    status: str = "ok"
    output: str = ""


@dataclass
class Turn:
    """One assistant turn of a multi-turn rollout and the tool calls it made."""

    assistant: str = ""
    tool_calls: List[ToolCallRecord] = field(default_factory=list)


@dataclass
class Sample:
    """One response to score.

    `response` is the final answer; `turns` holds every turn of a tool-using rollout.
    """

    prompt: str = ""
    messages: List[Message] = field(default_factory=list)
    response: str = ""
    reference: Optional[str] = None
    metadata: Any = None
    response_tokens: Optional[int] = None
    max_response_tokens: Optional[int] = None
    turns: List[Turn] = field(default_factory=list)

    @classmethod
    def from_proto(cls, pb: "reward_pb2.Sample") -> "Sample":
        """Converts a message; raises ValueError when its JSON fields do not parse."""
        return cls(
            prompt=pb.prompt,
            messages=[Message(m.role, m.content) for m in pb.messages],
            response=pb.response,
            reference=pb.reference if pb.HasField("reference") else None,
            metadata=_json(pb, "metadata_json", "metadata"),
            response_tokens=pb.response_tokens if pb.HasField("response_tokens") else None,
            max_response_tokens=(
                pb.max_response_tokens if pb.HasField("max_response_tokens") else None
            ),
            turns=[
                Turn(
                    assistant=t.assistant,
                    tool_calls=[
                        ToolCallRecord(
                            name=c.name if c.HasField("name") else None,
                            arguments=_json(c, "arguments_json", "tool-call arguments"),
                            status=_STATUS.get(c.status, "ok"),
                            output=c.output,
                        )
                        for c in t.tool_calls
                    ],
                )
                for t in pb.turns
            ],
        )

    def to_proto(self) -> "reward_pb2.Sample":
        """The message for this sample (for tests and Python clients)."""
        pb = reward_pb2.Sample(prompt=self.prompt, response=self.response)
        pb.messages.extend(reward_pb2.Message(role=m.role, content=m.content) for m in self.messages)
        if self.reference is not None:
            pb.reference = self.reference
        if self.metadata is not None:
            pb.metadata_json = json.dumps(self.metadata)
        if self.response_tokens is not None:
            pb.response_tokens = self.response_tokens
        if self.max_response_tokens is not None:
            pb.max_response_tokens = self.max_response_tokens
        for turn in self.turns:
            t = pb.turns.add(assistant=turn.assistant)
            for call in turn.tool_calls:
                c = t.tool_calls.add(status=_STATUS_VALUE[call.status], output=call.output)
                if call.name is not None:
                    c.name = call.name
                if call.arguments is not None:
                    c.arguments_json = json.dumps(call.arguments)
        return pb


def _json(pb, field_name: str, what: str) -> Any:
    if not pb.HasField(field_name):
        return None
    try:
        return json.loads(getattr(pb, field_name))
    except json.JSONDecodeError as e:
        raise ValueError(f"{what} is not valid JSON: {e}") from None
