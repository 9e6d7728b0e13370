"""Serve a reward written in Python to Temper: `serve_reward`.

The contract. A reward is a function `score(batch: list[Sample]) -> list` returning exactly one
entry per sample, in order. Each entry is:

- a number (`float`, `int`, `bool` → 1.0/0.0): the score;
- `None`: the reward does not apply to this sample (left out of the weighted sum, not a 0);
- an `Exception` instance: the sample cannot be scored; Temper quarantines it with the message;
- `Scored(score, components)`: a score (or `None`, or an exception) plus named components
  (`dict[str, float]`) that Temper reports as metrics.

If `score` raises, or returns the wrong number of entries, every sample of the call gets an
error carrying the reason; the server keeps serving. A sample whose metadata is not valid JSON
gets an error without reaching `score`. NaN and infinite scores are passed on and quarantined
by Temper.
"""

from __future__ import annotations

import logging
import numbers
from dataclasses import dataclass, field
from typing import Callable, Dict, List, Mapping, Optional, Sequence, Union

import grpc

from temper_plugins import _server
from temper_plugins._proto import reward_pb2, reward_pb2_grpc
from temper_plugins.samples import Sample

log = logging.getLogger("temper_plugins")

ScoreValue = Union[float, int, bool, None, BaseException]


@dataclass
class Scored:
    """A score (a number, `None` for not applicable, or an exception) with components."""

    score: ScoreValue
    components: Dict[str, float] = field(default_factory=dict)


ScoreFn = Callable[[List[Sample]], Sequence[Union[ScoreValue, Scored]]]


def _error(reason: str) -> reward_pb2.SampleResult:
    return reward_pb2.SampleResult(error=reason)


def to_result(entry, index: int) -> reward_pb2.SampleResult:
    """One entry of what `score` returned, as a message (an error for anything off-contract)."""
    components: Mapping = {}
    if isinstance(entry, Scored):
        entry, components = entry.score, entry.components
    if entry is None:
        result = reward_pb2.SampleResult(not_applicable=reward_pb2.NotApplicable())
    elif isinstance(entry, BaseException):
        return _error(f"{type(entry).__name__}: {entry}")
    elif isinstance(entry, numbers.Real):
        result = reward_pb2.SampleResult(score=float(entry))
    else:
        return _error(
            f"score() returned {type(entry).__name__} for sample {index}; expected a number, "
            "None, an Exception or Scored"
        )
    for name, value in components.items():
        if not isinstance(name, str) or not isinstance(value, numbers.Real):
            return _error(
                f"component {name!r} = {value!r} of sample {index}: names must be str and "
                "values numbers"
            )
        result.components[name] = float(value)
    return result


class RewardServicer(reward_pb2_grpc.RewardServiceServicer):
    """`temper.reward.v1.RewardService` over one or several Python reward functions."""

    def __init__(self, rewards: Mapping[str, ScoreFn], name: str, version: str):
        if not rewards:
            raise ValueError("serve at least one reward")
        self.rewards = dict(rewards)
        self.name = name
        self.version = version

    def Health(self, request, context):
        return reward_pb2.HealthResponse(
            name=self.name, version=self.version, rewards=sorted(self.rewards)
        )

    def Score(self, request, context):
        wanted = request.reward
        if not wanted and len(self.rewards) == 1:
            wanted = next(iter(self.rewards))
        fn = self.rewards.get(wanted)
        if fn is None:
            context.abort(
                grpc.StatusCode.INVALID_ARGUMENT,
                f"no reward {wanted!r} here; this service serves {sorted(self.rewards)}",
            )
        results: List[Optional[reward_pb2.SampleResult]] = [None] * len(request.samples)
        batch, positions = [], []
        for i, pb in enumerate(request.samples):
            try:
                batch.append(Sample.from_proto(pb))
                positions.append(i)
            except ValueError as e:
                results[i] = _error(str(e))
        for i, result in zip(positions, self._score(wanted, fn, batch)):
            results[i] = result
        return reward_pb2.ScoreResponse(results=results)

    def _score(self, name: str, fn: ScoreFn, batch: List[Sample]) -> List[reward_pb2.SampleResult]:
        if not batch:
            return []
        try:
            entries = list(fn(batch))
        except Exception as e:  # user code: report per sample, keep serving
            log.exception("reward %r raised on a batch of %d", name, len(batch))
            return [_error(f"score() raised {type(e).__name__}: {e}")] * len(batch)
        if len(entries) != len(batch):
            reason = f"score() returned {len(entries)} results for {len(batch)} samples"
            log.error("reward %r: %s", name, reason)
            return [_error(reason)] * len(batch)
        return [to_result(entry, i) for i, entry in enumerate(entries)]


def serve_reward(
    score: Union[ScoreFn, Mapping[str, ScoreFn]],
    *,
    port: int,
    host: str = "127.0.0.1",
    token: Optional[str] = None,
    token_env: str = "TEMPER_REWARD_TOKEN",
    name: Optional[str] = None,
    version: str = "0.1.0",
    max_message_bytes: int = _server.DEFAULT_MAX_MESSAGE_BYTES,
    max_workers: int = 4,
    wait: bool = True,
) -> _server.RunningServer:
    """Serves `score` (or several `{name: score}`) as a Temper reward service.

    Listens on `host:port` (port 0 picks a free one; see the returned server's `.port`) and
    accepts only callers with the shared `token` (default: `$TEMPER_REWARD_TOKEN`). With
    `wait=True` (the default) blocks until stopped; otherwise returns the running server.
    A single function is served under `name` (default: its `__name__`).
    """
    if callable(score):
        rewards = {name or getattr(score, "__name__", "reward"): score}
        service_name = next(iter(rewards))
    else:
        rewards = dict(score)
        service_name = name or "temper-plugins"
    servicer = RewardServicer(rewards, service_name, version)
    running = _server.start(
        lambda server: reward_pb2_grpc.add_RewardServiceServicer_to_server(servicer, server),
        host=host,
        port=port,
        token=_server.resolve_token(token, token_env),
        max_message_bytes=max_message_bytes,
        max_workers=max_workers,
    )
    if wait:
        running.wait()
    return running
