"""P: a provider is one account at an SMS / WhatsApp gateway."""
from __future__ import annotations

import base64
import hashlib
import json
from datetime import datetime
from typing import Any

import sqlalchemy as sa
from cryptography.fernet import Fernet, InvalidToken
from cryptography.hazmat.primitives import hashes
from cryptography.hazmat.primitives.kdf.hkdf import HKDF
from flask import current_app
from sqlalchemy.orm import Mapped, mapped_column

from ..extensions import db
from ..providers.base import ProviderConfig
from .base import created_at_column


def _fernet(secret: str) -> Fernet:
    key = HKDF(algorithm=hashes.SHA256(), length=32, salt=b"conversa-provider-credentials",
               info=b"fernet").derive(secret.encode())
    return Fernet(base64.urlsafe_b64encode(key))


def credentials_cipher() -> Fernet:
    cfg = current_app.config
    return _fernet(cfg.get("CREDENTIALS_KEY") or cfg["SECRET_KEY"])


class Provider(db.Model):
    __tablename__ = "providers"

    id: Mapped[int] = mapped_column(primary_key=True)
    name: Mapped[str] = mapped_column(sa.String(80), unique=True)
    type: Mapped[str] = mapped_column(sa.String(32))
    channel: Mapped[str] = mapped_column(sa.String(16), default="sms")
    sender: Mapped[str] = mapped_column(sa.String(64), default="")
    # Fernet token of a JSON object; never rendered back in full.
    credentials_encrypted: Mapped[str] = mapped_column(sa.Text, default="")
    base_url: Mapped[str] = mapped_column(sa.String(255), default="")
    max_per_second: Mapped[float] = mapped_column(default=10.0)
    enabled: Mapped[bool] = mapped_column(default=True)
    options: Mapped[dict[str, Any]] = mapped_column(sa.JSON, default=dict)
    created_at: Mapped[datetime] = created_at_column()
    # W2: the last template catalog sync that ended, and what went wrong with it (None: it worked).
    templates_synced_at: Mapped[datetime | None] = mapped_column()
    templates_sync_error: Mapped[str | None] = mapped_column(sa.String(500))

    @property
    def credentials(self) -> dict[str, str]:
        if not self.credentials_encrypted:
            return {}
        try:
            raw = credentials_cipher().decrypt(self.credentials_encrypted.encode())
        except InvalidToken as exc:  # the key changed: say so rather than send with no credentials
            raise RuntimeError(f"provider {self.name}: credentials cannot be decrypted with this key") from exc
        return json.loads(raw)

    @credentials.setter
    def credentials(self, value: dict[str, str]) -> None:
        data = json.dumps({k: v for k, v in value.items() if v}, sort_keys=True).encode()
        self.credentials_encrypted = credentials_cipher().encrypt(data).decode()

    def masked_credentials(self) -> dict[str, str]:
        """What a form may show: that a secret is set and its last two characters at most."""
        out = {}
        for key, value in self.credentials.items():
            out[key] = "•" * 6 + (value[-2:] if len(value) > 8 else "")
        return out

    def to_config(self) -> ProviderConfig:
        return ProviderConfig(id=self.id, type=self.type, channel=self.channel, sender=self.sender,
                              credentials=self.credentials, base_url=self.base_url,
                              max_per_second=self.max_per_second, options=dict(self.options or {}))

    def fingerprint(self) -> str:
        return hashlib.sha256(self.credentials_encrypted.encode()).hexdigest()[:8]
