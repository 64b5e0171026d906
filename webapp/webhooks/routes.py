"""Gateway webhooks: verify, parse, queue a job, answer at once. No sign-in, no CSRF (gateways sign)."""
from __future__ import annotations

import dataclasses
import logging
from typing import Any

from flask import Response, abort, current_app, request

from .. import queues
from ..extensions import csrf, db
from ..models import Provider
from ..providers import get_adapter
from ..providers.base import ProviderAdapter, WebhookRequest
from . import bp

log = logging.getLogger(__name__)
csrf.exempt(bp)

# Gateways that push messages and receipts to the same URL.
MIXED_PUSH = frozenset({"dinstar", "whatsapp_cloud", "sandbox"})


def public_url() -> str:
    """The URL as the gateway called it: behind a proxy, rebuilt from PUBLIC_BASE_URL."""
    base = current_app.config.get("PUBLIC_BASE_URL")
    if not base:
        return request.url
    query = request.query_string.decode("utf-8", "replace")
    return base.rstrip("/") + request.path + (f"?{query}" if query else "")


@bp.before_request
def limit_body() -> None:
    """Refuse a body larger than WEBHOOK_MAX_BYTES before reading any of it: a declared length over the
    limit answers 413 at once; a chunked body (no length) is read no further than the limit."""
    limit = current_app.config["WEBHOOK_MAX_BYTES"]
    if request.content_length is not None and request.content_length > limit:
        _refuse_large(f"{request.content_length} bytes declared")
    # Werkzeug's stream then ends (silently) after this many bytes: one past the limit tells "larger".
    request.max_content_length = limit + 1


def _refuse_large(detail: str) -> None:
    log.warning("webhook %s from %s refused: body over WEBHOOK_MAX_BYTES (%s)", request.path, request.remote_addr,
                detail)
    abort(413)


def _provider_or_404(provider_id: int) -> tuple[Provider, ProviderAdapter]:
    provider = db.session.get(Provider, provider_id)
    if provider is None or not provider.enabled:
        abort(404)
    return provider, get_adapter(provider.to_config())


def _webhook_request() -> WebhookRequest:
    body = request.get_data(cache=True)
    if len(body) > current_app.config["WEBHOOK_MAX_BYTES"]:
        _refuse_large("chunked, no length declared")
    form = request.form.to_dict() if request.mimetype == "application/x-www-form-urlencoded" else {}
    return WebhookRequest(method=request.method, url=public_url(), headers=dict(request.headers), body=body,
                          form=form, args=request.args.to_dict())


def _plain(item: Any) -> dict[str, Any]:
    data = dataclasses.asdict(item)
    if data.get("received_at") is not None:
        data["received_at"] = data["received_at"].isoformat()
    return data


def _handle(provider_id: int, kind: str) -> Response:
    provider, adapter = _provider_or_404(provider_id)
    hook = _webhook_request()
    if not adapter.verify_signature(hook):
        log.warning("webhook %s for provider %s: bad or missing signature from %s", kind, provider_id,
                    request.remote_addr)
        abort(403)
    inbound = [_plain(m) for m in adapter.parse_inbound(hook)] if kind == "inbound" else []
    statuses = []
    if kind == "status" or provider.type in MIXED_PUSH:
        statuses = [_plain(s) for s in adapter.parse_status(hook)]
    # W2 hook (issue 13): Meta's template status / quality changes arrive on the messages webhook.
    template_updates = [_plain(u) for u in adapter.parse_template_updates(hook)] if kind == "inbound" else []
    try:
        # Fire and forget: nobody reads a job's result, so RQ keeps none (fewer writes per job).
        if inbound:
            queues.enqueue("workers.inbound.process_inbound", provider.id, inbound, result_ttl=0)
        if statuses:
            queues.enqueue("workers.inbound.process_status", provider.id, statuses, result_ttl=0)
        if template_updates:
            queues.enqueue("workers.whatsapp.apply_template_updates", provider.id, template_updates, result_ttl=0)
    except Exception as exc:  # Redis down: say so, so the gateway retries
        log.error("webhook %s for provider %s not queued: %s", kind, provider_id, exc)
        abort(503)
    body, status, headers = adapter.webhook_reply(kind)
    return Response(body, status=status, headers=headers)


@bp.post("/webhooks/<int:provider_id>/inbound")
def inbound(provider_id: int) -> Response:
    return _handle(provider_id, "inbound")


@bp.post("/webhooks/<int:provider_id>/status")
def status(provider_id: int) -> Response:
    return _handle(provider_id, "status")


@bp.get("/webhooks/<int:provider_id>/inbound")
def verify_subscription(provider_id: int) -> Response:
    """Meta's handshake when the WhatsApp webhook is configured."""
    _, adapter = _provider_or_404(provider_id)
    verify = getattr(adapter, "verify_subscription", None)
    if verify is None:
        abort(405)
    body, code = verify(request.args.to_dict())
    return Response(body, status=code, mimetype="text/plain")
