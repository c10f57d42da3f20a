"""Fixtures of the data tests: a real OpenAI-compatible HTTP server on 127.0.0.1 that misbehaves on purpose.

The server answers ``POST /v1/chat/completions`` deterministically from the request (so an interrupted and
an uninterrupted build must end with the same data), but the first attempt of some requests gets a 429 with
``Retry-After: 0``, a 500, or a reply slower than the client's timeout. ``mode`` switches it to always-500
or always-401 for the failure tests. Replies are real sentences in the language the request asks for, so
the language-ID validator has something real to judge; every sixth request asking for a language gets an off-target (wrong-language)
reply, which the validator must reject.
"""

from __future__ import annotations

import hashlib
import json
import re
import threading
import time
from collections import Counter
from http.server import BaseHTTPRequestHandler, ThreadingHTTPServer
from pathlib import Path

import pytest

SENTENCES = {
    "English": [
        "The museum opens at nine and closes late on Fridays.",
        "Rivers carry sediment from the mountains to the sea.",
        "Regular exercise improves both sleep and mood over time.",
    ],
    "Chinese": [
        "博物馆早上九点开门，周五闭馆较晚，欢迎大家参观。",
        "河流把山里的泥沙一路带到大海，形成了肥沃的三角洲。",
        "坚持锻炼身体，可以让睡眠和心情都慢慢变得更好。",
    ],
    "German": [
        "Das Museum öffnet um neun Uhr und schließt freitags erst spät am Abend.",
        "Flüsse tragen Sedimente von den Bergen bis hinunter ins Meer.",
        "Regelmäßige Bewegung verbessert mit der Zeit den Schlaf und die Stimmung.",
    ],
    "French": [
        "Le musée ouvre à neuf heures et ferme tard le vendredi soir.",
        "Les rivières transportent des sédiments des montagnes jusqu'à la mer.",
        "Une activité physique régulière améliore le sommeil et l'humeur.",
    ],
    "Spanish": [
        "El museo abre a las nueve y cierra tarde los viernes por la noche.",
        "Los ríos llevan sedimentos desde las montañas hasta el mar.",
        "El ejercicio regular mejora el sueño y el estado de ánimo con el tiempo.",
    ],
}
_LANGS = "(English|Chinese|German|French|Spanish)"
_TRANSLATE = re.compile(rf"Translate this instruction into {_LANGS}\b")
_ANSWER = re.compile(rf"\(Answer in {_LANGS}\.\)|\[{_LANGS}\]")


def _reply(messages: list[dict], h: int, off_target: set[int]) -> str:
    user = messages[-1]["content"]
    system = messages[0]["content"] if messages[0]["role"] == "system" else ""
    m = _TRANSLATE.search(user) or _ANSWER.search(user)
    if m:
        lang = next(g for g in m.groups() if g)
        if h % 6 == 0:  # off-target on purpose: the validator must catch it
            lang = "German" if lang != "German" else "English"
            off_target.add(h)
        text = SENTENCES[lang][h % 3]
        answer = _ANSWER.search(user)
        if _TRANSLATE.search(user) and answer:  # a translated request keeps its answer-language marker
            text += f" [{next(g for g in answer.groups() if g)}]"
        return text
    prev = next(x["content"] for x in reversed(messages) if x["role"] == "assistant")
    if "Shorten" in system:
        return prev.split(" ")[0] if " " in prev else prev[: max(1, len(prev) // 2)]
    if "explain" in system.lower() or "Summarise" in system:
        return SENTENCES["Chinese" if re.search(r"[\u4e00-\u9fff]", user) else "English"][h % 3]
    return prev  # polish / register rewrite: the same text is a valid (if lazy) answer


class FlakyOpenAI(BaseHTTPRequestHandler):
    server: FlakyServer

    def log_message(self, *args) -> None:  # keep pytest output clean
        return None

    def _send(self, code: int, body: dict, headers: dict | None = None) -> None:
        data = json.dumps(body).encode()
        self.send_response(code)
        self.send_header("Content-Type", "application/json")
        self.send_header("Content-Length", str(len(data)))
        for k, v in (headers or {}).items():
            self.send_header(k, v)
        self.end_headers()
        try:
            self.wfile.write(data)
        except (BrokenPipeError, ConnectionResetError):  # the client timed out and left
            pass

    def do_POST(self) -> None:  # noqa: N802 - http.server's naming
        body = json.loads(self.rfile.read(int(self.headers["Content-Length"])))
        srv = self.server
        key = hashlib.sha256(json.dumps(body["messages"], sort_keys=True).encode()).hexdigest()
        h = int(key[:12], 16)
        with srv.lock:
            srv.attempts[key] += 1
            first = srv.attempts[key] == 1
        if srv.mode == "401":
            return self._send(401, {"error": {"message": "invalid api key", "type": "auth"}})
        if srv.mode == "500" or (first and h % 5 == 0):
            srv.faults["500" if srv.mode == "500" else "429"] += 1
            if srv.mode == "500":
                return self._send(500, {"error": {"message": "boom"}})
            return self._send(429, {"error": {"message": "slow down"}}, {"Retry-After": "0"})
        if first and h % 7 == 0:
            srv.faults["500"] += 1
            return self._send(500, {"error": {"message": "transient"}})
        if first and h % 11 == 0:
            srv.faults["timeout"] += 1
            time.sleep(srv.slow_s)
            return self._send(200, {"choices": []})  # too late: the client has given up
        time.sleep(srv.delay_s)
        with srv.lock:
            text = _reply(body["messages"], h, srv.off_target)
            srv.served += 1
        self._send(
            200,
            {
                "id": f"chatcmpl-{key[:8]}",
                "object": "chat.completion",
                "created": 0,
                "model": body["model"],
                "choices": [{"index": 0, "message": {"role": "assistant", "content": text}, "finish_reason": "stop"}],
                "usage": {
                    "prompt_tokens": len(json.dumps(body["messages"])) // 4,
                    "completion_tokens": len(text) // 4,
                    "total_tokens": len(json.dumps(body["messages"])) // 4 + len(text) // 4,
                },
            },
        )


class FlakyServer(ThreadingHTTPServer):
    daemon_threads = True

    def __init__(self) -> None:
        super().__init__(("127.0.0.1", 0), FlakyOpenAI)
        self.lock = threading.Lock()
        self.attempts: Counter[str] = Counter()
        self.faults: Counter[str] = Counter()
        self.served = 0
        self.off_target: set[int] = set()
        self.mode = "flaky"
        self.delay_s = 0.0
        self.slow_s = 1.2

    @property
    def url(self) -> str:
        return f"http://127.0.0.1:{self.server_address[1]}/v1"


@pytest.fixture
def teacher_server():
    srv = FlakyServer()
    t = threading.Thread(target=srv.serve_forever, daemon=True)
    t.start()
    yield srv
    srv.shutdown()
    srv.server_close()


@pytest.fixture
def seed_instructions(tmp_path: Path) -> Path:
    """A small en/zh seed-instruction file in bayling's own format."""
    rows = []
    for i in range(12):
        rows.append(
            {
                "id": f"en{i}",
                "lang": "eng_Latn",
                "instruction": f"Give me tip number {i + 1} for learning a new language.",
                "response": "Practise a little every day and speak with native speakers whenever you can.",
            }
        )
        rows.append(
            {
                "id": f"zh{i}",
                "lang": "zho_Hans",
                "instruction": f"请给出学习外语的第{i + 1}条建议。",
                "response": "每天坚持练习一点，并尽可能多和母语者交流。",
            }
        )
    p = tmp_path / "seeds.jsonl"
    p.write_text("".join(json.dumps(r, ensure_ascii=False) + "\n" for r in rows), encoding="utf-8")
    return p
