"""Phone numbers: normalise what people type into E.164, fast enough for million-row uploads.

`to_e164(raw, region)` answers exactly what `phonenumbers` answers (parse, then
`is_valid_number`, then E.164 formatting) — None for anything invalid — but it
does not pay the ~40 µs `phonenumbers.parse` costs for the common cases:

- the input is plain digits with the usual separators (space, dash, dot,
  parentheses), optionally led by one `+`;
- and it is either a national number of `region` (with or without the trunk
  prefix), or an international one (`+`, or the region's IDD such as `00`)
  whose country calling code is the region's own.

For those, `_RegionRules` replays phonenumbers' own parsing steps (IDD and
country-code extraction, national-prefix stripping with its transform rule,
the possible-length test, then the type patterns that make a number valid),
with the same metadata and regexes compiled once. Anything else (letters,
extensions, foreign country codes, countries that share a calling code such
as NANPA's +1, which need a per-region lookup) goes to phonenumbers itself.
`tests/test_phones.py` checks, with generated inputs, that both paths agree.

What only phonenumbers can answer is memoised by (canonical "+" and digits, region).

`normalise(raw)` is the one rule for a number someone typed or a gateway reported: E.164 in the
centre's region (`default_region()`, DEFAULT_REGION in config.py), or None. Every reader of numbers
(interactions, do-not-contact, the dialer's single message) goes through it.
"""
from __future__ import annotations

import re
from collections.abc import Callable
from functools import lru_cache

import phonenumbers
from flask import current_app
from phonenumbers import COUNTRY_CODE_TO_REGION_CODE, PhoneMetadata

# Inputs the fast path understands: one optional leading "+", digits and common separators.
_SIMPLE = re.compile(r"\+?[0-9 ().\-]+")
_NON_DIGITS = re.compile(r"[^0-9]")
_TYPE_DESCS = ("premium_rate", "toll_free", "shared_cost", "voip", "personal_number", "pager", "uan",
               "voicemail", "fixed_line", "mobile")
_MIN_NSN, _MAX_NSN = 2, 17  # phonenumbers' _MIN_LENGTH_FOR_NSN / _MAX_LENGTH_FOR_NSN
_MAX_INPUT = 64  # longer strings are odd enough to leave to phonenumbers
_UNSURE = object()  # the fast path declines; phonenumbers decides

# _test_number_length's answers, as far as parse() cares
_POSSIBLE, _TOO_SHORT, _TOO_LONG, _LOCAL_ONLY, _INVALID_LENGTH = range(5)


def _compile(desc: object | None) -> tuple[re.Pattern[str], frozenset[int]] | None:
    pattern = getattr(desc, "national_number_pattern", None)
    if not pattern:
        return None
    return re.compile(pattern), frozenset(getattr(desc, "possible_length", ()) or ())


class _RegionRules:
    """The parts of one region's metadata that parse() and is_valid_number() use, precompiled."""

    def __init__(self, region: str):
        meta = PhoneMetadata.metadata_for_region(region, None)
        if meta is None:
            raise ValueError(region)
        self.cc = meta.country_code
        self.cc_str = str(meta.country_code)
        # Only when the calling code is this region's alone is "valid for the region" = "valid".
        self.own_code = COUNTRY_CODE_TO_REGION_CODE.get(self.cc, ()) == (region,)
        # _extract_country_code takes the shortest known prefix; ours must be the one it finds.
        self.cc_first = all(int(self.cc_str[:i]) not in COUNTRY_CODE_TO_REGION_CODE
                            for i in range(1, len(self.cc_str)))
        self.idd = re.compile(meta.international_prefix) if meta.international_prefix else None
        self.prefix = re.compile(meta.national_prefix_for_parsing) if meta.national_prefix_for_parsing else None
        self.transform = meta.national_prefix_transform_rule or None
        general = meta.general_desc
        self.general = re.compile(general.national_number_pattern)
        self.general_lengths = tuple(general.possible_length)
        self.general_local = frozenset(general.possible_length_local_only or ())
        types = [c for c in (_compile(getattr(meta, name, None)) for name in _TYPE_DESCS) if c]
        # is_valid_number = matches the general pattern and lengths, and one type's pattern and lengths:
        # one regex per length (a lookahead for the general pattern, then the types of that length).
        self.valid_by_length: dict[int, Callable[[str], re.Match[str] | None]] = {}
        for n in self.general_lengths:
            alternatives = [t.pattern for t, lengths in types if not lengths or n in lengths]
            if alternatives:
                either = "|".join(f"(?:{a})" for a in alternatives)
                self.valid_by_length[n] = re.compile(
                    rf"(?=(?:{general.national_number_pattern})\Z)(?:{either})").fullmatch
        self._general_fullmatch = self.general.fullmatch
        self.length_class = {n: self._length_class(n) for n in range(_MAX_INPUT + 1)}
        self.enabled = self.own_code and self.cc_first and bool(self.general_lengths)

    # -- the steps of phonenumbers.parse ------------------------------------------------------------
    def _general_match(self, digits: str) -> bool:
        return self._general_fullmatch(digits) is not None

    def _length(self, digits: str) -> int:
        return self.length_class.get(len(digits), _TOO_LONG)

    def _length_class(self, n: int) -> int:
        if n in self.general_local:
            return _LOCAL_ONLY
        lengths = self.general_lengths
        if lengths[0] == n:
            return _POSSIBLE
        if lengths[0] > n:
            return _TOO_SHORT
        if lengths[-1] < n:
            return _TOO_LONG
        return _POSSIBLE if n in lengths[1:] else _INVALID_LENGTH

    def _strip_national_prefix(self, digits: str) -> str:
        if not digits or self.prefix is None:
            return digits
        match = self.prefix.match(digits)
        if match is None:
            return digits
        viable_before = self._general_match(digits)
        groups = match.groups()
        if self.transform is None or groups[-1] is None:
            rest = digits[match.end():]
            if viable_before and not self._general_match(rest):
                return digits
            return rest
        transformed = self.prefix.sub(self.transform, digits, count=1)
        if viable_before and not self._general_match(transformed):
            return digits
        return transformed

    def _valid(self, nsn: str) -> bool:
        fullmatch = self.valid_by_length.get(len(nsn))
        return fullmatch is not None and fullmatch(nsn) is not None

    def e164(self, plus: bool, digits: str) -> object:
        """E.164 or None as phonenumbers would answer, or _UNSURE when only it can tell."""
        if plus or (self.idd is not None and (m := self.idd.match(digits)) and digits[m.end():m.end() + 1] != "0"):
            rest = digits if plus else digits[m.end():]
            if len(rest) <= _MIN_NSN:
                return None  # TOO_SHORT_AFTER_IDD
            if not rest.startswith(self.cc_str) or rest[0] == "0":
                return _UNSURE  # another country (or a "+0…" that parse retries as national)
            nsn = rest[len(self.cc_str):]
        else:
            nsn = digits
            if digits.startswith(self.cc_str):
                # parse() reads a leading country code without "+" when that makes more sense.
                candidate = self._strip_national_prefix(digits[len(self.cc_str):])
                if ((not self._general_match(digits) and self._general_match(candidate))
                        or self._length(digits) == _TOO_LONG):
                    nsn = candidate
        if len(nsn) < _MIN_NSN:
            return None  # TOO_SHORT_NSN
        stripped = self._strip_national_prefix(nsn)
        if self._length(stripped) not in (_TOO_SHORT, _LOCAL_ONLY, _INVALID_LENGTH):
            nsn = stripped
        if len(nsn) < _MIN_NSN or len(nsn) > _MAX_NSN:
            return None
        return f"+{self.cc_str}{nsn}" if self._valid(nsn) else None


_RULES: dict[str, _RegionRules | None] = {}


def _rules(region: str) -> _RegionRules | None:
    try:
        rules = _RegionRules(region)
    except (ValueError, AttributeError, re.error):
        return None
    return rules if rules.enabled else None


def slow_e164(raw: str, region: str) -> str | None:
    """The reference answer: phonenumbers' parse, is_valid_number and E.164 format."""
    try:
        number = phonenumbers.parse(raw, region)
    except phonenumbers.NumberParseException:
        return None
    if not phonenumbers.is_valid_number(number):
        return None
    return phonenumbers.format_number(number, phonenumbers.PhoneNumberFormat.E164)


@lru_cache(maxsize=20_000)
def _cached_slow_e164(canonical: str, region: str) -> str | None:
    return slow_e164(canonical, region)


def _canonical_e164(plus: bool, digits: str, region: str) -> str | None:
    rules = _RULES[region] if region in _RULES else _RULES.setdefault(region, _rules(region))
    if rules is not None:
        answer = rules.e164(plus, digits)
        if answer is not _UNSURE:
            return answer  # type: ignore[return-value]
    # Same digits (and "+"), same answer: the separators never change what phonenumbers reads.
    return _cached_slow_e164(("+" if plus else "") + digits, region)


def to_e164(raw: str, region: str) -> str | None:
    """`raw` as E.164 ("098344384" → "+59898344384" for UY), or None when it is not a valid number."""
    if not raw or len(raw) > _MAX_INPUT:
        return slow_e164(raw, region) if raw else None
    if raw.isascii() and raw.isdigit() and len(raw) >= 3:  # the usual case, no separators to remove
        rules = _RULES.get(region)
        if rules is not None:
            answer = rules.e164(False, raw)
            if answer is not _UNSURE:
                return answer  # type: ignore[return-value]
        return _canonical_e164(False, raw, region.upper())
    text = raw.strip(" ")
    if _SIMPLE.fullmatch(text) is None:
        return slow_e164(raw, region)
    plus = text[0] == "+"
    digits = _NON_DIGITS.sub("", text)
    if len(digits) < 3:
        return slow_e164(raw, region)
    return _canonical_e164(plus, digits, region.upper())


def default_region() -> str:
    """The region of numbers written without a country code: the app's DEFAULT_REGION (config.py)."""
    return current_app.config["DEFAULT_REGION"]


def normalise(raw: str | None, region: str | None = None) -> str | None:
    """A typed or reported number as E.164 ("098344384" → "+59898344384" in UY), None when invalid;
    `region` defaults to `default_region()`."""
    return to_e164((raw or "").strip(), region or default_region())


def national_digits(e164: str) -> str:
    """The national significant number of an E.164 string ("+59898344384" → "98344384")."""
    number = phonenumbers.parse(e164, None)
    return phonenumbers.national_significant_number(number)
