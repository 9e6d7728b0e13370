"""Serve tools written in Python to Temper's actor: `serve_tool`.

The contract. A tool is a function `fn(arguments: dict, images: list[bytes]) -> str | ToolOutput`
that gets the call's JSON arguments (an object) and the conversation's images (PNG bytes) and
returns the text the model is shown, or a `ToolOutput` with text and images (PNG bytes). If it
raises, the call's result carries the error (`ToolResult.error`) for the model to see; the
server keeps serving. Unknown tools and arguments that are not a JSON object are errors of the
same kind.
"""

from __future__ import annotations

import json
import logging
from dataclasses import dataclass, field
from typing import Any, Callable, Dict, Iterable, List, Mapping, Optional, Union

from temper_plugins import _server
from temper_plugins._proto import tool_pb2, tool_pb2_grpc

log = logging.getLogger("temper_plugins")


@dataclass
class ToolOutput:
    """What a tool returns: text for the model and optional PNG images."""

    text: str = ""
    images: List[bytes] = field(default_factory=list)


ToolFn = Callable[[Dict[str, Any], List[bytes]], Union[str, ToolOutput]]


@dataclass
class Tool:
    """A tool: its name, function, description and JSON Schema of its arguments."""

    name: str
    fn: ToolFn
    description: str = ""
    parameters: Optional[Dict[str, Any]] = None


class ToolServicer(tool_pb2_grpc.ToolServiceServicer):
    """`temper.tool.v1.ToolService` over Python tool functions."""

    def __init__(self, tools: Iterable[Tool], name: str, version: str):
        self.tools: Dict[str, Tool] = {}
        for tool in tools:
            if tool.name in self.tools:
                raise ValueError(f"two tools are named {tool.name!r}")
            self.tools[tool.name] = tool
        if not self.tools:
            raise ValueError("serve at least one tool")
        self.name = name
        self.version = version

    def Health(self, request, context):
        return tool_pb2.HealthResponse(
            name=self.name, version=self.version, tools=sorted(self.tools)
        )

    def List(self, request, context):
        return tool_pb2.ToolList(
            tools=[
                tool_pb2.ToolSpec(
                    name=t.name,
                    description=t.description,
                    parameters_json=json.dumps(t.parameters or {}),
                )
                for t in self.tools.values()
            ]
        )

    def Call(self, request, context):
        tool = self.tools.get(request.name)
        if tool is None:
            return tool_pb2.ToolResult(
                error=f"unknown tool {request.name!r}; available: {sorted(self.tools)}"
            )
        try:
            arguments = json.loads(request.arguments_json or "{}")
        except json.JSONDecodeError as e:
            return tool_pb2.ToolResult(error=f"arguments are not valid JSON: {e}")
        if not isinstance(arguments, dict):
            return tool_pb2.ToolResult(error="arguments must be a JSON object")
        try:
            output = tool.fn(arguments, list(request.images))
        except Exception as e:  # user code: the model sees the error, the server keeps serving
            log.info("tool %r failed: %s: %s", tool.name, type(e).__name__, e)
            return tool_pb2.ToolResult(error=f"{type(e).__name__}: {e}")
        if isinstance(output, str):
            output = ToolOutput(text=output)
        if not isinstance(output, ToolOutput):
            return tool_pb2.ToolResult(
                error=f"tool {tool.name!r} returned {type(output).__name__}; expected str or ToolOutput"
            )
        return tool_pb2.ToolResult(text=output.text, images=list(output.images))


def serve_tool(
    tools: Union[Iterable[Tool], Mapping[str, ToolFn]],
    *,
    port: int,
    host: str = "127.0.0.1",
    token: Optional[str] = None,
    token_env: str = "TEMPER_TOOL_TOKEN",
    name: str = "temper-tools",
    version: str = "0.1.0",
    max_message_bytes: int = _server.DEFAULT_MAX_MESSAGE_BYTES,
    max_workers: int = 4,
    wait: bool = True,
) -> _server.RunningServer:
    """Serves `tools` (a list of `Tool`, or `{name: fn}`) as a Temper tool service.

    Same binding, token and blocking rules as `serve_reward`; the token defaults to
    `$TEMPER_TOOL_TOKEN`.
    """
    if isinstance(tools, Mapping):
        tools = [Tool(n, fn, description=(fn.__doc__ or "").strip()) for n, fn in tools.items()]
    servicer = ToolServicer(tools, name, version)
    running = _server.start(
        lambda server: tool_pb2_grpc.add_ToolServiceServicer_to_server(servicer, server),
        host=host,
        port=port,
        token=_server.resolve_token(token, token_env),
        max_message_bytes=max_message_bytes,
        max_workers=max_workers,
    )
    if wait:
        running.wait()
    return running
