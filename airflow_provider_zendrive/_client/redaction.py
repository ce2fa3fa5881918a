"""
Keeping the secret key out of every text the provider writes: messages, log lines, event payloads.

Servers and proxies echo requests back in many encodings (URL quoting in either case, JSON with or without
``\\/``, HTML entities, Python ``repr``, base64, UTF-8 read as Latin-1, ...). Listing encodings to replace is a
race that the next proxy wins, so the rule here is different: :func:`leaks` decodes a text every common way and
looks for any readable fragment of the secret (:data:`FRAGMENT` characters, or the whole secret if it is
shorter) in each view. :func:`redact` replaces the plain forms with ``***`` and, if a fragment still shows in
any view, withholds the whole text. Server text is worth echoing for diagnosis, but not at that price.

Internal: the public entry point is :meth:`ZenDriveSettings.redact
<airflow_provider_zendrive._client.settings.ZenDriveSettings.redact>`.
"""

from __future__ import annotations

import base64
import html
import json
import re
import urllib.parse
from collections.abc import Callable, Iterable

__all__ = ["FRAGMENT", "REDACTED", "WITHHELD", "leaks", "redact"]

#: The shortest run of the secret's characters that counts as a leak.
FRAGMENT = 8
REDACTED = "***"
#: What replaces a text that holds part of the secret in a form :func:`redact` cannot cut out.
WITHHELD = "[text withheld: it contained part of the secret key]"
#: How many rounds of decoding are applied (an echo may be encoded twice, e.g. JSON inside a URL).
_ROUNDS = 3
_BACKSLASH = re.compile(r"\\(?:x[0-9a-fA-F]{2}|u[0-9a-fA-F]{4}|U[0-9a-fA-F]{8}|[0-7]{1,3}|.)", re.DOTALL)
_SIMPLE_ESCAPES = {"n": "\n", "r": "\r", "t": "\t", "b": "\b", "f": "\f", "v": "\v", "a": "\a", "0": "\0"}


def _unbackslash(text: str) -> str:
    """Undo JSON, PHP-JSON (``\\/``) and Python string escapes."""

    def one(match: re.Match[str]) -> str:
        escape = match.group()[1:]
        if escape[0] in "xuU" and len(escape) > 1:
            return chr(int(escape[1:], 16))
        if escape[0].isdigit() and escape != "0":
            return chr(int(escape, 8) & 0x10FFFF)
        return _SIMPLE_ESCAPES.get(escape, escape)

    return _BACKSLASH.sub(one, text)


def _latin1_as_utf8(text: str) -> str:
    """Raw UTF-8 bytes that a client decoded as Latin-1 (as HTTP headers are)."""
    try:
        return text.encode("latin-1").decode("utf-8")
    except UnicodeError:
        return text


_DECODERS: tuple[Callable[[str], str], ...] = (
    urllib.parse.unquote,
    urllib.parse.unquote_plus,
    html.unescape,
    _unbackslash,
    _latin1_as_utf8,
)


def _views(text: str) -> set[str]:
    """The text decoded every common way, up to :data:`_ROUNDS` encodings deep, plus whitespace-free views."""
    views = {text}
    frontier = {text}
    for _ in range(_ROUNDS):
        frontier = {decode(view) for view in frontier for decode in _DECODERS} - views
        if not frontier:
            break
        views |= frontier
    return views | {"".join(view.split()) for view in views}


def _fragments(secret: str) -> set[str]:
    size = min(FRAGMENT, len(secret))
    return {secret[i : i + size] for i in range(len(secret) - size + 1)}


def _base64_cores(secret: str) -> set[str]:
    """Pieces of the secret's base64 (standard and URL-safe) that appear whatever the alignment."""
    data = secret.encode()
    cores = set()
    for offset in range(3):
        for encode in (base64.b64encode, base64.urlsafe_b64encode):
            encoded = encode(data[offset:]).decode()
            core = encoded[: max(0, len(encoded) - 4)]  # the last block depends on what follows
            if len(core) >= FRAGMENT:
                cores.add(core)
    return cores


def leaks(text: str, secret: str) -> bool:
    """
    Whether ``text`` shows a readable fragment of ``secret`` in any common encoding, in any letter case.

    :param text: the text about to be written somewhere.
    :param secret: the secret key.
    """
    if not secret or not text:
        return False
    fragments = _fragments(secret)
    folded = {fragment.casefold() for fragment in fragments}
    for view in _views(text):
        if any(fragment in view for fragment in fragments):
            return True
        lowered = view.casefold()
        if any(fragment in lowered for fragment in folded):
            return True
    return any(core in text for core in _base64_cores(secret))


def _plain_forms(secret: str) -> Iterable[str]:
    forms = {
        secret,
        urllib.parse.quote(secret),
        urllib.parse.quote(secret, safe=""),
        urllib.parse.quote(secret, safe="").lower(),
        urllib.parse.quote_plus(secret),
        urllib.parse.quote_plus(secret, safe=""),
        json.dumps(secret)[1:-1],
        json.dumps(secret)[1:-1].replace("/", "\\/"),
        json.dumps(secret, ensure_ascii=False)[1:-1],
        html.escape(secret),
        repr(secret)[1:-1],
    }
    return sorted((form for form in forms if form), key=len, reverse=True)


def redact(text: str, secret: str) -> str:
    """
    ``text`` with the secret's plain forms replaced by ``***``; the whole text withheld if any fragment remains.

    :param text: the text about to be written somewhere.
    :param secret: the secret key.
    :return: a text that :func:`leaks` finds nothing in.
    """
    if not secret:
        return text
    for form in _plain_forms(secret):
        text = text.replace(form, REDACTED)
    return WITHHELD if leaks(text, secret) else text
