"""Path templates (/cong-dan/{so_dinh_danh}) filled with URL-quoted parameter values."""

from __future__ import annotations

import re
from collections.abc import Mapping
from functools import lru_cache
from urllib.parse import quote

from connectors.errors import RequestNotMappable

_PARAM = re.compile(r"\{([a-z_][a-z0-9_]*)\}")


@lru_cache(maxsize=4096)
def _parse(template: str) -> tuple[tuple[str, ...], tuple[str, ...]]:
    """Literal pieces and parameter names, alternating: lit0 {p0} lit1 {p1} lit2."""
    pieces = _PARAM.split(template)
    return tuple(pieces[0::2]), tuple(pieces[1::2])


def _quote(name: str, value: str) -> str:
    # A dot segment would be resolved away (aiohttp normalises even %2E%2E): a value of ".."
    # would climb out of the template to another resource of the provider.
    if value in (".", ".."):
        raise RequestNotMappable(f"path parameter {name!r} cannot be {value!r}", request_sent=False)
    return quote(value, safe="")


def render_path(template: str, params: Mapping[str, str]) -> str:
    """The template with each {name} replaced by its quoted value."""
    literals, names = _parse(template)
    if not names:
        return template
    out = [literals[0]]
    for name, literal in zip(names, literals[1:], strict=True):
        value = params.get(name)
        if value is None:
            raise RequestNotMappable(f"path parameter {name!r} is missing", request_sent=False)
        out.append(_quote(name, str(value)))
        out.append(literal)
    return "".join(out)
