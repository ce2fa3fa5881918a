"""A real SMTP server on the loopback interface (aiosmtpd), for the tests that check what was emailed."""

from __future__ import annotations

import email
import email.policy
import socket
from collections.abc import Iterator
from contextlib import contextmanager
from dataclasses import dataclass, field
from email.message import EmailMessage
from typing import Any


@dataclass
class Mailbox:
    """What the server received: each message, parsed, with its envelope recipients."""

    host: str
    port: int
    messages: list[tuple[list[str], EmailMessage]] = field(default_factory=list)
    #: Messages whose Subject contains one of these are refused with a 451 (temporary failure), not stored.
    refuse_subjects: set[str] = field(default_factory=set)
    refused: list[EmailMessage] = field(default_factory=list)

    def connection_json(self) -> str:
        """The Airflow SMTP connection (``AIRFLOW_CONN_SMTP_DEFAULT``) for this server: plain SMTP, no login."""
        import json

        return json.dumps(
            {
                "conn_type": "smtp",
                "host": self.host,
                "port": self.port,
                "extra": {"disable_tls": True, "disable_ssl": True, "timeout": 10, "retry_limit": 1},
            }
        )


class _Handler:
    def __init__(self, mailbox: Mailbox) -> None:
        self.mailbox = mailbox

    async def handle_DATA(self, server: Any, session: Any, envelope: Any) -> str:
        message = email.message_from_bytes(envelope.content, policy=email.policy.default)
        assert isinstance(message, EmailMessage)
        if any(part in str(message["Subject"]) for part in self.mailbox.refuse_subjects):
            self.mailbox.refused.append(message)
            return "451 Requested action aborted: local error in processing"
        self.mailbox.messages.append((list(envelope.rcpt_tos), message))
        return "250 Message accepted for delivery"


@contextmanager
def smtp_server() -> Iterator[Mailbox]:
    """Serve SMTP on 127.0.0.1 (a free port) until the block ends."""
    from aiosmtpd.controller import Controller

    with socket.socket() as probe:
        probe.bind(("127.0.0.1", 0))
        port = probe.getsockname()[1]
    mailbox = Mailbox("127.0.0.1", port)
    controller = Controller(_Handler(mailbox), hostname="127.0.0.1", port=port)
    controller.start()
    try:
        yield mailbox
    finally:
        controller.stop()
