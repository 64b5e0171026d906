"""A fake of Twilio's Programmable Messaging REST API (2010-04-01) on loopback.

Speaks the wire format of shared/PROVIDERS.md: form-encoded Messages.json
create with Basic auth, Twilio's error JSON, the paged Messages list with
To / From / DateSent filters, fetch by sid, and signed status callbacks and
inbound webhooks back to the app (signed with the official package's
RequestValidator, so what our verifier accepts is what Twilio sends).

Media (issue 13): an inbound message's `MediaUrl{N}` is
`https://api.twilio.com/2010-04-01/Accounts/{AccountSid}/Messages/{MM…}/Media/{ME…}`; a GET with the
account's Basic auth answers 307 to a short-lived CDN URL on another host (here: `localhost` instead of
`127.0.0.1`) that takes no credentials (an Authorization header there is refused, as S3 refuses two auth
mechanisms); without valid Basic auth the media URL answers 401 (20003), an unknown one 404 (20404).
WhatsApp locations come as `Latitude`, `Longitude`, `Address`, `Label` form fields.

Content API (issue 13): `GET https://content.twilio.com/v1/ContentAndApprovals?PageSize=N` (Basic auth) →
`{"contents": [{sid: HX…, friendly_name, language, variables: {"1": "…"}, types: {"twilio/text": {body},
"twilio/media": {body, media: [url]}, "twilio/quick-reply": {body, actions: [{title, id}]},
"twilio/call-to-action": {body, actions: [{type, title, url|phone}]}, …}, approval_requests: {name,
category, status, rejection_reason, content_type}, date_created, date_updated}], "meta": {page,
page_size, first_page_url, previous_page_url, url, next_page_url, key: "contents"}}`; here served on this
server (the provider's `content_api_url` option points at it).

Sending media (W1): `MediaUrl` may repeat (at most 10, else 21623); the resource records them in
`media_urls` (a test field) and `num_media`. A Content template send records `content_sid` and the parsed
`content_variables`.

Magic numbers, as Twilio's test credentials define them:
+15005550001 invalid (21211), +15005550009 not SMS-capable (21614),
+15005550004 blocked (21610); `opted_out` adds more 21610 numbers; `pair_limited` numbers get
14107 (too many messages between the two numbers just now).
"""
from __future__ import annotations

import itertools
import json
import re
import secrets
from datetime import UTC, date, datetime
from email.utils import format_datetime, parsedate_to_datetime
from typing import Any
from urllib.parse import urlencode

from twilio.request_validator import RequestValidator

from .server import FakeServer, Recorded, Reply, basic_credentials, post_form, run_standalone

ACCOUNT_SID = "AC" + "0" * 31 + "1"
AUTH_TOKEN = "fake-auth-token-0123456789abcdef"
MAGIC_ERRORS = {
    "+15005550001": (21211, "The 'To' number +15005550001 is not a valid phone number."),
    "+15005550009": (21614, "'To' number is not a valid mobile number"),
    "+15005550004": (21610, "Attempt to send to unsubscribed recipient"),
}
API = r"/2010-04-01/Accounts/(?P<account>[^/]+)"


def twilio_error(code: int, message: str, status: int = 400) -> Reply:
    return Reply.json({"code": code, "message": message,
                       "more_info": f"https://www.twilio.com/docs/errors/{code}", "status": status}, status)


class FakeTwilio(FakeServer):
    name = "twilio"

    def __init__(self, *args: Any, account_sid: str = ACCOUNT_SID, auth_token: str = AUTH_TOKEN,
                 page_size: int = 50, max_page_size: int = 1000, **kwargs: Any):
        super().__init__(*args, **kwargs)
        self.account_sid = account_sid
        self.auth_token = auth_token
        self.page_size = page_size  # when the request names no PageSize
        self.max_page_size = max_page_size  # Twilio caps PageSize at 1000
        self.opted_out: set[str] = set()
        self.pair_limited: set[str] = set()  # 14107
        self.hold_in_queue = False  # keep date_sent null, as for a message still queued at Twilio
        self.messages: dict[str, dict[str, Any]] = {}  # sid -> resource, in creation order
        self._callbacks: dict[str, str] = {}
        self._seq = itertools.count(1)
        self.route("POST", API + r"/Messages\.json")(self._create)
        self.route("GET", API + r"/Messages\.json")(self._list)
        self.route("GET", API + r"/Messages/(?P<sid>SM\w+)\.json")(self._fetch)
        self.route("POST", r"/_fake/opted_out")(self._control_opted_out)
        self.route("POST", r"/_fake/deliver")(self._control_deliver)
        self.media: dict[str, tuple[bytes, str]] = {}  # ME sid -> (bytes, MIME type)
        self._cdn: dict[str, str] = {}  # CDN token -> ME sid
        self.contents: list[dict[str, Any]] = []  # the Content API's list
        self.content_page_size = 50  # the most one page holds, whatever PageSize the request names
        self.route("GET", API + r"/Messages/(?P<message>MM\w+)/Media/(?P<media>ME\w+)")(self._media)
        self.route("GET", r"/cdn/(?P<token>\w+)")(self._cdn_file)
        self.route("GET", r"/v1/ContentAndApprovals")(self._contents)

    # -- test helpers ------------------------------------------------------
    def sent(self) -> list[dict[str, Any]]:
        with self.lock:
            return [dict(m) for m in self.messages.values()]

    def sent_count(self) -> int:
        return len(self.messages)

    def sends_for(self, to: str) -> list[dict[str, Any]]:
        return [m for m in self.sent() if m["to"] in (to, f"whatsapp:{to}")]

    def sends_with_body(self, body: str) -> list[dict[str, Any]]:
        return [m for m in self.sent() if m["body"] == body]

    def reset(self) -> None:
        super().reset()
        with self.lock:
            self.messages.clear()
            self._callbacks.clear()
            self.opted_out.clear()
            self.pair_limited.clear()
            self.hold_in_queue = False
            self.media.clear()
            self._cdn.clear()
            self.contents.clear()

    # -- media (issue 13) ------------------------------------------------------------------
    def add_media(self, data: bytes, content_type: str) -> str:
        """Keep a file as an inbound message's media; returns its MediaUrl."""
        media = "ME" + secrets.token_hex(16)
        with self.lock:
            self.media[media] = (data, content_type)
        return f"{self.url}/2010-04-01/Accounts/{self.account_sid}/Messages/MM{secrets.token_hex(16)}/Media/{media}"

    def _media(self, req: Recorded, m: re.Match[str]) -> Reply:
        if not self._authorised(req, m["account"]):
            return twilio_error(20003, "Authenticate", 401)
        with self.lock:
            if m["media"] not in self.media:
                return twilio_error(20404, f"The requested resource {req.path} was not found", 404)
            token = secrets.token_hex(12)
            self._cdn[token] = m["media"]
        return Reply(307, b"", {"Location": f"http://localhost:{self.port}/cdn/{token}"})

    def _cdn_file(self, req: Recorded, m: re.Match[str]) -> Reply:
        if req.header("Authorization"):
            return Reply.text("Only one auth mechanism allowed", 400, "application/xml")
        with self.lock:
            media = self._cdn.get(m["token"])
            found = self.media.get(media or "")
        if found is None:
            return Reply.text("NoSuchKey", 404, "application/xml")
        return Reply(200, found[0], {"Content-Type": found[1]})

    def media_requests(self) -> list[Recorded]:
        """The requests for media files (MediaUrl and the CDN), in order."""
        return [r for r in self.api_requests() if "/Media/" in r.path or r.path.startswith("/cdn/")]

    # -- the Content API (issue 13) -------------------------------------------------------------
    def add_content(self, friendly_name: str, body: str, *, language: str = "es", category: str = "UTILITY",
                    status: str = "approved", variables: dict[str, str] | None = None,
                    types: dict[str, Any] | None = None, rejection_reason: str = "") -> str:
        """A content template with its WhatsApp approval; returns its ContentSid (HX…)."""
        sid = "HX" + secrets.token_hex(16)
        stamp = datetime.now(UTC).isoformat().replace("+00:00", "Z")
        with self.lock:
            self.contents.append({
                "sid": sid, "account_sid": self.account_sid, "friendly_name": friendly_name, "language": language,
                "variables": variables or {}, "types": types or {"twilio/text": {"body": body}},
                "approval_requests": {"name": friendly_name, "category": category, "content_type": "twilio/text",
                                      "status": status, "rejection_reason": rejection_reason,
                                      "allow_category_change": True},
                "date_created": stamp, "date_updated": stamp, "url": f"https://content.twilio.com/v1/Content/{sid}"})
        return sid

    def _contents(self, req: Recorded, m: re.Match[str]) -> Reply:
        if basic_credentials(req) != (self.account_sid, self.auth_token):
            return twilio_error(20003, "Authenticate", 401)
        size = min(int(req.query.get("PageSize", self.content_page_size)), self.content_page_size)
        page = int(req.query.get("Page", 0))
        with self.lock:
            rows = [dict(c) for c in self.contents]
        base = f"{self.url}/v1/ContentAndApprovals"

        def page_url(n: int) -> str:
            return f"{base}?{urlencode({'PageSize': size, 'Page': n, 'PageToken': f'PT{n}'})}"

        more = (page + 1) * size < len(rows)
        return Reply.json({"contents": rows[page * size:(page + 1) * size], "meta": {
            "page": page, "page_size": size, "first_page_url": page_url(0), "url": page_url(page),
            "previous_page_url": page_url(page - 1) if page > 0 else None,
            "next_page_url": page_url(page + 1) if more else None, "key": "contents"}})

    def add_message(self, to: str, body: str, from_: str, created: datetime, status: str = "delivered") -> str:
        """Put an older message in the account's log (for lookup and paging tests)."""
        sid = self._new_sid()
        with self.lock:
            self.messages[sid] = self._resource(sid, to, from_, body, None, created, status)
            self.messages[sid]["date_sent"] = format_datetime(created)
        return sid

    def signature(self, url: str, params: dict[str, str]) -> str:
        return RequestValidator(self.auth_token).compute_signature(url, params)

    def deliver(self, sid: str, status: str = "delivered", url: str | None = None,
                error_code: str | None = None) -> int:
        """POST a signed status callback for `sid` to its StatusCallback (or `url`); returns the HTTP status."""
        with self.lock:
            message = self.messages[sid]
            message["status"] = status
            target = url or self._callbacks.get(sid)
        if not target:
            raise ValueError(f"message {sid} has no StatusCallback")
        params = {"MessageSid": sid, "SmsSid": sid, "MessageStatus": status, "SmsStatus": status,
                  "AccountSid": self.account_sid, "From": message["from"], "To": message["to"],
                  "ApiVersion": "2010-04-01"}
        if error_code:
            params["ErrorCode"] = error_code
        return post_form(target, params, {"X-Twilio-Signature": self.signature(target, params)}).status_code

    def send_inbound(self, url: str, from_: str, to: str, body: str, **extra: str) -> int:
        """POST a signed inbound-message webhook, as Twilio does when a customer writes."""
        sid = "SM" + secrets.token_hex(16)
        params = {"MessageSid": sid, "SmsMessageSid": sid, "AccountSid": self.account_sid, "From": from_,
                  "To": to, "Body": body, "NumMedia": "0", "NumSegments": "1", "ApiVersion": "2010-04-01",
                  **extra}
        return post_form(url, params, {"X-Twilio-Signature": self.signature(url, params)}).status_code

    # -- routes --------------------------------------------------------------
    def _authorised(self, req: Recorded, account: str) -> bool:
        return basic_credentials(req) == (self.account_sid, self.auth_token) and account == self.account_sid

    def _new_sid(self) -> str:
        return "SM" + f"{next(self._seq):08x}" + secrets.token_hex(12)

    def _resource(self, sid: str, to: str, from_: str, body: str, service: str | None, created: datetime,
                  status: str) -> dict[str, Any]:
        stamp = format_datetime(created)
        segments = 1 if len(body) <= 160 else -(-len(body) // 153)
        return {
            "account_sid": self.account_sid, "api_version": "2010-04-01", "body": body,
            "date_created": stamp, "date_sent": None if self.hold_in_queue else stamp, "date_updated": stamp,
            "direction": "outbound-api", "error_code": None, "error_message": None, "from": from_,
            "messaging_service_sid": service, "num_media": "0", "num_segments": str(segments),
            "price": None, "price_unit": "USD", "sid": sid, "status": status, "to": to,
            "subresource_uris": {"media": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}/Media.json"},
            "uri": f"/2010-04-01/Accounts/{self.account_sid}/Messages/{sid}.json",
        }

    def _create(self, req: Recorded, m: re.Match[str]) -> Reply:
        if not self._authorised(req, m["account"]):
            return twilio_error(20003, "Authenticate", 401)
        form = req.form
        to = form.get("To", "")
        number = to.removeprefix("whatsapp:")
        if not to:
            return twilio_error(21604, "A 'To' phone number is required.")
        if not (form.get("From") or form.get("MessagingServiceSid")):
            return twilio_error(21603, "A 'From' or 'MessagingServiceSid' parameter is required.")
        if not (form.get("Body") or form.get("MediaUrl") or form.get("ContentSid")):
            return twilio_error(21602, "Message body is required.")
        if len(form.get("Body", "")) > 1600:
            return twilio_error(21617, "The concatenated message body exceeds the 1600 character limit.")
        if number in MAGIC_ERRORS:
            return twilio_error(*MAGIC_ERRORS[number])
        if number in self.opted_out:
            return twilio_error(21610, "Attempt to send to unsubscribed recipient")
        if number in self.pair_limited:
            return twilio_error(14107, "SMS send rate limit exceeded")
        if not re.fullmatch(r"\+[1-9]\d{6,14}", number):
            return twilio_error(21211, f"The 'To' number {number} is not a valid phone number.")
        sid = self._new_sid()
        body = form.get("Body", "")
        if form.get("ContentSid"):
            variables = json.loads(form.get("ContentVariables") or "{}")
            body = f"[template {form['ContentSid']}] " + " ".join(str(v) for v in variables.values())
        service = form.get("MessagingServiceSid")
        resource = self._resource(sid, to, form.get("From", ""), body, service, datetime.now(UTC),
                                  "accepted" if service else "queued")
        # W1: every MediaUrl (Twilio takes up to 10 and fetches them when it sends).
        media_urls = req.form_lists.get("MediaUrl", [])
        if len(media_urls) > 10:
            return twilio_error(21623, "Too many media urls, the limit is 10.")
        resource["num_media"] = str(len(media_urls))
        resource["media_urls"] = media_urls
        if form.get("ContentSid"):
            resource["content_sid"] = form["ContentSid"]
            resource["content_variables"] = json.loads(form.get("ContentVariables") or "{}")
        with self.lock:
            self.messages[sid] = resource
            if form.get("StatusCallback"):
                self._callbacks[sid] = form["StatusCallback"]
        return Reply.json(resource, 201)

    def _fetch(self, req: Recorded, m: re.Match[str]) -> Reply:
        if not self._authorised(req, m["account"]):
            return twilio_error(20003, "Authenticate", 401)
        with self.lock:
            message = self.messages.get(m["sid"])
        if message is None:
            return twilio_error(20404, f"The requested resource {req.path} was not found", 404)
        return Reply.json(message)

    def _list(self, req: Recorded, m: re.Match[str]) -> Reply:
        if not self._authorised(req, m["account"]):
            return twilio_error(20003, "Authenticate", 401)
        q = req.query
        with self.lock:
            rows = list(self.messages.values())
        rows.reverse()  # newest first, as Twilio lists

        def sent_on(row: dict[str, Any]) -> date | None:
            if not row["date_sent"]:
                return None
            return parsedate_to_datetime(row["date_sent"]).date()

        if "To" in q:
            rows = [r for r in rows if r["to"] == q["To"]]
        if "From" in q:
            rows = [r for r in rows if r["from"] == q["From"]]
        for key, test in (("DateSent>", lambda d, v: d is not None and d >= v),
                          ("DateSent<", lambda d, v: d is not None and d <= v),
                          ("DateSent", lambda d, v: d == v)):
            if key in q:
                bound = date.fromisoformat(q[key])
                rows = [r for r in rows if test(sent_on(r), bound)]
        size = min(int(q.get("PageSize", self.page_size)), self.max_page_size)
        page = int(q.get("Page", 0))
        chunk = rows[page * size:(page + 1) * size]
        base = f"/2010-04-01/Accounts/{self.account_sid}/Messages.json"
        keep = {k: v for k, v in q.items() if k not in ("Page", "PageToken", "PageSize")}

        def page_uri(n: int) -> str:
            return base + "?" + urlencode({**keep, "PageSize": size, "Page": n, "PageToken": f"PA{n}"})

        more = (page + 1) * size < len(rows)
        return Reply.json({
            "messages": chunk, "page": page, "page_size": size, "start": page * size,
            "end": page * size + len(chunk) - 1, "uri": page_uri(page), "first_page_uri": page_uri(0),
            "next_page_uri": page_uri(page + 1) if more else None,
            "previous_page_uri": page_uri(page - 1) if page > 0 else None,
        })

    def _control_opted_out(self, req: Recorded, m: re.Match[str]) -> Reply:
        numbers = (req.json or {}).get("numbers", [])
        with self.lock:
            self.opted_out.update(numbers)
        return Reply.json({"opted_out": sorted(self.opted_out)})

    def _control_deliver(self, req: Recorded, m: re.Match[str]) -> Reply:
        data = req.json or {}
        status = self.deliver(data["sid"], data.get("status", "delivered"), data.get("url"),
                              data.get("error_code"))
        return Reply.json({"callback_status": status})

    def failure_reply(self, mode: str) -> Reply:
        if mode == "429":
            reply = twilio_error(20429, "Too Many Requests", 429)
            reply.headers["Retry-After"] = self.retry_after
            return reply
        return twilio_error(20500, "Internal Server Error", 500)


def main() -> None:
    run_standalone(lambda args: FakeTwilio(account_sid=args.account_sid, auth_token=args.auth_token),
                   "Fake Twilio Messaging API",
                   lambda p: (p.add_argument("--account-sid", default=ACCOUNT_SID),
                              p.add_argument("--auth-token", default=AUTH_TOKEN)))


if __name__ == "__main__":
    main()
