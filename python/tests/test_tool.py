"""The tool contract, end to end through a real gRPC server on 127.0.0.1."""

import json
import unittest

import grpc

from temper_plugins import Tool, ToolOutput, serve_tool
from temper_plugins._proto import tool_pb2, tool_pb2_grpc

TOKEN = "tool-token"
AUTH = [("authorization", f"Bearer {TOKEN}")]


def add(arguments, images):
    return str(arguments["a"] + arguments["b"])


def echo_images(arguments, images):
    return ToolOutput(text=f"{len(images)} images", images=images[::-1])


class ToolServerTest(unittest.TestCase):
    def setUp(self):
        tools = [
            Tool("add", add, "adds a and b", {"type": "object", "required": ["a", "b"]}),
            Tool("echo_images", echo_images),
        ]
        server = serve_tool(tools, port=0, token=TOKEN, wait=False)
        self.addCleanup(server.stop, 0)
        channel = grpc.insecure_channel(server.address)
        self.addCleanup(channel.close)
        self.stub = tool_pb2_grpc.ToolServiceStub(channel)

    def call(self, name, arguments, images=()):
        request = tool_pb2.ToolCall(name=name, arguments_json=arguments, images=list(images))
        return self.stub.Call(request, metadata=AUTH, timeout=10)

    def test_calls_return_text_and_images(self):
        result = self.call("add", json.dumps({"a": 2, "b": 3}))
        self.assertEqual((result.text, result.HasField("error")), ("5", False))
        result = self.call("echo_images", "{}", [b"png1", b"png2"])
        self.assertEqual(result.text, "2 images")
        self.assertEqual(list(result.images), [b"png2", b"png1"])

    def test_failures_are_results_with_an_error(self):
        cases = [
            ("add", '{"a": 1}', "KeyError"),
            ("nope", "{}", "unknown tool 'nope'"),
            ("add", "{oops", "not valid JSON"),
            ("add", "[1, 2]", "must be a JSON object"),
        ]
        for name, arguments, expected in cases:
            result = self.call(name, arguments)
            self.assertTrue(result.HasField("error"), name)
            self.assertIn(expected, result.error)
        self.assertEqual(self.call("add", '{"a": 1, "b": 1}').text, "2")

    def test_list_and_health(self):
        tools = self.stub.List(tool_pb2.ListRequest(), metadata=AUTH).tools
        self.assertEqual([t.name for t in tools], ["add", "echo_images"])
        self.assertEqual(json.loads(tools[0].parameters_json)["required"], ["a", "b"])
        self.assertEqual(tools[0].description, "adds a and b")
        health = self.stub.Health(tool_pb2.HealthRequest(), metadata=AUTH)
        self.assertEqual(list(health.tools), ["add", "echo_images"])

    def test_wrong_token_is_unauthenticated(self):
        with self.assertRaises(grpc.RpcError) as caught:
            self.stub.List(tool_pb2.ListRequest(), metadata=[("authorization", "Bearer x")])
        self.assertEqual(caught.exception.code(), grpc.StatusCode.UNAUTHENTICATED)


if __name__ == "__main__":
    unittest.main()
