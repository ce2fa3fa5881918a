"""
Connection settings: from an Airflow Connection to a validated endpoint URL, keys, timeout, TLS and retries.

Shared by the sync hook and the async trigger, so both apply the same HTTPS rule, defaults and validation.
Nothing here imports an HTTP library or sends anything.
"""

from __future__ import annotations

import ipaddress
import json
import os
import re
import ssl
import urllib.parse
from collections.abc import Mapping
from dataclasses import dataclass, field
from typing import TYPE_CHECKING, Any

from airflow_provider_zendrive import __version__
from airflow_provider_zendrive._client import DEFAULT_CONN_ID
from airflow_provider_zendrive._client.redaction import REDACTED, redact
from airflow_provider_zendrive.exceptions import ZenDriveInputError, ZenDriveTLSError

if TYPE_CHECKING:
    from airflow.sdk import Connection

    from airflow_provider_zendrive._client.windows import DateWindow

__all__ = [
    "DEFAULT_ENDPOINT",
    "ENDPOINT_PATH",
    "USER_AGENT",
    "ZenDriveSettings",
    "build_endpoint_url",
    "default_ca_bundle",
]

ENDPOINT_PATH = "/zendrive-api/cdn-stats/"
#: The documented endpoint, used when a connection leaves the host empty.
DEFAULT_ENDPOINT = f"https://dashboard.clearstreamer.com{ENDPOINT_PATH}"
USER_AGENT = f"airflow-provider-zendrive/{__version__}"
DEFAULT_TIMEOUT = 30.0
#: The longest ``timeout`` accepted: one attempt may take at most this long (an hour is already absurd).
MAX_TIMEOUT = 3600.0
DEFAULT_MAX_RETRIES = 6
_TRUE = frozenset({"true", "1", "yes", "on"})
_FALSE = frozenset({"false", "0", "no", "off"})
_SCHEME_WITH_SLASH = re.compile(r"[A-Za-z][A-Za-z0-9+.-]*:/")
#: One DNS label (underscores tolerated: some internal names use them).
_LABEL = re.compile(r"[A-Za-z0-9_](?:[A-Za-z0-9_-]{0,61}[A-Za-z0-9_])?")


def build_endpoint_url(host: str | None, port: int | None = None, path: str | None = None) -> str:
    """
    Build the endpoint URL from a connection's host, port and (optional) path.

    ``host`` may be empty (the documented endpoint), a bare hostname (``https`` and the documented path are
    implied), or a full ``https://host[:port]/path/`` URL. A missing trailing slash is added, because the
    server answers the slash-less URL with a redirect that drops the request body.

    :raises ZenDriveInputError: for ``http://`` or any other scheme (also mistyped, as in ``http:/host``),
        credentials, a query, whitespace or control characters in the URL, a malformed URL, a port outside
        1..65535, or a port field that disagrees with the URL's port.
    """
    text = (host or "").strip()
    if not text:
        text = DEFAULT_ENDPOINT
    if any(char.isspace() or not char.isprintable() for char in text):
        raise ZenDriveInputError(
            f"The endpoint URL {_redact_userinfo(text)!r} contains whitespace or control characters; fix the "
            "connection's host field."
        )
    if "://" not in text:
        if _SCHEME_WITH_SLASH.match(text):  # "http:/host", "https:/host": a mistyped URL, not a hostname
            raise ZenDriveInputError(
                f"The endpoint URL {_redact_userinfo(text)!r} is malformed; use https://host[:port]/path/ or a "
                "bare hostname (the ZenDRIVE API requires HTTPS)."
            )
        text = "https://" + text
    try:
        parts = urllib.parse.urlsplit(text)
    except ValueError:  # "https://[::1": an unclosed IPv6 bracket
        raise ZenDriveInputError(
            f"The endpoint URL {_redact_userinfo(text)!r} is malformed; use https://host[:port]/path/."
        ) from None
    scheme = parts.scheme.lower()
    if scheme == "http":
        raise ZenDriveInputError(
            f"Refusing plain HTTP endpoint {_without_userinfo(parts)!r}: the ZenDRIVE API requires HTTPS and "
            "every request carries the secret key. Use an https:// URL (or a bare hostname)."
        )
    if scheme != "https":
        raise ZenDriveInputError(f"Endpoint scheme {parts.scheme!r} is not supported; use an https:// URL.")
    if parts.username is not None or parts.password is not None:
        raise ZenDriveInputError(
            "The endpoint URL must not contain credentials; put the access key in login and the secret key "
            "in password."
        )
    if parts.query or parts.fragment:
        raise ZenDriveInputError("The endpoint URL must not contain a query string or fragment.")
    if not parts.hostname or not _valid_hostname(parts.hostname):
        raise ZenDriveInputError(f"The endpoint URL {text!r} has no valid hostname.")
    try:
        url_port = parts.port
    except ValueError:
        raise ZenDriveInputError(f"The endpoint URL {text!r} has an invalid port.") from None
    netloc = parts.netloc
    if port is not None:
        if not 0 < port < 65536:
            raise ZenDriveInputError(
                f"The connection's port {port} is not between 1 and 65535; leave it empty for 443."
            )
        if url_port is not None and url_port != port:
            raise ZenDriveInputError(
                f"The endpoint URL says port {url_port} but the connection's port field says {port}; keep one."
            )
        if url_port is None:
            url_port = port
            netloc = f"{netloc}:{url_port}"
    if url_port is not None and not 0 < url_port < 65536:
        raise ZenDriveInputError(f"The endpoint port {url_port} is not between 1 and 65535.")
    url_path = parts.path
    if url_path in ("", "/"):
        url_path = "/" + path.strip("/") + "/" if path and path.strip("/") else ENDPOINT_PATH
    if not url_path.endswith("/"):
        url_path += "/"
    return urllib.parse.urlunsplit(("https", netloc, url_path, "", ""))


def _valid_hostname(hostname: str) -> bool:
    """An IP address, or DNS labels of letters, digits, ``-`` and ``_`` (internationalised names allowed)."""
    try:
        ipaddress.ip_address(hostname)
    except ValueError:
        pass
    else:
        return True
    try:
        ascii_name = hostname.encode("idna").decode("ascii")
    except UnicodeError:
        return False
    labels = ascii_name.removesuffix(".").split(".")  # "example.com." is fully qualified, still valid
    return len(ascii_name) <= 254 and all(_LABEL.fullmatch(label) for label in labels)


def _redact_userinfo(text: str) -> str:
    _, at, tail = text.rpartition("@")
    return f"{REDACTED}@{tail}" if at else text


def default_ca_bundle() -> str:
    """
    The CA bundle that ``verify=True`` means: what ``requests`` users expect, for the hook and the trigger alike.

    ``REQUESTS_CA_BUNDLE``, else ``CURL_CA_BUNDLE``, else certifi's bundle.
    """
    import certifi

    return os.environ.get("REQUESTS_CA_BUNDLE") or os.environ.get("CURL_CA_BUNDLE") or certifi.where()


def _without_userinfo(parts: urllib.parse.SplitResult) -> str:
    netloc = parts.netloc.rpartition("@")[2]
    return urllib.parse.urlunsplit((parts.scheme, netloc, parts.path, "", ""))


@dataclass(frozen=True)
class ZenDriveSettings:
    """
    Everything needed to call the API, validated. The secret key is kept out of ``repr()``.

    :param url: the endpoint URL (HTTPS, trailing slash).
    :param access_key: the S3 access key (connection login).
    :param secret_key: the S3 secret key (connection password).
    :param timeout: connect and read timeout of each request, in seconds.
    :param verify: True, False, or the path of a CA bundle.
    :param max_retries: retries on 429, 5xx, timeouts and connection errors.
    :param conn_id: the Airflow connection id, for messages.
    """

    url: str
    access_key: str
    secret_key: str = field(repr=False)
    timeout: float = DEFAULT_TIMEOUT
    verify: bool | str = True
    max_retries: int = DEFAULT_MAX_RETRIES
    conn_id: str = DEFAULT_CONN_ID

    @classmethod
    def from_connection(cls, conn: Connection, *, extra: Mapping[str, Any] | None = None) -> ZenDriveSettings:
        """
        Read and validate an Airflow Connection of type ``zendrive``.

        :param conn: the connection.
        :param extra: its decoded extras, when the caller already has them (the trigger reads them with the
            async ``aextra_dejson``, which is safe in the triggerer's event loop); default ``conn.extra_dejson``.
        :raises ZenDriveInputError: on a missing key, a non-HTTPS host or an invalid extra.
        :raises ZenDriveTLSError: when extra ``verify`` names a file that holds no PEM certificate.
        """
        conn_id = conn.conn_id or "zendrive"
        if not conn.login:
            raise ZenDriveInputError(f"Connection {conn_id!r} has no access key: set its login field.")
        if not conn.password:
            raise ZenDriveInputError(f"Connection {conn_id!r} has no secret key: set its password field.")
        if extra is None:
            extra = conn.extra_dejson
        return cls(
            url=build_endpoint_url(conn.host, conn.port, conn.schema),
            access_key=conn.login,
            secret_key=conn.password,
            timeout=_timeout(extra.get("timeout"), conn_id),
            verify=_verify(extra.get("verify"), conn_id),
            max_retries=_max_retries(extra.get("max_retries"), conn_id),
            conn_id=conn_id,
        )

    def request_body(self, window: DateWindow | None) -> dict[str, str]:
        """The JSON body of one request: the keys, plus ``from`` / ``to`` when a window is given."""
        body = {"access_key": self.access_key, "secret_key": self.secret_key}
        if window is not None:
            body.update(window.as_params())
        return body

    def encode_body(self, window: DateWindow | None) -> bytes:
        """:meth:`request_body` serialised as UTF-8 JSON."""
        return json.dumps(self.request_body(window)).encode()

    def redact(self, text: str) -> str:
        """
        ``text`` safe to write anywhere: the secret's plain forms become ``***``, and a text that still shows a
        fragment of it in any common encoding is withheld whole (see :mod:`airflow_provider_zendrive._client.redaction`).
        """
        return redact(text, self.secret_key)

    @property
    def headers(self) -> dict[str, str]:
        """Headers sent with every request."""
        return {"User-Agent": USER_AGENT, "Content-Type": "application/json", "Accept": "application/json"}


def _timeout(value: Any, conn_id: str) -> float:
    if value is None or value == "":
        return DEFAULT_TIMEOUT
    try:
        timeout = float(value)
    except (TypeError, ValueError):
        timeout = -1.0
    if isinstance(value, bool) or not 0 < timeout <= MAX_TIMEOUT:
        raise ZenDriveInputError(
            f"Connection {conn_id!r}: extra 'timeout' must be a number of seconds above 0 and at most "
            f"{MAX_TIMEOUT:g}."
        )
    return timeout


def _max_retries(value: Any, conn_id: str) -> int:
    if value is None or value == "":
        return DEFAULT_MAX_RETRIES
    try:
        retries = int(str(value).strip())
    except ValueError:
        retries = -1
    if isinstance(value, bool | float) or retries < 0:
        raise ZenDriveInputError(f"Connection {conn_id!r}: extra 'max_retries' must be an integer >= 0.")
    return retries


def _verify(value: Any, conn_id: str) -> bool | str:
    if value is None or value == "":
        return True
    if isinstance(value, bool):
        return value
    if isinstance(value, str):
        lowered = value.strip().lower()
        if lowered in _TRUE:
            return True
        if lowered in _FALSE:
            return False
        path = os.path.expanduser(value.strip())
        if os.path.isfile(path):
            return _ca_bundle_file(path, conn_id)
        if os.path.isdir(path):
            return path
        raise ZenDriveInputError(
            f"Connection {conn_id!r}: extra 'verify' is neither true/false nor an existing CA bundle "
            f"path ({value!r})."
        )
    raise ZenDriveInputError(
        f"Connection {conn_id!r}: extra 'verify' must be true, false or a CA bundle path."
    )


def _ca_bundle_file(path: str, conn_id: str) -> str:
    """``path`` once it has loaded as a CA bundle, so a file of anything else fails here, before any request."""
    try:
        ssl.create_default_context(cafile=path)
    except ssl.SSLError as exc:
        raise ZenDriveTLSError(
            f"Connection {conn_id!r}: extra 'verify' names {path!r}, which holds no CA certificate that TLS "
            f"can load ({exc.reason or exc}). Set it to a PEM bundle (-----BEGIN CERTIFICATE----- blocks), "
            "true for the default trust store, or false."
        ) from None
    except OSError as exc:
        raise ZenDriveInputError(
            f"Connection {conn_id!r}: extra 'verify' names {path!r}, which cannot be read "
            f"({exc.strerror or exc}); make it readable by the Airflow user."
        ) from None
    return path
