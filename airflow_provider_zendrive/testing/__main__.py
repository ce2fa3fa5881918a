"""
Run the ZenDRIVE emulator by hand: ``python -m airflow_provider_zendrive.testing --help``.

It prints the HTTPS URL, the CA bundle and ``export AIRFLOW_CONN_ZENDRIVE_DEFAULT=...`` lines for the demo
account, then serves until Ctrl-C or SIGTERM.
"""

from __future__ import annotations

import argparse
import datetime
import signal
import sys
import threading
from collections.abc import Sequence
from types import FrameType

from airflow_provider_zendrive.testing._data import DEMO_ACCESS_KEY, DEMO_SECRET_KEY, DEMO_SERVICE_ID
from airflow_provider_zendrive.testing._types import Fault
from airflow_provider_zendrive.testing.emulator import RetryAfterStyle, ZenDriveEmulator

_EPILOG = """\
examples (faults combine; see docs/guides/emulator.rst):
  --suspended            the demo key answers 403 "Service is not active" (a sensor waits)
  --suspended-for 3      403 for the next 3 requests of the demo key, then active
  --rate-limit 1         at most 1 request/second per key, else 429 (with --retry-after)
  --late-days 1          yesterday and today are still counted: partial numbers (late data)
  --fail 503x2 --fail drop
                         the next requests fail, in order: two 503s, then a dropped connection
  --new-service          the demo key's service is brand new: zero totals, no daily rows
"""


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_zendrive.testing",
        description="Serve an HTTPS emulator of the ZenDRIVE usage-statistics API.",
        epilog=_EPILOG,
        formatter_class=argparse.RawDescriptionHelpFormatter,
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="HTTPS port; 0 picks a free one (default)")
    parser.add_argument(
        "--today", type=datetime.date.fromisoformat, default=None, metavar="YYYY-MM-DD", help="fixed 'today'"
    )
    faults = parser.add_argument_group("faults")
    suspension = faults.add_mutually_exclusive_group()
    suspension.add_argument(
        "--suspended",
        action="store_true",
        help="the demo key's service is suspended: every request gets 403 'Service is not active'",
    )
    suspension.add_argument(
        "--suspended-for",
        type=_positive_int,
        default=None,
        metavar="N",
        help="403 'Service is not active' for the demo key's next N requests, then active",
    )
    faults.add_argument(
        "--rate-limit",
        type=float,
        default=None,
        metavar="R",
        help="per-key token-bucket limit in requests/second; over it: 429 'Too many requests, slow down'",
    )
    faults.add_argument("--burst", type=int, default=1, metavar="B", help="rate-limit burst (default: 1)")
    faults.add_argument(
        "--retry-after",
        choices=("seconds", "http-date", "none"),
        default="seconds",
        help="Retry-After style of a rate-limited 429 (default: %(default)s)",
    )
    faults.add_argument(
        "--late-days",
        type=int,
        default=0,
        metavar="N",
        help="late data: the last N days before today (and today) are only partly counted (default: 0)",
    )
    faults.add_argument(
        "--late-fraction",
        type=float,
        default=0.5,
        metavar="F",
        help="the share of a still-counted day's final numbers the API reports, in (0, 1] (default: 0.5)",
    )
    faults.add_argument(
        "--fail",
        type=_failures,
        action="append",
        default=[],
        metavar="WHAT[xN]",
        help="the next N requests (default 1) fail: WHAT is an HTTP status (e.g. 500, 503, 429 without "
        "Retry-After) or 'drop' (the connection closes without an answer); repeat to queue more, in order",
    )
    faults.add_argument(
        "--new-service",
        action="store_true",
        help="the demo key's service is brand new: zeroed totals and an empty daily list",
    )
    return parser


def _positive_int(value: str) -> int:
    number = int(value)
    if number < 1:
        raise argparse.ArgumentTypeError(f"must be 1 or more, got {value!r}")
    return number


def _failures(spec: str) -> list[Fault]:
    """``503``, ``503x3``, ``drop``, ``dropx2``: that many faults of that kind."""
    what, _, count = spec.lower().partition("x")
    try:
        times = _positive_int(count) if count else 1
        if what == "drop":
            return [Fault(drop=True)] * times
        status = int(what)
    except ValueError:
        raise argparse.ArgumentTypeError(f"expected STATUS[xN] or drop[xN], got {spec!r}") from None
    if not 400 <= status <= 599:
        raise argparse.ArgumentTypeError(f"expected an HTTP error status (400-599), got {status}")
    return [Fault(status=status)] * times


def main(argv: Sequence[str] | None = None) -> int:
    """
    Start the emulator, print how to reach it, and serve until Ctrl-C or SIGTERM.

    :param argv: the command-line arguments (default: ``sys.argv[1:]``).
    """
    parser = _parser()
    args = parser.parse_args(argv)
    retry_after: RetryAfterStyle | None = None if args.retry_after == "none" else args.retry_after
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    try:
        emulator = ZenDriveEmulator(
            args.host,
            args.port,
            today=args.today,
            rate_limit=args.rate_limit,
            burst=args.burst,
            retry_after=retry_after,
            late_days=args.late_days,
            late_fraction=args.late_fraction,
        )
    except ValueError as exc:  # a rate limit, late-days or fraction out of range
        parser.error(str(exc))
    with emulator:
        if args.new_service:
            emulator.add_account(DEMO_ACCESS_KEY, DEMO_SECRET_KEY, DEMO_SERVICE_ID, new=True)
        if args.suspended or args.suspended_for:
            emulator.suspend(DEMO_ACCESS_KEY, requests=args.suspended_for)
        emulator.inject(*(fault for faults in args.fail for fault in faults))
        print(f"ZenDRIVE usage-stats emulator: {emulator.url}")
        print(f"CA bundle: {emulator.ca_path}")
        print(f"Plain HTTP (always 400 'HTTPS is required'): {emulator.http_url}")
        print(f"Demo account: access key {DEMO_ACCESS_KEY}, service id {DEMO_SERVICE_ID}")
        for line in _fault_lines(args):
            print(f"Fault: {line}")
        print()
        print(f"export AIRFLOW_CONN_ZENDRIVE_DEFAULT='{emulator.connection_uri()}'")
        print()
        print("Serving; press Ctrl-C to stop.", flush=True)
        try:
            while not stop.wait(0.5):
                pass
        except KeyboardInterrupt:
            pass
    print("Stopped.", flush=True)
    return 0


def _fault_lines(args: argparse.Namespace) -> list[str]:
    """What the options switched on, one line each, as the emulator will behave."""
    lines = []
    if args.suspended:
        lines.append("the demo service is suspended (403 'Service is not active')")
    if args.suspended_for:
        lines.append(f"403 'Service is not active' for the demo key's next {args.suspended_for} request(s)")
    if args.rate_limit is not None:
        lines.append(f"{args.rate_limit:g} request(s)/s per key, burst {args.burst}, then 429")
    if args.late_days:
        lines.append(
            f"the last {args.late_days} day(s) and today report {args.late_fraction:g} of their numbers"
        )
    for faults in args.fail:
        fault = faults[0]
        lines.append(f"{len(faults)} x {'dropped connection' if fault.drop else fault.status}, in order")
    if args.new_service:
        lines.append("the demo service is brand new (zero totals, no daily rows)")
    return lines


if __name__ == "__main__":
    sys.exit(main())
