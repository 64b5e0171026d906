"""A fake URL-based SMS aggregator (the shape Quality Telecom and its peers have), configurable per test.

It takes a message as GET query or POST form/JSON at `/send`, checks Basic or
header auth, and answers either "OK <id>" text or a small JSON, so both the
`quality` preset and the configurable `http` provider can be driven against it.
"""
from __future__ import annotations

import itertools
import re
from typing import Any

from .server import FakeServer, Recorded, Reply, basic_credentials, run_standalone

USERNAME = "conversa"
PASSWORD = "agg-secret"
TOKEN = "agg-token-123"


class FakeAggregator(FakeServer):
    name = "aggregator"

    def __init__(self, *args: Any, auth: str = "params", answer: str = "text", username: str = USERNAME,
                 password: str = PASSWORD, token: str = TOKEN, to_field: str = "to", text_field: str = "text",
                 **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.auth = auth  # "params" (user/password fields), "basic", "header" (Bearer token) or "none"
        self.answer = answer  # "text": "OK <id>" / "ERROR ..."; "json": {"status": "ok", "data": {"id": ...}}
        self.username, self.password, self.token = username, password, token
        self.to_field, self.text_field = to_field, text_field
        self.refusal_status = 200  # aggregators often refuse with 200 and an ERROR body
        self.invalid_prefix = "+1500555"  # numbers starting with it are refused as invalid
        self.messages: list[dict[str, Any]] = []
        self._ids = itertools.count(1000)
        self.route("POST", r"/send")(self._send)
        self.route("GET", r"/send")(self._send)

    def sent(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(m) for m in self.messages]

    def sent_count(self) -> int:
        return len(self.messages)

    def sends_for(self, to: str) -> list[dict[str, Any]]:
        return [m for m in self.sent() if m["to"] == to]

    def reset(self) -> None:
        super().reset()
        with self.lock:
            self.messages.clear()

    def _fields(self, req: Recorded) -> dict[str, str]:
        if req.method == "GET":
            return dict(req.query)
        if isinstance(req.json, dict):
            return {k: str(v) for k, v in req.json.items()}
        return dict(req.form)

    def _authorised(self, req: Recorded, fields: dict[str, str]) -> bool:
        if self.auth == "params":
            return fields.get("user") == self.username and fields.get("password") == self.password
        if self.auth == "basic":
            return basic_credentials(req) == (self.username, self.password)
        if self.auth == "header":
            return req.header("Authorization") == f"Bearer {self.token}"
        return True

    def _refuse(self, reason: str, status: int) -> Reply:
        if self.answer == "json":
            return Reply.json({"status": "error", "error": reason}, status)
        return Reply.text(f"ERROR {reason}", status)

    def _send(self, req: Recorded, m: re.Match[str]) -> Reply:
        fields = self._fields(req)
        if not self._authorised(req, fields):
            return self._refuse("authentication failed", 401)
        to, text = fields.get(self.to_field, ""), fields.get(self.text_field, "")
        if not to or not text:
            return self._refuse("missing to or text", 400)
        if to.startswith(self.invalid_prefix):
            return self._refuse("invalid number", self.refusal_status)
        message_id = f"agg-{next(self._ids)}"
        with self.lock:
            self.messages.append({"id": message_id, "to": to, "text": text, "from": fields.get("from"),
                                  "ref": fields.get("id"), "fields": fields})
        if self.answer == "json":
            return Reply.json({"status": "ok", "data": {"id": message_id}})
        return Reply.text(f"OK {message_id}")

    def failure_reply(self, mode: str) -> Reply:
        if mode == "429":
            return Reply(429, b"ERROR throttled", {"Retry-After": self.retry_after, "Content-Type": "text/plain"})
        return Reply.text("ERROR internal", 500)

    def malformed_reply(self, reply: Reply) -> Reply:
        return Reply(reply.status, b'{"status": "o', {"Content-Type": "application/json"})


def main() -> None:
    run_standalone(lambda a: FakeAggregator(auth=a.auth, answer=a.answer), "Fake SMS aggregator",
                   lambda p: (p.add_argument("--auth", choices=["params", "basic", "header", "none"],
                                             default="params"),
                              p.add_argument("--answer", choices=["text", "json"], default="text")))


if __name__ == "__main__":
    main()
