"""Wording for log lines and messages people read. Internal."""

from __future__ import annotations

__all__ = ["plural"]


def plural(count: int, noun: str, nouns: str | None = None) -> str:
    """
    ``count`` and the noun that agrees with it: ``plural(1, "day")`` is ``"1 day"``, ``plural(3, "day")`` is
    ``"3 days"``, with thousands separators (``"1,234 requests"``).

    :param nouns: the plural form, when it is not ``noun + "s"``.
    """
    word = noun if count == 1 else (nouns or noun + "s")
    return f"{count:,} {word}"
