"""A fake Dinstar GSM gateway (DinstarWeb HTTP JSON API) on loopback.

Digest auth (RFC 2617, MD5, qop=auth) or Basic as older firmware does,
send_sms with a port list, query_sms_result by user_id,
query_sms_deliver_status, query_incoming_sms with a queue tests push into,
and JSON pushes to the app's webhook as the gateway makes them.
"""
from __future__ import annotations

import hashlib
import itertools
import re
import secrets
from datetime import datetime
from typing import Any

from .server import FakeServer, Recorded, Reply, basic_credentials, post_json, run_standalone

SERIAL = "dg-fake-0001"
USERNAME = "admin"
PASSWORD = "dinstar-secret"
REALM = "Web Server"


def _md5(text: str) -> str:
    return hashlib.md5(text.encode()).hexdigest()  # noqa: S324 - digest auth is MD5 by definition


def _digest_fields(header: str) -> dict[str, str]:
    return {k: v1 or v2 for k, v1, v2 in re.findall(r'(\w+)=(?:"([^"]*)"|([^\s,]*))', header)}


class FakeDinstar(FakeServer):
    name = "dinstar"

    def __init__(self, *args: Any, username: str = USERNAME, password: str = PASSWORD, auth: str = "digest",
                 ports: int = 8, success_code: int = 202, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.username = username
        self.password = password
        self.auth = auth  # "digest" or "basic"
        self.ports = ports
        self.success_code = success_code
        self.failing_numbers: set[str] = set()  # sends to these end FAILED
        self.initial_status = "SENT_OK"
        self.results: list[dict[str, Any]] = []  # one per recipient, as query_sms_result shows them
        self.deliveries: list[dict[str, Any]] = []
        self.incoming: list[dict[str, Any]] = []
        self._nonces: set[str] = set()
        self._task_ids = itertools.count(1)
        self._ref_ids = itertools.count(1)
        self._incoming_ids = itertools.count(1)
        self.route("POST", r"/api/send_sms")(self._send_sms)
        self.route("POST", r"/api/query_sms_result")(self._query_result)
        self.route("POST", r"/api/query_sms_deliver_status")(self._query_deliver)
        self.route("GET", r"/api/query_incoming_sms")(self._query_incoming)
        self.route("POST", r"/_fake/incoming")(self._control_incoming)
        self.route("POST", r"/_fake/deliver")(self._control_deliver)

    # -- test helpers ------------------------------------------------------
    def sent(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(r) for r in self.results]

    def sent_count(self) -> int:
        return len(self.results)

    def sends_for(self, number: str) -> list[dict[str, Any]]:
        return [r for r in self.sent() if r["number"] == number]

    def sends_for_ref(self, user_id: int) -> list[dict[str, Any]]:
        return [r for r in self.sent() if r["user_id"] == user_id]

    def send_requests(self) -> list[Recorded]:
        return [r for r in self.api_requests("/api/send_sms") if r.header("Authorization")]

    def push_incoming(self, number: str, text: str, port: int = 0) -> dict[str, Any]:
        item = {"incoming_sms_id": next(self._incoming_ids), "port": port, "number": number, "smsc": "+59899000000",
                "timestamp": datetime.now().strftime("%Y-%m-%d %H:%M:%S"), "text": text, "read": False}
        with self.lock:
            self.incoming.append(item)
        return item

    def deliver(self, user_id: int, status_code: int = 0) -> dict[str, Any]:
        """The handset's delivery report for a sent message."""
        with self.lock:
            result = next(r for r in reversed(self.results) if r["user_id"] == user_id)
            if status_code == 0:
                result["status"] = "DELIVERED"
            report = {"port": result["port"], "number": result["number"], "time": _now(),
                      "ref_id": result["ref_id"], "status_code": status_code}
            self.deliveries.append(report)
        return report

    def push(self, url: str, kind: str, items: list[dict[str, Any]]) -> int:
        """POST `{"sn":…, kind: items}` to the app, as the gateway pushes (kind: sms, sms_result, sms_deliver_status)."""
        return post_json(url, {"sn": SERIAL, kind: items}).status_code

    def reset(self) -> None:
        super().reset()
        with self.lock:
            self.results.clear()
            self.deliveries.clear()
            self.incoming.clear()
            self.failing_numbers.clear()

    # -- auth ------------------------------------------------------------------
    def _challenge(self) -> Reply:
        if self.auth == "basic":
            header = f'Basic realm="{REALM}"'
        else:
            nonce = secrets.token_hex(16)
            with self.lock:
                self._nonces.add(nonce)
            header = f'Digest realm="{REALM}", qop="auth", nonce="{nonce}", opaque="{secrets.token_hex(8)}", ' \
                     'algorithm=MD5'
        return Reply(401, b"401 Unauthorized", {"WWW-Authenticate": header, "Content-Type": "text/plain"})

    def _authorised(self, req: Recorded) -> bool:
        if self.auth == "basic":
            return basic_credentials(req) == (self.username, self.password)
        header = req.header("Authorization") or ""
        if not header.startswith("Digest "):
            return False
        f = _digest_fields(header[7:])
        if f.get("username") != self.username or f.get("nonce") not in self._nonces:
            return False
        ha1 = _md5(f"{self.username}:{REALM}:{self.password}")
        ha2 = _md5(f"{req.method}:{f.get('uri', '')}")
        if f.get("qop") == "auth":
            expected = _md5(f"{ha1}:{f['nonce']}:{f.get('nc', '')}:{f.get('cnonce', '')}:auth:{ha2}")
        else:
            expected = _md5(f"{ha1}:{f['nonce']}:{ha2}")
        return f.get("response") == expected

    def preflight(self, req: Recorded) -> Reply | None:
        return None if self._authorised(req) else self._challenge()

    # -- API ---------------------------------------------------------------------
    def _reply(self, data: dict[str, Any]) -> Reply:
        return Reply.json({"sn": SERIAL, **data})

    def _send_sms(self, req: Recorded, m: re.Match[str]) -> Reply:
        if not self._authorised(req):
            return self._challenge()
        data = req.json
        if not isinstance(data, dict) or not data.get("text") or not data.get("param"):
            return self._reply({"error_code": 400, "reason": "text and param are required"})
        if len(data["param"]) > 50 or data.get("encoding", "unicode") not in ("unicode", "gsm-7bit"):
            return self._reply({"error_code": 400, "reason": "bad request"})
        ports = data.get("port") or list(range(self.ports))
        if any(not isinstance(p, int) or not 0 <= p < self.ports for p in ports):
            return self._reply({"error_code": 400, "reason": "invalid port"})
        task = next(self._task_ids)
        with self.lock:
            for i, param in enumerate(data["param"]):
                number = str(param.get("number", ""))
                self.results.append({
                    "port": ports[i % len(ports)], "user_id": param.get("user_id"), "number": number,
                    "time": _now(), "status": "FAILED" if number in self.failing_numbers else self.initial_status,
                    "count": 1, "succ_count": 0 if number in self.failing_numbers else 1,
                    "ref_id": next(self._ref_ids) % 256, "text": data["text"], "encoding": data.get("encoding"),
                    "task_id": task, "request_status_report": data.get("request_status_report"),
                })
        return self._reply({"error_code": self.success_code, "sms_in_queue": len(data["param"]), "task_id": task})

    def _query_result(self, req: Recorded, m: re.Match[str]) -> Reply:
        if not self._authorised(req):
            return self._challenge()
        wanted = set((req.json or {}).get("user_id") or [])
        keys = ("port", "user_id", "number", "time", "status", "count", "succ_count", "ref_id")
        with self.lock:
            rows = [{k: r[k] for k in keys} for r in self.results if not wanted or r["user_id"] in wanted]
        return self._reply({"error_code": 200, "result": rows})

    def _query_deliver(self, req: Recorded, m: re.Match[str]) -> Reply:
        if not self._authorised(req):
            return self._challenge()
        numbers = set((req.json or {}).get("number") or [])
        with self.lock:
            rows = [dict(d) for d in self.deliveries if not numbers or d["number"] in numbers]
        return self._reply({"error_code": 200, "result": rows})

    def _query_incoming(self, req: Recorded, m: re.Match[str]) -> Reply:
        if not self._authorised(req):
            return self._challenge()
        unread_only = req.query.get("flag", "all") == "unread"
        with self.lock:
            rows = [i for i in self.incoming if not unread_only or not i["read"]]
            for item in rows:
                item["read"] = True
            out = [{k: v for k, v in i.items() if k != "read"} for i in rows]
            read = sum(1 for i in self.incoming if i["read"])
        return self._reply({"error_code": 200, "sms": out, "read": read, "unread": len(self.incoming) - read})

    def _control_incoming(self, req: Recorded, m: re.Match[str]) -> Reply:
        data = req.json or {}
        return Reply.json(self.push_incoming(data["number"], data["text"], int(data.get("port", 0))))

    def _control_deliver(self, req: Recorded, m: re.Match[str]) -> Reply:
        data = req.json or {}
        return Reply.json(self.deliver(int(data["user_id"]), int(data.get("status_code", 0))))

    def failure_reply(self, mode: str) -> Reply:
        if mode == "429":
            return Reply.json({"error_code": 429, "sn": SERIAL}, 429, {"Retry-After": self.retry_after})
        return Reply.text("500 Internal Server Error", 500)

    def malformed_reply(self, reply: Reply) -> Reply:
        return Reply(reply.status, b'{"error_code": 20', {"Content-Type": "application/json"})


def _now() -> str:
    return datetime.now().strftime("%Y-%m-%d %H:%M:%S")


def main() -> None:
    run_standalone(lambda a: FakeDinstar(username=a.username, password=a.password, auth=a.auth),
                   "Fake Dinstar GSM gateway",
                   lambda p: (p.add_argument("--username", default=USERNAME),
                              p.add_argument("--password", default=PASSWORD),
                              p.add_argument("--auth", choices=["digest", "basic"], default="digest")))


if __name__ == "__main__":
    main()
