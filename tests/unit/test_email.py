"""The package's emails, built without sending: the notifier's message and the monthly report's parts."""

from __future__ import annotations

import datetime
import email
import email.policy

import pytest

from airflow_provider_zendrive.notifications.zendrive import ZenDriveEmailNotifier
from airflow_provider_zendrive.reports import monthly_report_email
from airflow_provider_zendrive.testing._data import DEMO_SERVICE_ID, window_stats

FIRST, LAST = datetime.date(2026, 4, 1), datetime.date(2026, 4, 30)


def received(notifier: ZenDriveEmailNotifier) -> email.message.EmailMessage:
    """The message as a mail client parses it off the wire."""
    wire = notifier.build_message("zendrive@example.com").as_bytes()
    message = email.message_from_bytes(wire, policy=email.policy.default)
    assert isinstance(message, email.message.EmailMessage)
    return message


def test_a_text_becomes_a_text_part_and_an_html_part_with_a_one_line_subject() -> None:
    message = received(
        ZenDriveEmailNotifier(to="a@example.com, b@example.com", text="Headline <1,234>\nBody & 5.6 GB")
    )
    assert message.get_content_type() == "multipart/alternative"
    assert [part.get_content_type() for part in message.iter_parts()] == ["text/plain", "text/html"]
    assert message["Subject"] == "Headline <1,234>"
    assert message["To"] == "a@example.com, b@example.com"
    plain, html = (part.get_content() for part in message.iter_parts())
    assert plain.replace("\r\n", "\n") == "Headline <1,234>\nBody & 5.6 GB\n"
    assert "Headline &lt;1,234&gt;\nBody &amp; 5.6 GB" in html.replace("\r\n", "\n")
    assert message["Message-ID"].endswith("@airflow-provider-zendrive>")


def test_a_subject_stays_one_line_and_a_message_id_is_kept() -> None:
    notifier = ZenDriveEmailNotifier(
        to=["a@example.com"], text="t", subject="one\ntwo\r\n", message_id="alert.1@zd", html="<p>t</p>"
    )
    message = received(notifier)
    assert message["Subject"] == "one two"
    long = "ZenDRIVE service 1234 reached 50 % of its 2026-04 egress budget on 2026-04-12, and then some more"
    # Python folds a long subject onto a line of its own, read back with a leading space: not here.
    assert received(ZenDriveEmailNotifier(to="a@example.com", text=long))["Subject"] == long
    assert message["Message-ID"] == "<alert.1@zd>"
    assert message.get_body(("html",)).get_content().strip() == "<p>t</p>"  # type: ignore[union-attr]


def test_no_recipient_is_refused() -> None:
    with pytest.raises(ValueError, match="recipient"):
        ZenDriveEmailNotifier(to=" , ", text="t").build_message("zendrive@example.com")


@pytest.mark.parametrize("failed", [False, True])
def test_the_monthly_report_email_has_no_svg_and_states_the_result(failed: bool) -> None:
    stats = window_stats(DEMO_SERVICE_ID, FIRST, LAST)
    problems = ["the table t has no row for 1 day(s) of the month (2026-04-30)"] if failed else []
    mail = monthly_report_email(stats, month="2026-04", reconciliation=problems, checked="30 daily rows == X")
    assert "\n" not in mail.subject
    assert mail.subject.endswith("reconciliation FAILED" if failed else "reconciled")
    assert "<svg" not in mail.html
    assert "<style" not in mail.html
    assert len(mail.html.encode()) < 100_000
    total = stats["summary"]["total_requests"]
    assert f"{total:,}" in mail.text
    assert f"{total:,}" in mail.html
    if failed:
        assert "Reconciliation FAILED: 1 problem." in mail.text
        assert f"- {problems[0]}" in mail.text
    else:
        assert "Reconciled: 30 daily rows == X" in mail.text
    assert mail.html.count('class="bar"') == 2 * sum(day["total_requests"] > 0 for day in stats["daily"])
