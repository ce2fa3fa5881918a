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

from airflow_provider_zendrive.testing._data import DEMO_ACCESS_KEY, DEMO_SERVICE_ID
from airflow_provider_zendrive.testing.emulator import RetryAfterStyle, ZenDriveEmulator


def _parser() -> argparse.ArgumentParser:
    parser = argparse.ArgumentParser(
        prog="python -m airflow_provider_zendrive.testing",
        description="Serve an HTTPS emulator of the ZenDRIVE usage-statistics API.",
    )
    parser.add_argument("--host", default="127.0.0.1", help="address to listen on (default: %(default)s)")
    parser.add_argument("--port", type=int, default=0, help="HTTPS port; 0 picks a free one (default)")
    parser.add_argument("--rate-limit", type=float, default=None, metavar="R", help="per-key requests/second")
    parser.add_argument("--burst", type=int, default=1, metavar="B", help="rate-limit burst (default: 1)")
    parser.add_argument(
        "--retry-after",
        choices=("seconds", "http-date", "none"),
        default="seconds",
        help="Retry-After style of a rate-limited 429 (default: %(default)s)",
    )
    parser.add_argument(
        "--today", type=datetime.date.fromisoformat, default=None, metavar="YYYY-MM-DD", help="fixed 'today'"
    )
    parser.add_argument(
        "--late-days",
        type=int,
        default=0,
        metavar="N",
        help="late data: the last N days before today (and today) are only partly counted (default: 0)",
    )
    return parser


def main(argv: Sequence[str] | None = None) -> int:
    """
    Start the emulator, print how to reach it, and serve until Ctrl-C or SIGTERM.

    :param argv: the command-line arguments (default: ``sys.argv[1:]``).
    """
    args = _parser().parse_args(argv)
    retry_after: RetryAfterStyle | None = None if args.retry_after == "none" else args.retry_after
    stop = threading.Event()

    def on_signal(signum: int, frame: FrameType | None) -> None:
        stop.set()

    signal.signal(signal.SIGTERM, on_signal)
    emulator = ZenDriveEmulator(
        args.host,
        args.port,
        today=args.today,
        rate_limit=args.rate_limit,
        burst=args.burst,
        retry_after=retry_after,
        late_days=args.late_days,
    )
    with emulator:
        print(f"ZenDRIVE usage-stats emulator: {emulator.url}")
        print(f"CA bundle: {emulator.ca_path}")
        print(f"Plain HTTP (always 400 'HTTPS is required'): {emulator.http_url}")
        print(f"Demo account: access key {DEMO_ACCESS_KEY}, service id {DEMO_SERVICE_ID}")
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


if __name__ == "__main__":
    sys.exit(main())
