"""The redaction rule on its own: plain forms become ***, and a text that still shows a fragment is withheld."""

from __future__ import annotations

import base64
import urllib.parse

import pytest

from airflow_provider_zendrive._client.redaction import FRAGMENT, REDACTED, WITHHELD, leaks, redact

SECRET = "wJalrXUtnFEMI/K7MDENG+bPxRfiCY"


@pytest.mark.parametrize(
    "echo",
    [
        SECRET,
        urllib.parse.quote(SECRET, safe=""),
        urllib.parse.quote(SECRET, safe="").lower(),
        SECRET.replace("/", "\\/"),
    ],
)
def test_plain_forms_are_replaced_and_the_rest_of_the_text_kept(echo: str) -> None:
    assert redact(f"bad key {echo} here", SECRET) == f"bad key {REDACTED} here"
    assert redact(f"status {SECRET!r}", SECRET) == f"status '{REDACTED}'"


@pytest.mark.parametrize(
    "echo",
    [
        SECRET[:FRAGMENT],  # a fragment, as a cut would leave it
        SECRET[3:].upper(),
        base64.b64encode(SECRET.encode()).decode(),
        urllib.parse.quote(urllib.parse.quote(SECRET, safe=""), safe=""),  # encoded twice
        "&#119;&#74;&#97;&#108;&#114;&#88;&#85;&#116;&#110;",  # HTML numeric entities
        " ".join(SECRET),  # spaced out
    ],
)
def test_a_remaining_fragment_withholds_the_whole_text(echo: str) -> None:
    assert leaks(echo, SECRET)
    assert redact(f"the server said: {echo}", SECRET) == WITHHELD


def test_text_without_the_secret_is_untouched() -> None:
    text = "Too many requests, slow down"
    assert not leaks(text, SECRET)
    assert redact(text, SECRET) == text
    assert redact(SECRET[: FRAGMENT - 1], SECRET) == SECRET[: FRAGMENT - 1]  # shorter than a fragment


def test_a_short_secret_counts_whole() -> None:
    assert redact("x=abc12", "abc12") == f"x={REDACTED}"
    assert leaks("ABC12", "abc12")
