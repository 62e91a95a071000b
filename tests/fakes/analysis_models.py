"""Local fakes of the two model APIs the post-call analysis uses, on 127.0.0.1.

- OpenAI Chat Completions (non-streamed), ``POST /v1/chat/completions`` with ``response_format: json_schema``:
  answers ``{"choices": [{"message": {"role": "assistant", "content": "<json>"}}]}``.
- Anthropic Messages, ``POST /v1/messages`` with a forced tool: answers a ``tool_use`` content block.

`script` is a list of what to answer, one entry per request (the last one repeats): an int is an HTTP error
status; "hang" answers (validly) only after `hang_seconds`; another str is the message content as is (e.g.
invalid JSON); a dict is the JSON answer; None builds a valid
answer from the request's schema (`answer_for`). `requests` keeps (path, headers, body) of every request.
"""
from __future__ import annotations

import json
import time

from tests.fakes.http_fake import JsonHandler, LocalHttpFake


def answer_for(schema: dict) -> dict:
    """A valid answer for the analysis schema: the first enum value, 42, true, "AB-1234"."""
    fields = {}
    for name, prop in schema["properties"].get("fields", {}).get("properties", {}).items():
        types = prop["type"]
        if "enum" in prop:
            fields[name] = prop["enum"][0]
        elif "number" in types:
            fields[name] = 42
        elif "boolean" in types:
            fields[name] = True
        else:
            fields[name] = "AB-1234"
    answer = {"fields": fields} if "fields" in schema["properties"] else {}
    if "summary" in schema["properties"]:
        answer["summary"] = "The caller asked about order AB-1234; the agent helped."
    if "success" in schema["properties"]:
        answer["success"] = True
    return answer


class FakeAnalysisModel(LocalHttpFake):
    def __init__(self, api_key: str = "sk-analysis-test-key-9f8e7d"):
        self.api_key = api_key
        self.script: list = [None]
        self.requests: list[tuple[str, dict, dict]] = []
        self.hang_seconds = 1.5
        fake = self

        class Handler(JsonHandler):
            def do_POST(self):
                body = self.read_json()
                headers = {k.lower(): v for k, v in self.headers.items()}
                fake.requests.append((self.path, headers, body))
                step = fake.script[min(len(fake.requests) - 1, len(fake.script) - 1)]
                if step == "hang":  # answer too late (a timeout test)
                    time.sleep(fake.hang_seconds)
                    step = None
                if self.path == "/v1/chat/completions":
                    if headers.get("authorization") != f"Bearer {fake.api_key}":
                        return self.send_json(401, {"error": {"message": "Incorrect API key provided",
                                                          "type": "invalid_request_error"}})
                    if isinstance(step, int):
                        return self.send_json(step, {"error": {"message": "boom", "type": "server_error"}})
                    schema = body["response_format"]["json_schema"]["schema"]
                    content = step if isinstance(step, str) else json.dumps(step or answer_for(schema))
                    return self.send_json(200, {"id": "chatcmpl-1", "object": "chat.completion", "model": body["model"],
                                            "choices": [{"index": 0, "finish_reason": "stop",
                                                         "message": {"role": "assistant", "content": content}}]})
                if self.path == "/v1/messages":
                    # The API key as x-api-key (the documented header) or as a bearer token (newer SDKs).
                    if fake.api_key not in (headers.get("x-api-key"),
                                            headers.get("authorization", "").removeprefix("Bearer ")):
                        return self.send_json(401, {"type": "error", "error": {"type": "authentication_error",
                                                                           "message": "invalid x-api-key"}})
                    if isinstance(step, int):
                        return self.send_json(step, {"type": "error", "error": {"type": "api_error", "message": "boom"}})
                    tool = body["tools"][0]
                    answer = step if isinstance(step, dict) else answer_for(tool["input_schema"])
                    return self.send_json(200, {
                        "id": "msg_1", "type": "message", "role": "assistant", "model": body["model"],
                        "content": [{"type": "tool_use", "id": "toolu_1", "name": tool["name"], "input": answer}],
                        "stop_reason": "tool_use", "stop_sequence": None,
                        "usage": {"input_tokens": 10, "output_tokens": 10}})
                return self.send_json(404, {"error": "not found"})

        self.serve(Handler)

    @property
    def openai_base_url(self) -> str:
        return f"{self.origin}/v1"

    @property
    def anthropic_base_url(self) -> str:
        return self.origin
