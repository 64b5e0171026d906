"""The built-in simulator: a provider that needs no network, for demos and development.

Every send is accepted except to numbers ending in "0000", which fail
permanently so the demo shows failures too. With a Redis client the sends
are recorded (per provider, for a week), so `lookup` answers after a crash
as a real gateway would and `poll_status` reports them delivered.

On the WhatsApp channel its simulated customers also send a photo and a voice
note now and then (`SAMPLES`, small files shipped beside this module, "downloaded"
like a gateway's media), and it has a small template catalog (`CATALOG`), so the
demo shows media and templates without any outside account.
"""
from __future__ import annotations

import dataclasses
import hashlib
import random
import secrets
from datetime import datetime
from pathlib import Path
from typing import Any

from .base import (
    LookupOutcome,
    LookupResult,
    MediaDownload,
    MediaError,
    OutboundMessage,
    Outcome,
    ProviderAdapter,
    ProviderConfig,
    SendResult,
    StatusUpdate,
    TemplateInfo,
    WebhookRequest,
)
from .dinstar import token_matches
from .gsm import segments

FAILING_SUFFIX = "0000"
RECORD_TTL = 7 * 24 * 3600
SAMPLES_DIR = Path(__file__).resolve().parent / "sandbox_media"
# name -> (file, MIME type, the media item a simulated customer's message carries)
SAMPLES: dict[str, tuple[str, str, dict[str, Any]]] = {
    "photo": ("photo.jpg", "image/jpeg", {"kind": "image"}),
    "voice": ("voice.wav", "audio/wav", {"kind": "audio", "voice": True}),
}
CATALOG = (
    TemplateInfo("sbx-tpl-1", "recordatorio_pago", "es", "UTILITY", "APPROVED", "GREEN",
                 body="Hola {{1}}, te recordamos que tu cuota de {{2}} vence el {{3}}.",
                 buttons=[{"type": "quick_reply", "text": "Ya pagué"}, {"type": "quick_reply", "text": "Llamarme"}]),
    TemplateInfo("sbx-tpl-2", "promo_invierno", "es", "MARKETING", "APPROVED", "YELLOW",
                 body="¡{{1}}, llegó el invierno! 20% de descuento hasta el domingo.",
                 header={"format": "image", "text": ""}, footer="Respondé BAJA para no recibir más.",
                 buttons=[{"type": "url", "text": "Ver ofertas", "url": "https://example.com/promo"}]),
    TemplateInfo("sbx-tpl-3", "codigo_verificacion", "es", "AUTHENTICATION", "APPROVED", "GREEN",
                 body="Tu código de verificación es {{1}}."),
    TemplateInfo("sbx-tpl-4", "encuesta_satisfaccion", "es", "MARKETING", "PENDING", "UNKNOWN",
                 body="Hola {{1}}, ¿cómo calificarías la atención que recibiste?"),
)


def sample_media(name: str) -> dict[str, Any]:
    """The media item of a simulated customer's message carrying sample `name` ("photo", "voice")."""
    filename, content_type, item = SAMPLES[name]
    return {**item, "sample": name, "content_type": content_type, "filename": filename}


class SandboxAdapter(ProviderAdapter):
    type = "sandbox"

    def __init__(self, config: ProviderConfig, *, redis: Any = None, **kw: Any):
        kw.pop("sleep", None)  # nothing to wait for here
        kw.pop("max_retry_wait", None)
        kw.pop("connect_timeout", None)
        kw.pop("retry_rate_limited", None)
        super().__init__(config, **kw)
        self.redis = redis
        self._local: dict[int, str] = {}  # without Redis: this process's sends only

    def _key(self, ref: int) -> str:
        return f"sandbox:{self.config.id}:sent:{ref}"

    def send(self, message: OutboundMessage) -> SendResult:
        if message.to.endswith(FAILING_SUFFIX):
            return SendResult(Outcome.PERMANENT, error_code="SBX_INVALID",
                              error_message="sandbox: numbers ending in 0000 are refused")
        message_id = f"sbx-{message.ref}-{secrets.token_hex(4)}"
        if self.redis is not None:
            # NX: a second send of the same ref keeps the first id, as a gateway's log would.
            self.redis.set(self._key(message.ref), message_id, ex=RECORD_TTL, nx=True)
        self._local.setdefault(message.ref, message_id)
        return SendResult(Outcome.SENT, provider_message_id=message_id, status="accepted",
                          segments=segments(message.body).segments or 1)

    def _recorded(self, ref: int) -> str | None:
        if self.redis is not None:
            value = self.redis.get(self._key(ref))
            return value.decode() if isinstance(value, bytes) else value
        return self._local.get(ref)

    def lookup(self, message: OutboundMessage, since: datetime) -> LookupResult:
        found = self._recorded(message.ref)
        if found is not None:
            return LookupResult(LookupOutcome.FOUND, found, "sent")
        # Without Redis another process may have sent it: only Redis can say "never".
        return LookupResult(LookupOutcome.NOT_FOUND if self.redis is not None else LookupOutcome.UNKNOWN)

    def poll_status(self, refs: list[int]) -> list[StatusUpdate]:
        """Every recorded send is reported delivered: the simulated handsets are always on. On WhatsApp two
        customers in three have read it by then (the demo's dialer shows Read)."""
        updates = []
        whatsapp = self.config.channel == "whatsapp"
        for ref in refs:
            found = self._recorded(ref)
            if found is not None:
                updates.append(StatusUpdate("read" if whatsapp and ref % 3 else "delivered", found, ref))
        return updates

    def mark_read(self, provider_message_id: str) -> bool:
        """The simulated WhatsApp shows the customer their messages read."""
        return self.config.channel == "whatsapp"

    def verify_signature(self, request: WebhookRequest) -> bool:
        return token_matches(request, self.config.options.get("webhook_token"))

    # -- W1 and W2 on the WhatsApp channel --------------------------------------------
    def download_media(self, item: dict[str, Any], max_size: int | None = None) -> MediaDownload:
        sample = SAMPLES.get(str(item.get("sample") or ""))
        if sample is None:
            raise MediaError(f"sandbox has no sample {item.get('sample')!r}", permanent=True)
        path = SAMPLES_DIR / sample[0]
        data = path.read_bytes()  # a few KB
        return MediaDownload(chunks=iter([data]), content_type=sample[1], size=len(data),
                             sha256=hashlib.sha256(data).hexdigest(), filename=sample[0])

    @property
    def has_templates(self) -> bool:
        return self.config.channel == "whatsapp"

    def list_templates(self) -> list[TemplateInfo]:
        return list(CATALOG)

    def replace(self, **changes: Any) -> ProviderAdapter:
        return type(self)(dataclasses.replace(self.config, **changes), redis=self.redis, timeout=self.timeout,
                          max_attempts=self.max_attempts, backoff=self.backoff)


# -- simulated customers ----------------------------------------------------
REPLIES_BY_TOPIC: list[tuple[tuple[str, ...], tuple[str, ...]]] = [
    (("pago", "deuda", "saldo", "factura", "cuota", "vencid"),
     ("Ya pagué ayer, ¿me lo pueden confirmar?", "¿Puedo pagar en dos cuotas?",
      "No tengo el comprobante a mano, lo busco y les escribo.", "¿Cuál es el monto exacto?")),
    (("turno", "cita", "agenda", "consulta"),
     ("Sí, confirmo el turno.", "¿Se puede pasar para la semana que viene?", "No voy a poder ir, ¿lo cancelan?")),
    (("promo", "oferta", "descuento", "beneficio"),
     ("¿Hasta cuándo vale la promo?", "Me interesa, ¿cómo hago?", "No me interesa, gracias.")),
    (("envío", "envio", "pedido", "paquete", "entrega"),
     ("¿A qué hora llega más o menos?", "No voy a estar en casa, ¿lo pueden dejar en portería?",
      "Todavía no me llegó nada.")),
]
GENERIC_REPLIES = ("Hola, ¿quién habla?", "Ok, gracias.", "¿Me pueden llamar?", "Perfecto 👍",
                   "No entiendo, ¿me explican?", "Buen día, sí, soy yo.")
QUESTION_REPLIES = ("Sí", "No, gracias", "Sí, por favor", "Prefiero que me llamen")
OPT_OUT_REPLY = "BAJA"


def simulated_reply(body: str, rng: random.Random) -> str | None:
    """A plausible customer answer in Spanish to `body`, or None when the customer does not answer.

    About a third never answer and about one in fifty opts out with BAJA, so
    the demo exercises silence and the do-not-contact path too.
    """
    roll = rng.random()
    if roll < 0.35:
        return None
    if roll < 0.37:
        return OPT_OUT_REPLY
    text = body.lower()
    for keywords, replies in REPLIES_BY_TOPIC:
        if any(k in text for k in keywords):
            return rng.choice(replies)
    if "?" in body:
        return rng.choice(QUESTION_REPLIES)
    return rng.choice(GENERIC_REPLIES)
