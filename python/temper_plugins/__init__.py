"""Write Temper reward and tool plug-ins in Python.

    from temper_plugins import Sample, serve_reward

    def score(batch: list[Sample]) -> list[float | None | Exception]:
        return [1.0 if s.reference and s.reference in s.response else 0.0 for s in batch]

    serve_reward(score, port=50051)   # token from $TEMPER_REWARD_TOKEN

See `temper_plugins.reward` for the reward contract and `temper_plugins.tool` for tools.
"""

from temper_plugins._server import DEFAULT_MAX_MESSAGE_BYTES, RunningServer
from temper_plugins.reward import RewardServicer, Scored, serve_reward
from temper_plugins.samples import Message, Sample, ToolCallRecord, Turn
from temper_plugins.tool import Tool, ToolOutput, ToolServicer, serve_tool

__all__ = [
    "DEFAULT_MAX_MESSAGE_BYTES",
    "Message",
    "RewardServicer",
    "RunningServer",
    "Sample",
    "Scored",
    "Tool",
    "ToolCallRecord",
    "ToolOutput",
    "ToolServicer",
    "Turn",
    "serve_reward",
    "serve_tool",
]
