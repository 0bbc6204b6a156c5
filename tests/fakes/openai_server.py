"""A scripted, OpenAI-compatible HTTP server on loopback for driving the real `openai` client.

Instrumentation libraries patch the real client, so the spans they emit depend on real response
objects: usage details, the model the server reports, streamed chunks, HTTP errors. This server
answers each request with the next reply a test scripted, in the wire format of the OpenAI API
(chat completions, streamed or not, and embeddings), and records what it was asked. It never
touches the network beyond 127.0.0.1.
"""

from __future__ import annotations

import array
import base64
import itertools
import json
import threading
from collections import deque
from dataclasses import dataclass
from http import HTTPStatus
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from types import TracebackType
from typing import Any

CHAT_COMPLETIONS_PATH = "/v1/chat/completions"
EMBEDDINGS_PATH = "/v1/embeddings"
# Created timestamp of every response: a fixed value keeps captured spans reproducible.
CREATED_UNIX_SECONDS = 1_767_225_600
SYSTEM_FINGERPRINT = "fp_fake0001"

# OpenAI's error bodies for the statuses tests script: (type, code, message).
_ERROR_BODIES: dict[int, tuple[str, str | None, str]] = {
    429: ("requests", "rate_limit_exceeded",
          "Rate limit reached for gpt-4o-mini in organization org-test on requests per min (RPM): "
          "Limit 500, Used 500, Requested 1. Please try again in 120ms."),
    500: ("server_error", None, "The server had an error while processing your request. Sorry about that!"),
    503: ("server_error", None, "The engine is currently overloaded, please try again later."),
}


@dataclass(frozen=True)
class Usage:
    """Token usage of a chat reply, as the OpenAI API reports it.

    `prompt_tokens` includes `cached_tokens` (cache reads) and `cache_write_tokens`, and
    `completion_tokens` includes `reasoning_tokens`, exactly as in the API; None details are left
    out of the response, like older API versions do.
    """

    prompt_tokens: int
    completion_tokens: int
    cached_tokens: int | None = None
    cache_write_tokens: int | None = None
    reasoning_tokens: int | None = None

    def to_json(self) -> dict[str, Any]:
        """The `usage` object of a chat completion."""
        usage: dict[str, Any] = {
            "prompt_tokens": self.prompt_tokens,
            "completion_tokens": self.completion_tokens,
            "total_tokens": self.prompt_tokens + self.completion_tokens,
        }
        if self.cached_tokens is not None or self.cache_write_tokens is not None:
            details: dict[str, int] = {"cached_tokens": self.cached_tokens or 0, "audio_tokens": 0}
            if self.cache_write_tokens is not None:
                details["cache_write_tokens"] = self.cache_write_tokens
            usage["prompt_tokens_details"] = details
        if self.reasoning_tokens is not None:
            usage["completion_tokens_details"] = {
                "reasoning_tokens": self.reasoning_tokens,
                "audio_tokens": 0,
                "accepted_prediction_tokens": 0,
                "rejected_prediction_tokens": 0,
            }
        return usage


@dataclass(frozen=True)
class ToolCall:
    """A function call the model asks for."""

    id: str
    name: str
    arguments: str

    def to_json(self) -> dict[str, Any]:
        """The tool call as it appears in an assistant message."""
        function = {"name": self.name, "arguments": self.arguments}
        return {"id": self.id, "type": "function", "function": function}


@dataclass(frozen=True)
class ChatReply:
    """Scripted answer to one chat completion request (streamed if the request asks for it).

    `model` is what the server reports (a dated snapshot, as OpenAI does for an alias request);
    `content` may be "" (an empty completion) or None (a pure tool-call answer).
    """

    model: str
    usage: Usage
    content: str | None = "Hello! How can I help you today?"
    finish_reason: str = "stop"
    tool_calls: tuple[ToolCall, ...] = ()
    response_id: str = "chatcmpl-fake0001"


@dataclass(frozen=True)
class EmbeddingReply:
    """Scripted answer to one embeddings request: one vector per input."""

    model: str
    prompt_tokens: int
    dimensions: int = 4


@dataclass(frozen=True)
class ErrorReply:
    """Scripted HTTP error with an OpenAI-style error body (429, 500, 503)."""

    status: int

    def to_json(self) -> dict[str, Any]:
        """The `{"error": {...}}` body OpenAI sends with this status."""
        error_type, code, message = _ERROR_BODIES[self.status]
        return {"error": {"message": message, "type": error_type, "param": None, "code": code}}


Reply = ChatReply | EmbeddingReply | ErrorReply


@dataclass(frozen=True)
class RecordedRequest:
    """One request the server received, for tests that check what the client sent."""

    path: str
    body: dict[str, Any]


def chat_completion_body(reply: ChatReply) -> dict[str, Any]:
    """The non-streaming `chat.completion` object for a scripted reply."""
    message: dict[str, Any] = {"role": "assistant", "content": reply.content, "refusal": None}
    if reply.tool_calls:
        message["tool_calls"] = [call.to_json() for call in reply.tool_calls]
    return {
        "id": reply.response_id,
        "object": "chat.completion",
        "created": CREATED_UNIX_SECONDS,
        "model": reply.model,
        "system_fingerprint": SYSTEM_FINGERPRINT,
        "service_tier": "default",
        "choices": [{"index": 0, "message": message, "logprobs": None, "finish_reason": reply.finish_reason}],
        "usage": reply.usage.to_json(),
    }


def chat_completion_chunks(reply: ChatReply, include_usage: bool) -> list[dict[str, Any]]:
    """The `chat.completion.chunk` objects of a streamed reply, in the order OpenAI sends them.

    With `stream_options.include_usage` every chunk carries `"usage": null` and a last chunk with
    no choices carries the usage, which is the only way a streaming client learns token counts.
    """

    def chunk(choices: list[dict[str, Any]]) -> dict[str, Any]:
        body: dict[str, Any] = {
            "id": reply.response_id,
            "object": "chat.completion.chunk",
            "created": CREATED_UNIX_SECONDS,
            "model": reply.model,
            "system_fingerprint": SYSTEM_FINGERPRINT,
            "service_tier": "default",
            "choices": choices,
        }
        if include_usage:
            body["usage"] = None
        return body

    def delta(content: dict[str, Any], finish_reason: str | None = None) -> list[dict[str, Any]]:
        return [{"index": 0, "delta": content, "logprobs": None, "finish_reason": finish_reason}]

    chunks = [chunk(delta({"role": "assistant", "content": "" if reply.content is not None else None,
                           "refusal": None}))]
    if reply.content:
        # Split after each space so the pieces join back to exactly the scripted content.
        pieces = [piece for piece in reply.content.replace(" ", " \0").split("\0") if piece]
        chunks.extend(chunk(delta({"content": piece})) for piece in pieces)
    for index, call in enumerate(reply.tool_calls):
        chunks.append(chunk(delta({"tool_calls": [{
            "index": index, "id": call.id, "type": "function",
            "function": {"name": call.name, "arguments": ""}}]})))
        arguments = {"index": index, "function": {"arguments": call.arguments}}
        chunks.append(chunk(delta({"tool_calls": [arguments]})))
    chunks.append(chunk(delta({}, reply.finish_reason)))
    if include_usage:
        usage_chunk = chunk([])
        usage_chunk["usage"] = reply.usage.to_json()
        chunks.append(usage_chunk)
    return chunks


def embeddings_body(reply: EmbeddingReply, inputs: list[Any], encoding_format: str) -> dict[str, Any]:
    """The `list` of embeddings for the inputs, base64-encoded float32 if the client asked so."""
    data = []
    for index in range(len(inputs)):
        vector = [round(0.1 * (index + 1) + 0.01 * position, 4) for position in range(reply.dimensions)]
        embedding: Any = vector
        if encoding_format == "base64":
            embedding = base64.b64encode(array.array("f", vector).tobytes()).decode("ascii")
        data.append({"object": "embedding", "index": index, "embedding": embedding})
    return {
        "object": "list",
        "data": data,
        "model": reply.model,
        "usage": {"prompt_tokens": reply.prompt_tokens, "total_tokens": reply.prompt_tokens},
    }


class FakeOpenAIServer:
    """Loopback OpenAI-compatible server answering requests with scripted replies, in order.

    Use as a context manager; point the client at `url`. A request that arrives with no reply
    scripted, or whose reply does not fit the endpoint, gets a 500 and is listed in `problems`,
    so a test fails loudly instead of passing on a response nobody scripted.
    """

    def __init__(self) -> None:
        self._replies: deque[Reply] = deque()
        self._lock = threading.Lock()
        self._request_ids = itertools.count(1)
        self.requests: list[RecordedRequest] = []
        self.problems: list[str] = []
        self._server = ThreadingHTTPServer(("127.0.0.1", 0), self._handler_class())
        self._server.daemon_threads = True
        self._thread = threading.Thread(target=self._server.serve_forever, name="fake-openai", daemon=True)

    @property
    def url(self) -> str:
        """Base URL for `openai.OpenAI(base_url=...)`."""
        host, port = self._server.server_address[:2]
        return f"http://{host}:{port}/v1"

    def script(self, *replies: Reply) -> None:
        """Queue the replies for the next requests, first in first out."""
        with self._lock:
            self._replies.extend(replies)

    @property
    def pending_replies(self) -> int:
        """Replies scripted but not yet used."""
        with self._lock:
            return len(self._replies)

    def __enter__(self) -> FakeOpenAIServer:
        self._thread.start()
        return self

    def __exit__(
        self, exc_type: type[BaseException] | None, exc: BaseException | None, tb: TracebackType | None
    ) -> None:
        self._server.shutdown()
        self._server.server_close()
        self._thread.join()

    def _next_reply(self, path: str, body: dict[str, Any]) -> Reply | str:
        with self._lock:
            self.requests.append(RecordedRequest(path, body))
            if not self._replies:
                problem = f"{path}: no reply scripted"
            else:
                reply = self._replies[0]
                expected = {CHAT_COMPLETIONS_PATH: ChatReply, EMBEDDINGS_PATH: EmbeddingReply}.get(path)
                if expected is None:
                    problem = f"{path}: endpoint not implemented by the fake"
                elif isinstance(reply, ErrorReply | expected):
                    return self._replies.popleft()
                else:
                    problem = f"{path}: next scripted reply is a {type(reply).__name__}"
            self.problems.append(problem)
            return problem

    def _handler_class(self) -> type[BaseHTTPRequestHandler]:
        fake = self

        class Handler(BaseHTTPRequestHandler):
            protocol_version = "HTTP/1.1"

            def log_message(self, format: str, *args: Any) -> None:
                """Keep test output clean; requests are recorded in `fake.requests` instead."""

            def do_POST(self) -> None:
                length = int(self.headers.get("Content-Length") or 0)
                raw = self.rfile.read(length)
                try:
                    body = json.loads(raw or b"{}")
                except ValueError:
                    body = {"_unparsable": raw.decode("utf-8", "replace")}
                path = self.path.split("?", 1)[0]
                reply = fake._next_reply(path, body)
                if isinstance(reply, str):
                    self._send_json(HTTPStatus.INTERNAL_SERVER_ERROR, {"error": {
                        "message": f"fake OpenAI server: {reply}", "type": "server_error",
                        "param": None, "code": None}})
                elif isinstance(reply, ErrorReply):
                    self._send_json(reply.status, reply.to_json())
                elif isinstance(reply, EmbeddingReply):
                    inputs = body.get("input")
                    inputs = inputs if isinstance(inputs, list) else [inputs]
                    self._send_json(HTTPStatus.OK, embeddings_body(
                        reply, inputs, body.get("encoding_format") or "float"))
                elif body.get("stream"):
                    options = body.get("stream_options") or {}
                    chunks = chat_completion_chunks(reply, bool(options.get("include_usage")))
                    events = "".join(f"data: {json.dumps(chunk)}\n\n" for chunk in chunks)
                    self._send(HTTPStatus.OK, "text/event-stream", (events + "data: [DONE]\n\n").encode())
                else:
                    self._send_json(HTTPStatus.OK, chat_completion_body(reply))

            def _send_json(self, status: int, document: dict[str, Any]) -> None:
                self._send(status, "application/json", json.dumps(document).encode())

            def _send(self, status: int, content_type: str, payload: bytes) -> None:
                self.send_response(status)
                self.send_header("Content-Type", content_type)
                self.send_header("Content-Length", str(len(payload)))
                self.send_header("x-request-id", f"req_fake{next(fake._request_ids):06d}")
                self.end_headers()
                self.wfile.write(payload)

        return Handler
