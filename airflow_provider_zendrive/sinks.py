"""
Writing an output file atomically, on the local disk or on any object storage Airflow knows.

* A local path (or ``file://`` URI) is written to a temporary file in the same folder, flushed to disk and
  renamed over the final path, so a reader sees the old file or the new one, never half of one.
* Any other URI goes through :class:`airflow.sdk.ObjectStoragePath` (``s3://``, ``gs://``, ``abfs://``, ...,
  with ``output_conn_id``) as a single ``put`` of the whole content: object stores publish an object only when
  its upload completes.

Parent folders are created. ``fsspec`` / ``upath`` are imported only when a non-local URI is written.
"""

from __future__ import annotations

import contextlib
import os
import tempfile
import urllib.parse
from pathlib import Path

__all__ = ["is_local", "output_uri", "write_atomically"]


def is_local(output_path: str) -> bool:
    """Tell whether ``output_path`` is a local path or a ``file://`` URI."""
    scheme = urllib.parse.urlsplit(output_path).scheme
    # A one-letter scheme is a Windows drive ("C:\\...").
    return scheme in ("", "file") or len(scheme) == 1


def _local_path(output_path: str) -> Path:
    if output_path.startswith("file://"):
        parts = urllib.parse.urlsplit(output_path)
        return Path(urllib.parse.unquote(parts.path)).expanduser().absolute()
    return Path(output_path).expanduser().absolute()


def output_uri(output_path: str) -> str:
    """
    The URI of the file written for ``output_path``: ``file:///abs/path`` for a local path, else as given.

    This is also the URI of the Asset the operator declares as its outlet.
    """
    if is_local(output_path):
        return _local_path(output_path).as_uri()
    return output_path


def write_atomically(output_path: str, data: bytes, *, conn_id: str | None = None) -> str:
    """
    Write ``data`` to ``output_path`` so that a failure never leaves a partial file there.

    :param output_path: a local path, a ``file://`` URI, or any URI ObjectStoragePath understands.
    :param data: the whole content.
    :param conn_id: the Airflow connection for object storage (ignored for local paths).
    :return: the URI written (see :func:`output_uri`).
    """
    if is_local(output_path):
        path = _local_path(output_path)
        _write_local(path, data)
        return path.as_uri()
    from airflow.sdk import ObjectStoragePath

    target = ObjectStoragePath(output_path, conn_id=conn_id)
    with contextlib.suppress(FileExistsError, NotImplementedError):
        target.parent.mkdir(parents=True, exist_ok=True)
    # One put of the whole content: nothing is visible at the final key until it completes.
    target.fs.pipe_file(target.path, data)
    return output_path


def _write_local(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    fd, temp_name = tempfile.mkstemp(prefix=f".{path.name}.", suffix=".tmp", dir=path.parent)
    try:
        with os.fdopen(fd, "wb") as handle:
            handle.write(data)
            handle.flush()
            os.fsync(handle.fileno())
        # mkstemp creates the file 0600: keep the mode of the file being replaced, else use 0644.
        try:
            mode = path.stat().st_mode & 0o7777
        except FileNotFoundError:
            mode = 0o644
        os.chmod(temp_name, mode)
        os.replace(temp_name, path)
    except BaseException:
        with contextlib.suppress(OSError):
            os.unlink(temp_name)
        raise
    with contextlib.suppress(OSError):  # make the rename itself durable where the platform allows it
        dir_fd = os.open(path.parent, os.O_RDONLY)
        try:
            os.fsync(dir_fd)
        finally:
            os.close(dir_fd)
