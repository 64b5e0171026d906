"""D1: the dial string. For port-based gateways (Dinstar) `(0.3)` means ports 0,1,2,3 used in turn;
`(5)` one port; `(0.3,6,8.9)` several ranges. Types without ports take none."""
from __future__ import annotations

import re

from flask_babel import gettext as _

from ..providers import uses_ports as provider_uses_ports

_RANGE = re.compile(r"^\s*(\d{1,3})\s*(?:\.\s*(\d{1,3}))?\s*$")
MAX_PORT = 255


class DialStringError(ValueError):
    """A dial string that cannot be used, with the reason in words for the form."""


def parse(dial_string: str, provider_type: str) -> list[int]:
    """Parse and check a dial string against the provider type; returns the ports in turn order."""
    text = (dial_string or "").strip()
    if not provider_uses_ports(provider_type):
        if text:
            raise DialStringError(_("A %(type)s provider takes no dial string; leave it empty.", type=provider_type))
        return []
    if not text:
        raise DialStringError(_("A port-based provider needs a dial string, e.g. (0.3) for ports 0 to 3."))
    if not (text.startswith("(") and text.endswith(")")):
        raise DialStringError(_("Write the ports in parentheses, e.g. (0.3) or (0.3,6)."))
    ports: list[int] = []
    for part in text[1:-1].split(","):
        match = _RANGE.match(part)
        if not match:
            raise DialStringError(_("'%(part)s' is not a port or a range like 0.3.", part=part.strip()))
        first = int(match.group(1))
        last = int(match.group(2)) if match.group(2) is not None else first
        if last < first:
            raise DialStringError(_("The range %(first)s.%(last)s goes backwards; write %(last)s.%(first)s.", first=first, last=last))
        if last > MAX_PORT:
            raise DialStringError(_("Port %(port)s is beyond the gateway's %(max)s.", port=last, max=MAX_PORT))
        for port in range(first, last + 1):
            if port in ports:
                raise DialStringError(_("Port %(port)s appears twice.", port=port))
            ports.append(port)
    return ports
