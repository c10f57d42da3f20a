"""Fixtures of the evaluation tests: a tiny-model engine, and a deterministic judge on 127.0.0.1.

The judge server is a real HTTP server speaking the OpenAI chat-completions schema, started in the
test process: it rates an answer 9 when it contains "Paris" and 2 otherwise, and in pairwise
prompts prefers the assistant whose answer contains "Paris". A judge model named ``biased`` always
answers ``[[A]]`` (a position-biased judge), to show what the position swap does; ``garbled`` never gives a
verdict, and ``flaky`` gives none the first time it sees a prompt (a retry gets the real one).
"""

from __future__ import annotations

import json
import re
import threading
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer

import pytest


@pytest.fixture(scope="session")
def tiny_engine(tiny_llama):
    from bayling.engines.hf import TransformersEngine

    return TransformersEngine(tiny_llama, dtype="float32", device="cpu", batch_size=8)


def _verdict(model: str, system: str, user: str) -> str:
    if "[[rating]]" in system:
        answer = (
            re.split(r"### Assistant A:\n", user)[-1]
            if "### Assistant A:" in user
            else user.split("[The Start of Assistant's Answer]")[-1]
        )
        return f"Reasoning. Rating: [[{9 if 'Paris' in answer else 2}]]"
    if model == "biased":
        return "Assistant A looks better. [[A]]"
    if "Conversation with User|>" in user:  # two-turn prompts: compare the second answers
        conv_a, conv_b = user.split("<|The Start of Assistant B's Conversation with User|>")
        a, b = conv_a.split("### Assistant A:")[-1], conv_b.split("### Assistant B:")[-1]
    else:
        a = user.split("[The Start of Assistant A's Answer]")[-1].split("[The End of Assistant A's Answer]")[0]
        b = user.split("[The Start of Assistant B's Answer]")[-1].split("[The End of Assistant B's Answer]")[0]
    if ("Paris" in a) == ("Paris" in b):
        return "Equal. [[C]]"
    return "[[A]]" if "Paris" in a else "[[B]]"


class JudgeServer:
    def __init__(self) -> None:
        self.requests: list[dict] = []
        server = self

        class Handler(BaseHTTPRequestHandler):
            def log_message(self, *args):  # keep test output clean
                pass

            def do_POST(self):
                body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
                server.requests.append(body)
                msgs = body["messages"]
                text = _verdict(body["model"], msgs[0]["content"], msgs[-1]["content"])
                first_time = sum(r["messages"] == msgs and r["model"] == body["model"] for r in server.requests) == 1
                if body["model"] == "garbled" or (body["model"] == "flaky" and first_time):
                    text = "Both answers have merits; it is hard to say."
                payload = json.dumps(
                    {
                        "id": f"judge-{len(server.requests)}",
                        "object": "chat.completion",
                        "created": 0,
                        "model": body["model"],
                        "choices": [
                            {"index": 0, "finish_reason": "stop", "message": {"role": "assistant", "content": text}}
                        ],
                        "usage": {"prompt_tokens": 1, "completion_tokens": 1, "total_tokens": 2},
                    }
                ).encode()
                self.send_response(200)
                self.send_header("Content-Type", "application/json")
                self.send_header("Content-Length", str(len(payload)))
                self.end_headers()
                self.wfile.write(payload)

        self.httpd = ThreadingHTTPServer(("127.0.0.1", 0), Handler)
        self.url = f"http://127.0.0.1:{self.httpd.server_address[1]}/v1"
        self.thread = threading.Thread(target=self.httpd.serve_forever, args=(0.05,), daemon=True)
        self.thread.start()

    def close(self) -> None:
        self.httpd.shutdown()
        self.httpd.server_close()


@pytest.fixture
def judge_server():
    s = JudgeServer()
    yield s
    s.close()


@pytest.fixture(scope="module")
def module_judge_server():
    s = JudgeServer()
    yield s
    s.close()
