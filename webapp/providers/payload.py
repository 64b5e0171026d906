"""Reading what a gateway pushes, when it may be malformed.

A signed webhook comes from the gateway, so answering it 500 only makes the gateway send the same
body again, for days: the good messages in it would never get in. So parsers read item by item;
an item they cannot read is skipped and logged (with enough of it to recover by hand), every other
item is kept, and nothing raises. `tests/test_providers_webhook_properties.py` feeds the parsers
arbitrary JSON and forms.
"""
from __future__ import annotations

import json
import logging
import math
import re
from collections.abc import Callable, Iterable
from typing import Any, TypeVar

log = logging.getLogger(__name__)

T = TypeVar("T")

# What the store keeps (models.Message.provider_message_id, SpoolMessage.provider_message_id,
# Interaction.customer_number, Interaction.customer_name): a longer id or number is no gateway's.
MAX_ID = 80
MAX_NUMBER = 32
MAX_NAME = 120
MAX_REF = 2 ** 63 - 1  # our own ids echoed back (Dinstar user_id): a database integer
INTEGER = re.compile(r"[+-]?[0-9]{1,30}")


class Unreadable(ValueError):
    """One item of a gateway's payload that cannot be read."""


def json_object(body: bytes, where: str) -> dict[str, Any]:
    """The body as a JSON object; anything else is logged and read as {}."""
    if not body:
        return {}
    try:
        data = json.loads(body)
    except ValueError as exc:  # also bad UTF-8
        log.warning("%s: body is not JSON (%s): %.200r", where, exc, body)
        return {}
    if not isinstance(data, dict):
        log.warning("%s: body is not a JSON object: %.200r", where, body)
        return {}
    return data


def as_dict(value: Any) -> dict[str, Any]:
    """An optional object: anything but an object reads as {}."""
    return value if isinstance(value, dict) else {}


def as_list(value: Any, where: str) -> list[Any]:
    """A list of items; absent is empty, anything else is logged and read as empty."""
    if value is None:
        return []
    if not isinstance(value, list):
        log.warning("%s: not a list: %.200r", where, value)
        return []
    return value


def text(value: Any) -> str | None:
    """A string or an integer as text; None for anything else (absent, objects, lists, booleans, floats).

    What no database takes is dropped: NUL characters, and lone surrogates (JSON may escape them) become "?"."""
    if isinstance(value, str):
        value = value.replace("\x00", "")
        try:
            value.encode("utf-8")
        except UnicodeEncodeError:
            value = value.encode("utf-8", "replace").decode("utf-8")
        return value
    if isinstance(value, int) and not isinstance(value, bool):
        return str(value)
    return None


def required(value: Any, name: str, max_length: int) -> str:
    """Non-blank text of at most `max_length` characters, else Unreadable."""
    found = text(value)
    if found is None or not found.strip():
        raise Unreadable(f"{name} missing or not text")
    if len(found) > max_length:
        raise Unreadable(f"{name} longer than {max_length}")
    return found


def integer(value: Any, name: str, low: int, high: int) -> int | None:
    """An optional integer (or integral text) within [low, high]: None when absent, Unreadable otherwise."""
    if value is None:
        return None
    number: int | None = None
    if isinstance(value, int) and not isinstance(value, bool):
        number = value
    elif isinstance(value, float) and math.isfinite(value) and value.is_integer():
        number = int(value)
    elif isinstance(value, str) and INTEGER.fullmatch(value.strip()):
        number = int(value)
    if number is None or not low <= number <= high:
        raise Unreadable(f"{name} {value!r:.40} is not an integer from {low} to {high}")
    return number


def each(rows: Iterable[Any], read: Callable[[Any], T | None], where: str) -> list[T]:
    """`read` applied to every row: a row it cannot read is logged and skipped, None is skipped quietly."""
    found: list[T] = []
    for index, row in enumerate(rows):
        try:
            item = read(row)
        except (ValueError, TypeError, AttributeError, KeyError, OverflowError) as exc:
            log.warning("%s[%d] skipped (%s): %.300r", where, index, exc, row)
            continue
        if item is not None:
            found.append(item)
    return found


def an_object(row: Any) -> dict[str, Any]:
    if not isinstance(row, dict):
        raise Unreadable("not an object")
    return row
