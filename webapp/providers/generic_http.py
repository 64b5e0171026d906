"""A configurable URL-based SMS provider (`http`) and its Quality Telecom preset (`quality`).

Many aggregators take a message as a GET or POST to one URL with the
recipient and text as parameters and answer "OK" or a small JSON. The admin
describes the request with templates; placeholders are
``{to}`` (E.164 with +), ``{to_digits}`` (without +), ``{to_national}``
(needs option ``country_code``), ``{text}``, ``{from}``, ``{id}`` (our ref),
``{username}``, ``{password}`` and ``{token}``.

Options (all optional, see `DEFAULTS`):
  method            "GET" or "POST"
  url               URL template, default the provider's base URL
  params            {name: template} sent as query (GET), form or JSON (POST)
  body_format       "form" or "json" (POST)
  auth              "none", "basic" (username/password) or "header"
  auth_header       header name for "header" auth, default "Authorization"
  auth_value        template for it, default "Bearer {token}"
  success_status    an int or list of ints, default [200]
  success_contains  a substring the body must contain
  success_json_field / success_json_value   a dotted JSON path and the value it must hold
  message_id_regex  regex whose first group (or whole match) is the gateway's message id
  message_id_json   dotted JSON path of the gateway's message id
  permanent_contains  substrings of a refusal that will not change (e.g. "invalid number")
  country_code      for {to_national}: "598" makes +59898344384 into 098344384
  national_prefix   trunk prefix for {to_national}, default "0"
  webhook_token     shared token required as ?token= on inbound webhooks
"""
from __future__ import annotations

import json
import re
import string
from typing import Any
from urllib.parse import quote

import requests

from .base import OutboundMessage, Outcome, ProviderConfig, SendResult, WebhookRequest
from .dinstar import token_matches
from .http import HttpAdapter, rate_limited

DEFAULTS: dict[str, Any] = {
    "method": "POST",
    "url": "",
    "params": {"to": "{to}", "text": "{text}", "from": "{from}"},
    "body_format": "form",
    "auth": "none",
    "auth_header": "Authorization",
    "auth_value": "Bearer {token}",
    "success_status": [200],
    "success_contains": "",
    "success_json_field": "",
    "success_json_value": "",
    "message_id_regex": "",
    "message_id_json": "",
    "permanent_contains": [],
}
PLACEHOLDERS = ("to", "to_digits", "to_national", "text", "from", "id", "username", "password", "token")


class TemplateError(ValueError):
    """A template names a placeholder we do not have."""


def render(template: str, values: dict[str, str], *, quote_values: bool = False) -> str:
    """Fill {placeholders}; in a URL the values are percent-encoded."""
    out = []
    for literal, name, spec, conv in string.Formatter().parse(template):
        out.append(literal)
        if name is None:
            continue
        if name not in values or spec or conv:
            raise TemplateError(f"unknown placeholder {{{name}}} in {template!r}")
        out.append(quote(values[name], safe="") if quote_values else values[name])
    return "".join(out)


def json_path(data: Any, path: str) -> Any:
    """Follow a dotted path ("data.0.id") through dicts and lists; None when absent."""
    for part in path.split("."):
        if isinstance(data, dict):
            data = data.get(part)
        elif isinstance(data, list) and part.isdigit() and int(part) < len(data):
            data = data[int(part)]
        else:
            return None
    return data


class GenericHttpAdapter(HttpAdapter):
    """The `http` type: everything from options. It cannot be asked about past sends, so lookup is UNKNOWN."""

    type = "http"
    preset: dict[str, Any] = {}

    def __init__(self, config: ProviderConfig, **kw: Any):
        super().__init__(config, **kw)
        self.options: dict[str, Any] = {**DEFAULTS, **self.preset, **{k: v for k, v in config.options.items()
                                                                     if v not in (None, "")}}

    def _auth(self) -> tuple[str, str] | None:
        if str(self.options["auth"]).lower() == "basic":
            creds = self.config.credentials
            return (creds.get("username", ""), creds.get("password", ""))
        return None

    # -- request -----------------------------------------------------------
    def values(self, message: OutboundMessage) -> dict[str, str]:
        creds = self.config.credentials
        digits = message.to.lstrip("+")
        cc = str(self.options.get("country_code") or "").lstrip("+")
        national = digits[len(cc):] if cc and digits.startswith(cc) else digits
        if cc and digits.startswith(cc):
            national = str(self.options.get("national_prefix", "0")) + national
        return {"to": message.to, "to_digits": digits, "to_national": national, "text": message.body,
                "from": self.config.sender, "id": str(message.ref), "username": creds.get("username", ""),
                "password": creds.get("password", ""), "token": creds.get("token", "")}

    def build_request(self, message: OutboundMessage) -> tuple[str, str, dict[str, Any]]:
        """(method, url, requests kwargs) for one message."""
        values = self.values(message)
        method = str(self.options["method"]).upper()
        url = render(str(self.options["url"] or self.base_url), values, quote_values=True)
        params = {name: render(str(tpl), values) for name, tpl in dict(self.options["params"]).items()}
        kwargs: dict[str, Any] = {}
        if method == "GET":
            kwargs["params"] = params
        elif self.options["body_format"] == "json":
            kwargs["data"] = json.dumps(params, ensure_ascii=False).encode()
            kwargs["headers"] = {"Content-Type": "application/json"}
        else:
            kwargs["data"] = params
        if str(self.options["auth"]).lower() == "header":
            kwargs.setdefault("headers", {})[str(self.options["auth_header"])] = render(
                str(self.options["auth_value"]), values)
        return method, url, kwargs

    def send(self, message: OutboundMessage) -> SendResult:
        try:
            method, url, kwargs = self.build_request(message)
        except TemplateError as exc:
            return SendResult(Outcome.PERMANENT, error_code="config", error_message=str(exc))
        return self.http.send(method, url, self.classify, **kwargs)

    # -- answer ------------------------------------------------------------------
    def _success_statuses(self) -> set[int]:
        value = self.options["success_status"]
        if isinstance(value, int | str):
            value = [value]
        return {int(v) for v in value}

    def classify(self, response: requests.Response) -> SendResult:
        text = response.text
        snippet = text[:200]
        if response.status_code == 429:
            return rate_limited(response, "429", snippet)
        if response.status_code >= 500 or response.status_code == 408:
            return SendResult(Outcome.TEMPORARY, error_code=str(response.status_code), error_message=snippet)
        if response.status_code not in self._success_statuses():
            return SendResult(Outcome.PERMANENT, error_code=str(response.status_code), error_message=snippet)
        data: Any = None
        field = str(self.options["success_json_field"] or "")
        if field or self.options["message_id_json"]:
            data = response.json()  # an unreadable 2xx is ambiguous: raised to the client
        ok = True
        if self.options["success_contains"]:
            ok = str(self.options["success_contains"]) in text
        if field:
            ok = ok and str(json_path(data, field)) == str(self.options["success_json_value"])
        if not ok:
            permanent = [p for p in self.options["permanent_contains"] or [] if p and p.lower() in text.lower()]
            code = "refused" if permanent or not self.options["permanent_contains"] else "unrecognised"
            # An answer we do not recognise as a refusal may hide an accepted message.
            return SendResult(Outcome.PERMANENT if code == "refused" else Outcome.TEMPORARY,
                              error_code=code, error_message=snippet, ambiguous=code == "unrecognised")
        return SendResult(Outcome.SENT, provider_message_id=self._message_id(text, data), status="accepted")

    def _message_id(self, text: str, data: Any) -> str | None:
        if self.options["message_id_json"]:
            value = json_path(data, str(self.options["message_id_json"]))
            return None if value is None else str(value)
        if self.options["message_id_regex"]:
            match = re.search(str(self.options["message_id_regex"]), text)
            if match:
                return match.group(1) if match.groups() else match.group(0)
        return None

    # -- webhooks --------------------------------------------------------------------
    def verify_signature(self, request: WebhookRequest) -> bool:
        return token_matches(request, self.options.get("webhook_token"))


class QualityAdapter(GenericHttpAdapter):
    """Quality Telecom, as a preset of the configurable HTTP provider.

    Quality's API is not public: these defaults (a form POST of user,
    password, to, text and from to the base URL, success = HTTP 200 with
    "OK" in the body) are the common shape of such aggregators, and every
    one of them can be changed in the provider's options when the contract
    with Quality says otherwise.
    """

    type = "quality"
    preset = {
        "method": "POST",
        "body_format": "form",
        "params": {"user": "{username}", "password": "{password}", "to": "{to}", "text": "{text}",
                   "from": "{from}"},
        "success_status": [200],
        "success_contains": "OK",
        "message_id_regex": r"OK[\s:]+([\w-]+)",
    }
