"""GSM 03.38 segment arithmetic on known vectors."""
from __future__ import annotations

import pytest

from webapp.providers.gsm import SegmentInfo, is_gsm7, segments


@pytest.mark.parametrize(("text", "expected"), [
    ("", SegmentInfo("gsm-7", 0, 0, 160)),
    ("a" * 160, SegmentInfo("gsm-7", 160, 1, 160)),
    ("a" * 161, SegmentInfo("gsm-7", 161, 2, 153)),
    ("a" * 306, SegmentInfo("gsm-7", 306, 2, 153)),
    ("a" * 307, SegmentInfo("gsm-7", 307, 3, 153)),
    ("€", SegmentInfo("gsm-7", 2, 1, 160)),
    ("a" * 159 + "€", SegmentInfo("gsm-7", 161, 2, 153)),
    ("{}[]~|^\\\f", SegmentInfo("gsm-7", 18, 1, 160)),
    ("ñandú á", SegmentInfo("ucs-2", 7, 1, 70)),  # ú and á are not in GSM-7
    ("ñ" * 160, SegmentInfo("gsm-7", 160, 1, 160)),  # ñ is
    ("é" * 10 + "Ç@£$¥", SegmentInfo("gsm-7", 15, 1, 160)),
    ("😀", SegmentInfo("ucs-2", 2, 1, 70)),
    ("hola 😀", SegmentInfo("ucs-2", 7, 1, 70)),
    ("á" * 70, SegmentInfo("ucs-2", 70, 1, 70)),
    ("á" * 71, SegmentInfo("ucs-2", 71, 2, 67)),
    ("á" * 134, SegmentInfo("ucs-2", 134, 2, 67)),
    ("á" * 135, SegmentInfo("ucs-2", 135, 3, 67)),
    ("😀" * 35, SegmentInfo("ucs-2", 70, 1, 70)),
    ("😀" * 36, SegmentInfo("ucs-2", 72, 2, 67)),
])
def test_segments_known_vectors(text: str, expected: SegmentInfo) -> None:
    """Septets / UTF-16 units and part counts match GSM 03.38 and handsets."""
    assert segments(text) == expected


def test_escape_pair_never_split_across_parts() -> None:
    """152 plain septets then '€': the pair moves whole to part 2, so 306 septets need 3 parts."""
    text = "a" * 152 + "€" + "a" * 152
    info = segments(text)
    assert info.units == 306
    assert info.segments == 3


def test_surrogate_pair_never_split_across_parts() -> None:
    """66 units then an emoji: the pair cannot straddle the 67-unit boundary."""
    info = segments("á" * 66 + "😀" + "á" * 66)
    assert (info.units, info.segments) == (134, 3)


@pytest.mark.parametrize(("text", "expected"), [
    ("Hola, ¿cómo estás?", False),  # ó and á are not GSM-7
    ("Hola, ¿como estas?", True),
    ("Precio: 10€ [oferta]", True),
    ("tab\there", False),
    ("ç", False),  # only the capital Ç is in the basic set
    ("Ç", True),
    ("\x1b", False),  # the escape itself is not text
])
def test_is_gsm7(text: str, expected: bool) -> None:
    """Membership in the basic set or the extension table."""
    assert is_gsm7(text) is expected
