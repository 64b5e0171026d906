"""The gateway adapters, and what the admin forms need to know about each type."""
from __future__ import annotations

from dataclasses import dataclass
from typing import Any

from .base import ProviderAdapter, ProviderConfig
from .dinstar import DinstarAdapter
from .generic_http import GenericHttpAdapter, QualityAdapter
from .sandbox import SandboxAdapter
from .twilio import TwilioAdapter
from .whatsapp_cloud import WhatsAppCloudAdapter

ADAPTERS: dict[str, type[ProviderAdapter]] = {
    "twilio": TwilioAdapter,
    "dinstar": DinstarAdapter,
    "quality": QualityAdapter,
    "http": GenericHttpAdapter,
    "sandbox": SandboxAdapter,
    "whatsapp_cloud": WhatsAppCloudAdapter,
}
PROVIDER_TYPES: list[str] = list(ADAPTERS)


@dataclass(frozen=True)
class Field:
    """One credential or option an admin form asks for."""

    key: str
    label: str
    required: bool = True
    secret: bool = False
    choices: tuple[str, ...] = ()
    default: Any = None
    help: str = ""
    choice_labels: tuple[str, ...] = ()  # what the form shows for each choice (English, translated there)

    def choice_pairs(self) -> list[tuple[str, str]]:
        return list(zip(self.choices, self.choice_labels or self.choices, strict=True))


@dataclass(frozen=True)
class ProviderType:
    """Per-type metadata for the admin forms and for validation of dial strings."""

    key: str
    label: str
    channels: tuple[str, ...]
    credentials: tuple[Field, ...]
    options: tuple[Field, ...]
    uses_ports: bool
    signs_webhooks: bool
    needs_base_url: bool
    default_base_url: str = ""

    @property
    def credential_keys(self) -> list[str]:
        return [f.key for f in self.credentials]

    @property
    def required_credentials(self) -> list[str]:
        return [f.key for f in self.credentials if f.required]

    @property
    def option_keys(self) -> list[str]:
        return [f.key for f in self.options]


_USER_PASS_TOKEN = (Field("username", "Username"), Field("password", "Password", secret=True),
                    Field("token", "API token", required=False, secret=True))
_WEBHOOK_TOKEN = Field("webhook_token", "Webhook token", required=False,
                       help="Webhooks must carry ?token=<this> in their URL; left empty, one is generated.")

TYPES: dict[str, ProviderType] = {
    "twilio": ProviderType(
        "twilio", "Twilio", ("sms", "whatsapp"),
        (Field("account_sid", "Account SID"), Field("auth_token", "Auth token", secret=True),
         Field("webhook_shared_key", "Webhook SharedKey secret", required=False, secret=True)),
        (Field("messaging_service_sid", "Messaging Service SID", required=False,
               help="Sends through the service instead of the sender number."),
         Field("status_callback_url", "Status callback URL", required=False),
         Field("content_api_url", "Content API URL", required=False,
               help="WhatsApp templates are read from here; empty: https://content.twilio.com.")),
        uses_ports=False, signs_webhooks=True, needs_base_url=False, default_base_url="https://api.twilio.com"),
    "dinstar": ProviderType(
        "dinstar", "Dinstar GSM gateway", ("sms",),
        (Field("username", "Username"), Field("password", "Password", secret=True)),
        (Field("country_code", "Country code", required=False, default="598",
               help="Numbers are dialled national (0…) and inbound ones made E.164 with it."),
         Field("port_numbers", "Number of each port", required=False, help='JSON, e.g. {"0": "+59899000001"}'),
         _WEBHOOK_TOKEN),
        uses_ports=True, signs_webhooks=False, needs_base_url=True),
    "quality": ProviderType(
        "quality", "Quality Telecom", ("sms",), _USER_PASS_TOKEN,
        (Field("method", "Method", required=False, choices=("POST", "GET"), default="POST"),
         Field("url", "URL template", required=False),
         Field("params", "Parameters template", required=False),
         Field("success_contains", "Success text", required=False, default="OK"),
         Field("message_id_regex", "Message id regex", required=False), _WEBHOOK_TOKEN),
        uses_ports=False, signs_webhooks=False, needs_base_url=True),
    "http": ProviderType(
        "http", "HTTP aggregator", ("sms",), _USER_PASS_TOKEN,
        (Field("method", "Method", choices=("POST", "GET"), default="POST"),
         Field("url", "URL template", required=False, help="Placeholders: {to} {to_digits} {to_national} "
               "{text} {from} {id}; defaults to the base URL."),
         Field("params", "Parameters template", help='JSON, e.g. {"to": "{to}", "msg": "{text}"}'),
         Field("body_format", "Body", required=False, choices=("form", "json"), default="form",
               choice_labels=("Form fields", "JSON")),
         Field("auth", "Auth", choices=("none", "basic", "header"), default="none",
               choice_labels=("None", "Basic (username and password)", "A header")),
         Field("auth_header", "Auth header", required=False, default="Authorization"),
         Field("auth_value", "Auth header value", required=False, default="Bearer {token}"),
         Field("success_status", "Success HTTP status", default=200),
         Field("success_contains", "Success text", required=False),
         Field("success_json_field", "Success JSON field", required=False),
         Field("success_json_value", "Success JSON value", required=False),
         Field("message_id_regex", "Message id regex", required=False),
         Field("message_id_json", "Message id JSON path", required=False),
         Field("country_code", "Country code", required=False), _WEBHOOK_TOKEN),
        uses_ports=False, signs_webhooks=False, needs_base_url=True),
    "sandbox": ProviderType(
        "sandbox", "Sandbox (simulator)", ("sms", "whatsapp"), (), (_WEBHOOK_TOKEN,),
        uses_ports=False, signs_webhooks=False, needs_base_url=False),
    "whatsapp_cloud": ProviderType(
        "whatsapp_cloud", "WhatsApp Cloud API (Meta)", ("whatsapp",),
        (Field("access_token", "Access token", secret=True), Field("app_secret", "App secret", secret=True),
         Field("verify_token", "Webhook verify token", secret=True)),
        (Field("phone_number_id", "Phone number ID"),
         Field("waba_id", "WhatsApp Business Account ID", required=False,
               help="Its message templates are synced into the catalog."),
         Field("api_version", "Graph API version", required=False, default="21.0")),
        uses_ports=False, signs_webhooks=True, needs_base_url=False,
        default_base_url="https://graph.facebook.com"),
}
CREDENTIAL_KEYS: dict[str, list[str]] = {k: t.credential_keys for k, t in TYPES.items()}
OPTION_KEYS: dict[str, list[str]] = {k: t.option_keys for k, t in TYPES.items()}


def uses_ports(provider_type: str) -> bool:
    """Whether dial strings (port ranges) apply: only to Dinstar."""
    return TYPES[provider_type].uses_ports


def get_adapter(config: ProviderConfig, **kw: Any) -> ProviderAdapter:
    """The adapter for a provider row; kw (timeout, max_attempts, backoff, sleep, redis, ...) go to its constructor.

    `redis` only reaches the sandbox; the HTTP adapters take `sleep`,
    `max_retry_wait`, `connect_timeout` and `retry_rate_limited` besides the base ones.
    """
    try:
        cls = ADAPTERS[config.type]
    except KeyError:
        raise ValueError(f"unknown provider type {config.type!r}") from None
    if cls is not SandboxAdapter:
        kw.pop("redis", None)
    return cls(config, **kw)


__all__ = ["ADAPTERS", "CREDENTIAL_KEYS", "OPTION_KEYS", "PROVIDER_TYPES", "TYPES", "Field", "ProviderType",
           "get_adapter", "uses_ports"]
