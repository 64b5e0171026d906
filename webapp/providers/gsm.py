"""GSM 03.38 alphabet and SMS segment arithmetic.

Pure functions, shared by the adapters (Dinstar's `encoding` field) and the
UI (the segment counter under the composer and in bulk previews).
"""
from __future__ import annotations

from dataclasses import dataclass

# The basic character set, in code-point order of GSM 03.38 (0x1B, the escape
# to the extension table, is left out: it is never text on its own).
GSM7_BASIC = frozenset(
    "@£$¥èéùìòÇ\nØø\rÅåΔ_ΦΓΛΩΠΨΣΘΞÆæßÉ !\"#¤%&'()*+,-./0123456789:;<=>?"
    "¡ABCDEFGHIJKLMNOPQRSTUVWXYZÄÖÑÜ§¿abcdefghijklmnopqrstuvwxyzäöñüà"
)
# The extension table: each costs two septets (escape + char).
GSM7_EXTENSION = frozenset("\f^{}\\[~]|€")

# The longest text a message may have (SMS or WhatsApp): what Twilio accepts as one concatenated SMS.
# Every form, the agent's composer, the spool and the services check this one figure.
MAX_MESSAGE_LENGTH = 1600

GSM7_SINGLE = 160
GSM7_MULTI = 153  # 7 septets go to the concatenation header (UDH)
UCS2_SINGLE = 70
UCS2_MULTI = 67


@dataclass(frozen=True)
class SegmentInfo:
    encoding: str  # "gsm-7" or "ucs-2"
    units: int  # septets for GSM-7, UTF-16 code units for UCS-2
    segments: int
    per_segment: int  # capacity of one segment of this message (160/153, 70/67)


def is_gsm7(text: str) -> bool:
    """True when every character is in the GSM-7 basic or extension table."""
    return all(ch in GSM7_BASIC or ch in GSM7_EXTENSION for ch in text)


def _gsm7_cost(ch: str) -> int:
    return 2 if ch in GSM7_EXTENSION else 1


def _ucs2_cost(ch: str) -> int:
    return 2 if ord(ch) > 0xFFFF else 1  # outside the BMP: a surrogate pair


def _pack(costs: list[int], capacity: int) -> int:
    """Segments needed when a character (escape pair, surrogate pair) may not straddle two segments."""
    segments, used = 1, 0
    for cost in costs:
        if used + cost > capacity:
            segments += 1
            used = 0
        used += cost
    return segments


def segments(text: str) -> SegmentInfo:
    """How a handset will encode `text` and how many SMS it becomes.

    Empty text is 0 segments. A multipart message never splits an escape
    sequence or a surrogate pair across two parts, as handsets do, so a
    part can hold one unit less than its nominal capacity.
    """
    if is_gsm7(text):
        costs = [_gsm7_cost(ch) for ch in text]
        single, multi, encoding = GSM7_SINGLE, GSM7_MULTI, "gsm-7"
    else:
        costs = [_ucs2_cost(ch) for ch in text]
        single, multi, encoding = UCS2_SINGLE, UCS2_MULTI, "ucs-2"
    units = sum(costs)
    if units == 0:
        return SegmentInfo(encoding, 0, 0, single)
    if units <= single:
        return SegmentInfo(encoding, units, 1, single)
    return SegmentInfo(encoding, units, _pack(costs, multi), multi)
