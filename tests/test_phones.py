"""phones.to_e164: its fast path gives exactly phonenumbers' answer (parse, is_valid_number, E.164)."""
from __future__ import annotations

import pytest
from hypothesis import HealthCheck, given, settings
from hypothesis import strategies as st

from webapp.services.phones import national_digits, slow_e164, to_e164

REGIONS = ["UY", "AR", "US", "BR", "ES", "MX", "GB", "IT", "CL", "DE"]
SEPARATORS = ["", "", "", " ", "-", ".", "(", ")", "  "]
PROPERTY = settings(max_examples=1500, deadline=None, database=None,
                    suppress_health_check=[HealthCheck.too_slow])


def digits(n_min: int, n_max: int) -> st.SearchStrategy[str]:
    return st.text(alphabet="0123456789", min_size=n_min, max_size=n_max)


prefixes = st.sampled_from([
    "", "0", "09", "9", "2", "4", "8", "00", "000", "0004", "+", "+598", "598", "00598", "0059809", "+5980",
    "+5989", "013", "0135", "01", "+54", "0054", "54", "+549", "011", "0111", "15", "+1", "1", "0111",
    "+0", "+00", "+39", "+55", "+44", "0044", "+34", "+52", "+56", "+49", "+9999",
])


@st.composite
def phone_like(draw: st.DrawFn) -> str:
    """Prefixes that exercise every branch, digits, and the separators people type."""
    kind = draw(st.integers(0, 5))
    if kind == 0:  # Uruguayan mobile / landline as written in files
        body = draw(st.sampled_from(["09", "9", "+5989", "005989", "2", "4", "02", "+5982", "5989"])) + draw(
            digits(6, 8))
    elif kind == 1:  # Argentina, with its 0 and 15 trunk forms
        body = draw(st.sampled_from(["+54 9 11", "011 15", "0341 15", "+54 341", "0054 9 351", "9 11"])) + draw(
            digits(6, 9))
    elif kind == 2:  # NANPA
        body = draw(st.sampled_from(["+1", "1", "", "011 1", "001"])) + draw(digits(9, 11))
    elif kind == 3:  # anything
        body = draw(digits(1, 18))
    else:
        body = draw(prefixes) + draw(digits(0, 14))
    out = []
    for ch in body:
        out.append(ch)
        out.append(draw(st.sampled_from(SEPARATORS)))
    text = "".join(out)
    return draw(st.sampled_from(["", " "])) + text


@PROPERTY
@given(raw=phone_like(), region=st.sampled_from(REGIONS))
def test_fast_path_agrees_with_phonenumbers(raw: str, region: str) -> None:
    """Every generated input, every region: identical answers (None for invalid)."""
    assert to_e164(raw, region) == slow_e164(raw, region)


@PROPERTY
@given(raw=st.text(alphabet="0123456789+ -.()x#*ab/", min_size=0, max_size=24),
       region=st.sampled_from(REGIONS))
def test_odd_strings_agree(raw: str, region: str) -> None:
    """Letters, extensions and stray "+" go to phonenumbers; the answer is still the same."""
    assert to_e164(raw, region) == slow_e164(raw, region)


@pytest.mark.parametrize(("raw", "region", "expected"), [
    ("098344384", "UY", "+59898344384"),
    ("98344384", "UY", "+59898344384"),
    ("+598 98 344 384", "UY", "+59898344384"),
    ("00598-98-344-384", "UY", "+59898344384"),
    ("59898344384", "UY", "+59898344384"),
    ("(02) 901.2345", "UY", "+59829012345"),
    ("23578408", "UY", "+59823578408"),
    ("123578408", "UY", None),
    ("0981234", "UY", None),
    ("", "UY", None),
    ("hola", "UY", None),
    ("011 15 2345-6789", "AR", "+5491123456789"),
    ("+1 (201) 555-0123", "UY", "+12015550123"),
    ("(201) 555-0123", "US", "+12015550123"),
])
def test_examples(raw: str, region: str, expected: str | None) -> None:
    """The forms upload files carry, with their exact E.164."""
    assert to_e164(raw, region) == expected
    assert slow_e164(raw, region) == expected


def test_national_digits() -> None:
    """The national significant number of an E.164 string."""
    assert national_digits("+59898344384") == "98344384"
    assert national_digits("+5491123456789") == "91123456789"
