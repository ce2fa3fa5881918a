"""
The package's email notifier: every email it sends has a plain-text part and an HTML part.

Airflow's :class:`~airflow.providers.smtp.notifications.smtp.SmtpNotifier` sends HTML only; a mail client set
to plain text, a screen reader's text view, a ticket system or ``grep`` over a mailbox then gets nothing
readable. :class:`ZenDriveEmailNotifier` takes the same connection and addresses and sends
``multipart/alternative``: ``text/plain`` first, then ``text/html`` (the one a client shows when it can).
"""

from __future__ import annotations

import email.policy
import email.utils
import html as html_lib
import smtplib
from collections.abc import Iterable
from email.message import EmailMessage
from typing import TYPE_CHECKING, Any

from airflow.sdk import BaseNotifier

if TYPE_CHECKING:
    from airflow.sdk import Context

__all__ = ["ZenDriveEmailNotifier"]

_HEADERS = email.policy.SMTP.clone(max_line_length=998)


class ZenDriveEmailNotifier(BaseNotifier):
    """
    Email through an SMTP connection, as ``multipart/alternative`` with a text part and an HTML part.

    Used like :class:`~airflow.providers.smtp.notifications.smtp.SmtpNotifier` (a task's callback, a budget
    alert's notifier): every argument below is templated. Without ``html``, the HTML part is the text in a
    ``<pre>`` block, so both parts always carry the same numbers. The subject is one line: without
    ``subject`` it is the text's first line, and any line break in a given one becomes a space.

    .. code-block:: python

        ZenDriveEmailNotifier(
            to="billing@example.com",
            text="{{ ti.xcom_pull(task_ids='pull_daily_usage', key='summary') }}",
        )

    :param to: the recipients: an address, a comma-separated string or a list.
    :param text: the ``text/plain`` body.
    :param html: the ``text/html`` body; None: ``text`` in a ``<pre>`` block.
    :param subject: one line; None: the first line of ``text``.
    :param from_email: the sender; None: the connection's ``from_email`` extra.
    :param message_id: the ``Message-ID`` header (``<id@domain>``; the angle brackets are added if missing); a
        stable one lets a mail client thread or drop a repeat. None: a new one.
    :param cc: copy recipients, as ``to``.
    :param bcc: blind copy recipients, as ``to`` (not in the headers).
    :param custom_headers: more headers, ``{name: value}``.
    :param smtp_conn_id: the SMTP connection (the official SMTP provider's ``smtp`` type).
    """

    template_fields = (
        "to",
        "text",
        "html",
        "subject",
        "from_email",
        "message_id",
        "cc",
        "bcc",
        "custom_headers",
        "smtp_conn_id",
    )

    def __init__(
        self,
        *,
        to: str | Iterable[str],
        text: str,
        html: str | None = None,
        subject: str | None = None,
        from_email: str | None = None,
        message_id: str | None = None,
        cc: str | Iterable[str] | None = None,
        bcc: str | Iterable[str] | None = None,
        custom_headers: dict[str, Any] | None = None,
        smtp_conn_id: str = "smtp_default",
    ) -> None:
        super().__init__()
        self.to = to
        self.text = text
        self.html = html
        self.subject = subject
        self.from_email = from_email
        self.message_id = message_id
        self.cc = cc
        self.bcc = bcc
        self.custom_headers = custom_headers
        self.smtp_conn_id = smtp_conn_id

    def build_message(self, from_email: str) -> EmailMessage:
        """
        The message as it will be sent (after the templates are rendered).

        :param from_email: the sender.
        :raises ValueError: without recipients.
        """
        to = _addresses(self.to)
        if not to:
            raise ValueError("ZenDriveEmailNotifier needs at least one recipient in `to`.")
        text = str(self.text)
        subject = " ".join(str(self.subject if self.subject is not None else text.partition("\n")[0]).split())
        message = EmailMessage(policy=email.policy.SMTP)
        message["Subject"] = subject
        message["From"] = from_email
        message["To"] = ", ".join(to)
        if self.cc:
            message["Cc"] = ", ".join(_addresses(self.cc))
        message["Date"] = email.utils.formatdate(usegmt=True)
        message_id = str(self.message_id or email.utils.make_msgid(domain="airflow-provider-zendrive"))
        message["Message-ID"] = message_id if message_id.startswith("<") else f"<{message_id}>"
        for name, value in (self.custom_headers or {}).items():
            message[name] = value
        message.set_content(text, subtype="plain", charset="utf-8")
        body = self.html if self.html is not None else _pre(subject, text)
        message.add_alternative(str(body), subtype="html", charset="utf-8")
        # The parts are encoded (76-character lines); headers are folded when sent. Python folds a long subject
        # onto a line of its own, which some clients show with a leading space: fold only past RFC 5322's 998.
        message.policy = _HEADERS
        return message

    def notify(self, context: Context) -> None:
        """
        Send the email (synchronously: task callbacks and the budget operator call it so; there is no
        ``async_notify`` for the triggerer).
        """
        from airflow.providers.smtp.hooks.smtp import SmtpHook

        with SmtpHook(smtp_conn_id=self.smtp_conn_id) as smtp:
            from_email = self.from_email or smtp.from_email
            if not from_email:
                raise ValueError("Give `from_email`, or set `from_email` in the SMTP connection's extra.")
            message = self.build_message(from_email)
            recipients = _addresses(self.to) + _addresses(self.cc or ()) + _addresses(self.bcc or ())
            # SmtpHook opens, secures and logs in (TLS, OAuth2, its connection retries), but sends only the
            # HTML-only message it builds itself, and has no public accessor for the client it opened (its own
            # test_connection reads the same attribute): the one private access of the package, on purpose.
            client = smtp._smtp_client  # noqa: SLF001
            if not isinstance(client, smtplib.SMTP):  # the sync hook always opens an smtplib client
                raise TypeError(f"SmtpHook opened {type(client).__name__}, not an smtplib.SMTP client")
            client.send_message(message, from_addr=from_email, to_addrs=recipients)


def _addresses(value: str | Iterable[str]) -> list[str]:
    items = value.replace(";", ",").split(",") if isinstance(value, str) else value
    return [address.strip() for address in items if address.strip()]


def _pre(title: str, text: str) -> str:
    escape = html_lib.escape
    return (
        '<!DOCTYPE html>\n<html lang="en">\n<head>\n<meta charset="utf-8">\n'
        f"<title>{escape(title)}</title>\n</head>\n<body>\n"
        "<pre style=\"font-family:Menlo,Consolas,'Liberation Mono',monospace;font-size:13px;"
        f'white-space:pre-wrap">{escape(text)}</pre>\n</body>\n</html>\n'
    )
