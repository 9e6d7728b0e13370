"""The reward contract, end to end through a real gRPC server on 127.0.0.1."""

import math
import unittest

import grpc

from temper_plugins import Sample, Scored, ToolCallRecord, Turn, serve_reward
from temper_plugins._proto import reward_pb2, reward_pb2_grpc
from temper_plugins.reward import to_result

TOKEN = "test-token-123"


def outcome(result):
    kind = result.WhichOneof("outcome")
    return kind, getattr(result, kind) if kind in ("score", "error") else None


class RewardServerTest(unittest.TestCase):
    def start(self, score, **kwargs):
        server = serve_reward(score, port=0, token=TOKEN, wait=False, **kwargs)
        self.addCleanup(server.stop, 0)
        channel = grpc.insecure_channel(server.address)
        self.addCleanup(channel.close)
        return reward_pb2_grpc.RewardServiceStub(channel)

    def call(self, stub, samples, token=TOKEN, reward=""):
        request = reward_pb2.ScoreRequest(reward=reward, samples=[s.to_proto() for s in samples])
        metadata = [("authorization", f"Bearer {token}")] if token else []
        return stub.Score(request, metadata=metadata, timeout=10).results

    def test_every_kind_of_entry_maps_to_its_outcome(self):
        def score(batch):
            return [1, None, ValueError("no reference"), Scored(0.5, {"len": 3}), True, "bad"]

        stub = self.start(score)
        results = self.call(stub, [Sample(response=str(i)) for i in range(6)])
        self.assertEqual(outcome(results[0]), ("score", 1.0))
        self.assertEqual(outcome(results[1]), ("not_applicable", None))
        self.assertEqual(outcome(results[2]), ("error", "ValueError: no reference"))
        self.assertEqual(outcome(results[3]), ("score", 0.5))
        self.assertEqual(dict(results[3].components), {"len": 3.0})
        self.assertEqual(outcome(results[4]), ("score", 1.0))
        kind, reason = outcome(results[5])
        self.assertEqual(kind, "error")
        self.assertIn("returned str for sample 5", reason)

    def test_samples_arrive_with_every_field(self):
        seen = []

        def score(batch):
            seen.extend(batch)
            return [0.0] * len(batch)

        stub = self.start(score)
        sample = Sample(
            prompt="p",
            response="r",
            reference="ref",
            metadata={"lang": "en"},
            response_tokens=4,
            max_response_tokens=16,
            turns=[Turn("call", [ToolCallRecord("zoom", {"x": 1}, "failed", "oops")])],
        )
        self.call(stub, [sample, Sample()])
        self.assertEqual(seen, [sample, Sample()])

    def test_user_exceptions_and_wrong_counts_become_per_sample_errors(self):
        def raises(batch):
            raise RuntimeError("model crashed")

        stub = self.start(raises)
        results = self.call(stub, [Sample(), Sample()])
        self.assertEqual(
            [outcome(r) for r in results],
            [("error", "score() raised RuntimeError: model crashed")] * 2,
        )
        # The server is still serving.
        self.assertEqual(len(self.call(stub, [Sample()])), 1)

        stub = self.start(lambda batch: [1.0])
        results = self.call(stub, [Sample(), Sample()])
        self.assertEqual(
            [outcome(r)[1] for r in results], ["score() returned 1 results for 2 samples"] * 2
        )

    def test_bad_metadata_json_is_an_error_for_that_sample_only(self):
        stub = self.start(lambda batch: [len(batch)] * len(batch), name="count")
        good = Sample(response="a").to_proto()
        bad = Sample(response="b").to_proto()
        bad.metadata_json = "{not json"
        request = reward_pb2.ScoreRequest(samples=[good, bad, good])
        results = stub.Score(request, metadata=[("authorization", f"Bearer {TOKEN}")]).results
        self.assertEqual(outcome(results[0]), ("score", 2.0))
        self.assertEqual(outcome(results[2]), ("score", 2.0))
        self.assertIn("metadata is not valid JSON", outcome(results[1])[1])

    def test_callers_without_the_token_are_unauthenticated(self):
        stub = self.start(lambda batch: [1.0] * len(batch))
        for token in (None, "wrong-token"):
            with self.assertRaises(grpc.RpcError) as caught:
                self.call(stub, [Sample()], token=token)
            self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAUTHENTICATED)
        with self.assertRaises(grpc.RpcError) as caught:
            stub.Health(reward_pb2.HealthRequest())
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAUTHENTICATED)

    def test_health_lists_rewards_and_unknown_rewards_are_invalid(self):
        stub = self.start({"a": lambda b: [1.0] * len(b), "b": lambda b: [2.0] * len(b)})
        metadata = [("authorization", f"Bearer {TOKEN}")]
        health = stub.Health(reward_pb2.HealthRequest(), metadata=metadata)
        self.assertEqual(list(health.rewards), ["a", "b"])
        self.assertEqual(outcome(self.call(stub, [Sample()], reward="b")[0]), ("score", 2.0))
        for reward in ("", "c"):  # two rewards served: the request must pick one
            with self.assertRaises(grpc.RpcError) as caught:
                self.call(stub, [Sample()], reward=reward)
            self.assertEqual(caught.exception.code(), grpc.StatusCode.INVALID_ARGUMENT)

    def test_messages_over_the_limit_are_refused(self):
        stub = self.start(lambda batch: [1.0] * len(batch), max_message_bytes=4096)
        with self.assertRaises(grpc.RpcError) as caught:
            self.call(stub, [Sample(response="x" * 10_000)])
        self.assertEqual(caught.exception.code(), grpc.StatusCode.RESOURCE_EXHAUSTED)

    def test_to_result_passes_nan_on_and_rejects_bad_components(self):
        self.assertTrue(math.isnan(to_result(float("nan"), 0).score))
        self.assertIn("names must be str", to_result(Scored(1.0, {"a": "x"}), 0).error)

    def test_a_token_is_required(self):
        with self.assertRaisesRegex(ValueError, "TEMPER_TEST_UNSET_TOKEN"):
            serve_reward(lambda b: [], port=0, token_env="TEMPER_TEST_UNSET_TOKEN", wait=False)
        with self.assertRaisesRegex(ValueError, "visible ASCII"):
            serve_reward(lambda b: [], port=0, token="has space", wait=False)


if __name__ == "__main__":
    unittest.main()
