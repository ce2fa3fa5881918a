"""
Exceptions raised by the ZenDRIVE provider, grouped by what the caller can do about them.

Every error the provider raises on purpose is a :class:`ZenDriveError`, so one ``except`` clause catches them
all. :class:`ZenDriveTransientError` holds the errors that waiting may cure; **everything else is final**:
retrying the same request cannot succeed, so the sensor fails at once, the trigger fires an error event and
the retry policy fails the task. A new class is final unless it derives from ``ZenDriveTransientError``. The
tree, with the HTTP status each class stands for::

    AirflowException
     └── ZenDriveError                      base class, final; .status_code is None or the HTTP status
          ├── ZenDriveTransientError        waiting may help: poll again, retry later
          │    ├── ZenDriveRateLimitError   429 still returned after the retries; .retry_after
          │    ├── ZenDriveUnavailableError 500/502/503/504, timeouts, connection errors after the retries
          │    └── ZenDriveFleetRetryableError  (also a ZenDriveFleetError) services of a batch failed, one at
          │                                 least on an error waiting may cure (or not ours: a database error)
          ├── ZenDriveInputError            bad input caught before any request (also a ValueError)
          ├── ZenDriveAuthError             401: the access key / secret key pair was rejected
          ├── ZenDriveServiceInactiveError  403: the service is suspended or cancelled (final for a pull;
          │                                 the sensor's and trigger's "not yet")
          ├── ZenDriveRequestError          400, 404, 405, 3xx, other 4xx, other 5xx (501...); .server_message
          ├── ZenDriveTLSError              the server's certificate failed verification
          ├── ZenDriveResponseError         a 200 whose body is not the documented JSON, or is too large
          └── ZenDriveFleetError            services of a batch failed, each on a final error; .failures

No message, ``str()`` or ``repr()`` of these exceptions ever contains the secret key: the provider redacts any
server text it copies into a message and never chains a transport exception that holds the request body.
"""

from __future__ import annotations

from airflow.sdk.exceptions import AirflowException

__all__ = [
    "ZenDriveAuthError",
    "ZenDriveError",
    "ZenDriveFleetError",
    "ZenDriveFleetRetryableError",
    "ZenDriveInputError",
    "ZenDriveRateLimitError",
    "ZenDriveRequestError",
    "ZenDriveResponseError",
    "ZenDriveServiceInactiveError",
    "ZenDriveTLSError",
    "ZenDriveTransientError",
    "ZenDriveUnavailableError",
]


class ZenDriveError(AirflowException):
    """Base class of every error raised by the ZenDRIVE provider."""

    #: The HTTP status behind the error, or None (input errors, timeouts, connection errors).
    status_code: int | None  # type: ignore[assignment]

    def __init__(self, message: str, *, status_code: int | None = None) -> None:
        super().__init__(message)
        self.message = message
        self.status_code = status_code

    def __repr__(self) -> str:
        return f"{type(self).__name__}({self.message!r}, status_code={self.status_code!r})"

    def __reduce__(self) -> tuple[object, ...]:
        # Keyword-only constructor arguments need help to survive pickling (e.g. across processes).
        return _rebuild, (type(self), self.message, dict(self.__dict__))


def _rebuild(cls: type[ZenDriveError], message: str, state: dict[str, object]) -> ZenDriveError:
    error = cls.__new__(cls)
    Exception.__init__(error, message)
    error.__dict__.update(state)
    return error


class ZenDriveTransientError(ZenDriveError):
    """An error that waiting may cure: the rate limit or a temporarily unavailable API; ``retry_after`` in s."""

    def __init__(
        self, message: str, *, status_code: int | None = None, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status_code=status_code)
        self.retry_after = retry_after


class ZenDriveInputError(ZenDriveError, ValueError):
    """Invalid dates, window or connection settings, found before anything was sent."""


class ZenDriveAuthError(ZenDriveError):
    """The server answered 401 Invalid credentials: check the access key and secret key."""


class ZenDriveServiceInactiveError(ZenDriveError):
    """The server answered 403 Service is not active: the service is suspended or cancelled."""


class ZenDriveRequestError(ZenDriveError):
    """The server refused the request (400, 404, 405, another 4xx, or a redirect)."""

    def __init__(self, message: str, *, status_code: int | None = None, server_message: str = "") -> None:
        super().__init__(message, status_code=status_code)
        self.server_message = server_message


class ZenDriveRateLimitError(ZenDriveTransientError):
    """The per-key rate limit (429) still applied after every retry; ``retry_after`` is in seconds."""

    def __init__(
        self, message: str, *, status_code: int | None = 429, retry_after: float | None = None
    ) -> None:
        super().__init__(message, status_code=status_code, retry_after=retry_after)


class ZenDriveUnavailableError(ZenDriveTransientError):
    """The API stayed unavailable (500, 502, 503, 504, a timeout or a connection error) after every retry."""


class ZenDriveTLSError(ZenDriveError):
    """TLS verification of the endpoint failed: set the connection's ``verify`` extra to the right CA bundle."""


class ZenDriveResponseError(ZenDriveError):
    """The server answered 200 with a body that is not the documented usage-statistics JSON."""


class ZenDriveFleetError(ZenDriveError):
    """Some services of a batch failed (the others were written); ``failures`` maps each conn id to its error."""

    def __init__(self, message: str, *, failures: dict[str, str] | None = None) -> None:
        super().__init__(message)
        self.failures = dict(failures or {})


class ZenDriveFleetRetryableError(ZenDriveFleetError, ZenDriveTransientError):
    """Some services of a batch failed, at least one on an error a retry may cure; the retry pulls only those."""
