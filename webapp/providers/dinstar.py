"""Dinstar GSM gateways ("Dinstar - DinstarWeb" HTTP JSON API).

Messages go out through the gateway's SIM ports; a request carries one text
and up to 50 recipients, so a batch is split by (text, port). Our spool id
travels as `user_id` and comes back in results, which is how an in-flight
message is reconciled after a crash.
"""
from __future__ import annotations

import hashlib
import hmac
import json
import logging
from collections import OrderedDict
from datetime import datetime
from typing import Any

import requests

from . import payload
from .base import (
    InboundMessage,
    LookupOutcome,
    LookupResult,
    OutboundMessage,
    Outcome,
    SendResult,
    StatusUpdate,
    WebhookRequest,
)
from .gsm import is_gsm7
from .gsm import segments as count_segments
from .http import DigestOrBasicAuth, GatewayError, HttpAdapter, rate_limited, reconcile

log = logging.getLogger(__name__)

SUCCESS_CODES = frozenset({200, 202})
MAX_BATCH = 50
RESULT_STATUS = {"SENDING": "queued", "SENT_OK": "sent", "DELIVERED": "delivered", "FAILED": "failed"}
FOUND_STATUSES = frozenset({"SENT_OK", "DELIVERED", "SENDING"})
MAX_PORT = 9999  # far more SIM ports than any gateway has


def delivery_status(status_code: int) -> str:
    """A delivery report's status_code: 0 received, 32-63 still trying, 64-255 permanent failure."""
    if status_code == 0:
        return "delivered"
    if 64 <= status_code <= 255:
        return "undelivered"
    return "sent"


def _timestamp(value: Any) -> datetime | None:
    try:
        return datetime.strptime(str(value), "%Y-%m-%d %H:%M:%S")
    except ValueError:
        return None


def token_matches(request: WebhookRequest, token: str | None) -> bool:
    """Gateways that do not sign: the shared `token` query argument, compared in constant time. Without a
    token configured nothing is accepted (the provider form generates one)."""
    if not token:
        return False
    given = request.args.get("token", "")
    return hmac.compare_digest(given.encode(), str(token).encode())


class DinstarAdapter(HttpAdapter):
    type = "dinstar"
    batch_size = MAX_BATCH
    uses_ports = True

    def _auth(self) -> DigestOrBasicAuth:
        creds = self.config.credentials
        return DigestOrBasicAuth(creds.get("username", ""), creds.get("password", ""))

    def _headers(self) -> dict[str, str]:
        return {"Content-Type": "application/json"}

    def _url(self, path: str) -> str:
        return f"{self.base_url}{path}"

    # -- numbers -------------------------------------------------------------
    def dial_number(self, number: str) -> str:
        """The number as the gateway dials it: national with the trunk 0 when `country_code` is set."""
        cc = str(self.config.options.get("country_code") or "").lstrip("+")
        if cc and number.startswith("+" + cc):
            return "0" + number[len(cc) + 1:]
        return number

    def e164(self, number: str) -> str:
        """A number the gateway reports, in E.164 where `country_code` tells enough."""
        number = str(number).strip().replace(" ", "")
        cc = str(self.config.options.get("country_code") or "").lstrip("+")
        if number.startswith("+"):
            return number
        if number.startswith("00"):
            return "+" + number[2:]
        if cc and number.startswith("0"):
            return f"+{cc}{number[1:]}"
        if cc and number.startswith(cc) and len(number) > len(cc) + 6:
            return "+" + number
        return number

    def port_number(self, port: Any) -> str:
        numbers = self.config.options.get("port_numbers") or {}
        return str(numbers.get(str(port)) or numbers.get(port) or self.config.sender)

    # -- send ------------------------------------------------------------------
    def send(self, message: OutboundMessage) -> SendResult:
        return self.send_batch([message])[0]

    def send_batch(self, messages: list[OutboundMessage]) -> list[SendResult]:
        """One request per (text, port) group of up to 50; results in the order given."""
        results: dict[int, SendResult] = {}
        groups: OrderedDict[tuple[str, int | None], list[int]] = OrderedDict()
        for index, message in enumerate(messages):
            groups.setdefault((message.body, message.port), []).append(index)
        for indexes in groups.values():
            for start in range(0, len(indexes), MAX_BATCH):
                chunk = indexes[start:start + MAX_BATCH]
                for index, result in zip(chunk, self._send_group([messages[i] for i in chunk]), strict=True):
                    results[index] = result
        return [results[i] for i in range(len(messages))]

    def _payload(self, group: list[OutboundMessage]) -> dict[str, Any]:
        text = group[0].body
        payload: dict[str, Any] = {
            "text": text,
            "encoding": "gsm-7bit" if is_gsm7(text) else "unicode",
            "request_status_report": True,
            "param": [{"number": self.dial_number(m.to), "user_id": m.ref} for m in group],
        }
        if group[0].port is not None:
            payload["port"] = [group[0].port]
        return payload

    def _send_group(self, group: list[OutboundMessage]) -> list[SendResult]:
        """Send one request; an ambiguous answer is reconciled per user_id before any resend."""
        done: dict[int, SendResult] = {}
        pending = list(group)
        parts = count_segments(group[0].body).segments or 1
        attempts = 0
        while pending:
            attempts += 1
            result = self.http.attempt("POST", self._url("/api/send_sms"), classify,
                                       data=json.dumps(self._payload(pending)))
            if result.outcome is Outcome.SENT:
                for m in pending:
                    done[m.ref] = SendResult(Outcome.SENT, provider_message_id=str(m.ref), status=result.status,
                                             segments=parts, attempts=attempts)
                break
            if result.outcome in (Outcome.PERMANENT, Outcome.OPTED_OUT):
                break
            if result.ambiguous:
                found = self._lookup_many(pending)
                if found is None:
                    break  # the gateway cannot tell: leave them ambiguous
                for m in pending:
                    if found.get(m.ref, {}).get("status") in FOUND_STATUSES:
                        done[m.ref] = SendResult(Outcome.SENT, provider_message_id=str(m.ref),
                                                 status=found[m.ref]["status"], segments=parts, attempts=attempts)
                pending = [m for m in pending if m.ref not in done]
                result = SendResult(result.outcome, error_code=result.error_code,
                                    error_message=result.error_message, retry_after=result.retry_after)
                if not pending:
                    break
            if attempts >= self.max_attempts:
                break
            wait = self.http.send_delay(attempts, result)
            if wait is None:
                break
            self.sleep(wait)
        return [done.get(m.ref) or SendResult(result.outcome, error_code=result.error_code,
                                              error_message=result.error_message, retry_after=result.retry_after,
                                              attempts=attempts, ambiguous=result.ambiguous)
                for m in group]

    # -- reconcile ---------------------------------------------------------------
    def _query_results(self, refs: list[int]) -> list[dict[str, Any]]:
        response = self.http.fetch("POST", self._url("/api/query_sms_result"), data=json.dumps({"user_id": refs}))
        data = response.json()
        if response.status_code != 200 or data.get("error_code") not in SUCCESS_CODES:
            raise GatewayError(f"query_sms_result: HTTP {response.status_code} {data.get('error_code')}")
        return list(data.get("result") or [])

    def _lookup_many(self, messages: list[OutboundMessage]) -> dict[int, dict[str, Any]] | None:
        """user_id -> latest result row, or None when the gateway could not be asked."""
        try:
            rows = self._query_results([m.ref for m in messages])
        except (GatewayError, ValueError, AttributeError) as exc:
            log.warning("dinstar query_sms_result failed: %s", exc)
            return None
        by_ref: dict[int, dict[str, Any]] = {}
        for row in rows:
            try:
                by_ref[int(row["user_id"])] = row
            except (KeyError, TypeError, ValueError):
                continue
        return by_ref

    def lookup(self, message: OutboundMessage, since: datetime) -> LookupResult:
        """The gateway's result for user_id = our ref: sent or sending means it has it."""
        def ask() -> LookupResult:
            found = self._lookup_many([message])
            if found is None:
                return LookupResult(LookupOutcome.UNKNOWN)
            row = found.get(message.ref)
            if row is None:
                return LookupResult(LookupOutcome.NOT_FOUND)
            status = str(row.get("status", ""))
            if status == "FAILED" and not int(row.get("succ_count") or 0):
                return LookupResult(LookupOutcome.NOT_FOUND, str(message.ref), status)  # tried, nothing left
            return LookupResult(LookupOutcome.FOUND, str(message.ref), status)
        return reconcile(ask)

    # -- polling -------------------------------------------------------------------
    def poll_inbound(self) -> list[InboundMessage]:
        response = self.http.fetch("GET", self._url("/api/query_incoming_sms"), params={"flag": "unread"})
        data = response.json()
        if response.status_code != 200 or data.get("error_code") not in SUCCESS_CODES:
            raise GatewayError(f"query_incoming_sms: HTTP {response.status_code} {data.get('error_code')}")
        return self._incoming(data, self._where("poll"))

    def poll_status(self, refs: list[int]) -> list[StatusUpdate]:
        """Results by user_id, joined by (port, ref_id) to the delivery reports."""
        if not refs:
            return []
        where = self._where("poll")
        rows = [row for row in self._query_results(list(refs)) if isinstance(row, dict)]
        updates = dict(payload.each(rows, lambda row: (self._result_key(row), self._result_update(row)),
                                    f"{where}: result"))
        numbers = sorted({str(row["number"]) for row in rows if payload.text(row.get("number"))})
        reports: list[Any] = []
        if numbers:
            response = self.http.fetch("POST", self._url("/api/query_sms_deliver_status"),
                                       data=json.dumps({"number": numbers}))
            data = response.json()
            if response.status_code == 200 and data.get("error_code") in SUCCESS_CODES:
                reports = payload.as_list(data.get("result") or data.get("sms_deliver_status"), f"{where}: reports")
        for key, code in payload.each(reports, lambda r: (self._result_key(payload.an_object(r)), _report_code(r)),
                                      f"{where}: reports"):
            if key in updates and updates[key].status in ("sent", "queued"):
                base = updates[key]
                updates[key] = StatusUpdate(delivery_status(code), base.provider_message_id, base.ref,
                                            error_code=None if code == 0 else str(code))
        return list(updates.values())

    @staticmethod
    def _result_key(row: dict[str, Any]) -> tuple[str, str, str]:
        return (str(row.get("port")), str(row.get("ref_id")), str(row.get("number")))

    @staticmethod
    def _provider_id(row: dict[str, Any]) -> str | None:
        # Delivery reports carry no user_id, only the port's SMSC reference: "port:ref_id" ties them.
        ref_id, port = payload.text(row.get("ref_id")), row.get("port")
        if ref_id is None or (port is not None and payload.text(port) is None):
            return None
        found = f"{port}:{ref_id}"
        return found if len(found) <= payload.MAX_ID else None

    def _result_update(self, row: Any) -> StatusUpdate:
        row = payload.an_object(row)
        status = payload.text(row.get("status")) or ""
        return StatusUpdate(RESULT_STATUS.get(status, "queued"), self._provider_id(row),
                            payload.integer(row.get("user_id"), "user_id", 0, payload.MAX_REF),
                            error_code=status if status == "FAILED" else None)

    def _report_update(self, report: Any) -> StatusUpdate:
        code = _report_code(report)
        provider_id = self._provider_id(report)
        if provider_id is None:
            raise payload.Unreadable("no port and ref_id")
        return StatusUpdate(delivery_status(code), provider_id, None, error_code=None if code == 0 else str(code))

    def _inbound(self, item: Any, sn: Any) -> InboundMessage:
        item = payload.an_object(item)
        number = self.e164(payload.required(item.get("number"), "number", payload.MAX_NUMBER))
        if len(number) > payload.MAX_NUMBER:
            raise payload.Unreadable(f"number longer than {payload.MAX_NUMBER}")
        port = payload.integer(item.get("port"), "port", 0, MAX_PORT)
        ident = payload.text(item.get("incoming_sms_id"))
        if ident is None:  # some firmware omits it: the port, sender and time identify the message
            ident = hashlib.sha1(f"{item.get('port')}|{item.get('number')}|{item.get('timestamp')}|"
                                 f"{item.get('text')}".encode(errors="replace")).hexdigest()[:16]
        message_id = f"{payload.text(sn) or 'dinstar'}-{ident}"
        if len(message_id) > payload.MAX_ID:
            raise payload.Unreadable(f"sn and incoming_sms_id longer than {payload.MAX_ID}")
        return InboundMessage(provider_message_id=message_id, from_number=number, to=self.port_number(port),
                              body=payload.text(item.get("text")) or "", channel="sms",
                              received_at=_timestamp(item.get("timestamp")), port=port)

    # -- push webhooks ---------------------------------------------------------------
    def verify_signature(self, request: WebhookRequest) -> bool:
        return token_matches(request, self.config.options.get("webhook_token"))

    def _where(self, kind: str = "webhook") -> str:
        return f"dinstar provider {self.config.id} {kind}"

    def _incoming(self, data: dict[str, Any], where: str) -> list[InboundMessage]:
        """The SMS of a push or of query_incoming_sms: {"sn": ..., "sms": [...]}."""
        return payload.each(payload.as_list(data.get("sms"), f"{where}: sms"),
                            lambda item: self._inbound(item, data.get("sn")), f"{where}: sms")

    def parse_inbound(self, request: WebhookRequest) -> list[InboundMessage]:
        return self._incoming(payload.json_object(request.body, self._where()), self._where())

    def parse_status(self, request: WebhookRequest) -> list[StatusUpdate]:
        data, where = payload.json_object(request.body, self._where()), self._where()
        return (payload.each(payload.as_list(data.get("sms_result"), f"{where}: sms_result"), self._result_update,
                             f"{where}: sms_result")
                + payload.each(payload.as_list(data.get("sms_deliver_status"), f"{where}: sms_deliver_status"),
                               self._report_update, f"{where}: sms_deliver_status"))


def _report_code(report: Any) -> int:
    """A delivery report's status_code (0-255, see delivery_status); a report without one says nothing."""
    code = payload.integer(payload.an_object(report).get("status_code"), "status_code", 0, 255)
    if code is None:
        raise payload.Unreadable("no status_code")
    return code


def classify(response: requests.Response) -> SendResult:
    """The gateway's error_code decides; HTTP 401 after auth is a permanent refusal."""
    if response.status_code == 401:
        return SendResult(Outcome.PERMANENT, error_code="401", error_message="authentication refused")
    if response.status_code == 429:
        return rate_limited(response, "429")
    if response.status_code >= 500:
        return SendResult(Outcome.TEMPORARY, error_code=str(response.status_code), error_message=response.text[:200])
    if response.status_code >= 400:
        return SendResult(Outcome.PERMANENT, error_code=str(response.status_code), error_message=response.text[:200])
    data = response.json()
    code = int(data["error_code"])
    if code in SUCCESS_CODES:
        return SendResult(Outcome.SENT, status="queued")
    if code == 500:
        return SendResult(Outcome.TEMPORARY, error_code="500", error_message=str(data.get("reason") or data))
    return SendResult(Outcome.PERMANENT, error_code=str(code), error_message=str(data.get("reason") or data))
