"""
Writing an output file atomically, on the local disk or on any object storage Airflow knows.

* A local path (or ``file://`` URI) is written to a temporary file in the same folder, flushed to disk and
  renamed over the final path, so a reader sees the old file or the new one, never half of one. The writer
  holds an exclusive ``flock`` on its temporary file; a process killed before the rename (SIGKILL reaches no
  handler) leaves the file behind unlocked, and the next write of the same target removes every such
  leftover, never one that a live writer still holds.
* Any other URI goes through :class:`airflow.sdk.ObjectStoragePath` (``s3://``, ``gs://``, ``abfs://``, ...,
  with ``output_conn_id``) as a single ``put`` of the whole content: object stores publish an object only when
  its upload completes.

Every write is read back and compared before the task goes on, so a task that hands the file's URI to the next
one has checked it first, and no later task needs to open a file another machine wrote. Parent folders are
created. ``fsspec`` / ``upath`` are imported only when a non-local URI is written.
"""

from __future__ import annotations

import contextlib
import fcntl
import glob
import os
import tempfile
import time
import urllib.parse
from pathlib import Path

from airflow_provider_zendrive.exceptions import ZenDriveInputError

__all__ = [
    "STALE_TEMP_SECONDS",
    "check_output_path",
    "is_local",
    "output_uri",
    "refuse_relative",
    "write_atomically",
]


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


def check_output_path(output_path: str, output_format: str, *, conn_id: str | None = None) -> None:
    """
    Refuse an output that cannot be written, before the API is called.

    A Parquet file needs pyarrow (the ``parquet`` extra). A local path must be absolute (a relative one would
    mean the DAG processor's folder in the outlet Asset and the worker's folder for the file); it must not be a
    folder nor lie below a file, and its nearest existing folder must be writable. Any other URI must name a
    filesystem that is installed.

    :param output_path: a local path, a ``file://`` URI, or any URI ObjectStoragePath understands.
    :param output_format: the format from :func:`~airflow_provider_zendrive._outputs.rows.resolve_format`.
    :param conn_id: the Airflow connection for object storage (ignored for local paths).
    :raises ZenDriveInputError: with what to fix.
    """
    if output_format == "parquet":
        from airflow_provider_zendrive._outputs.parquet import require_pyarrow

        require_pyarrow()
    if not is_local(output_path):
        from airflow.sdk import ObjectStoragePath

        try:
            ObjectStoragePath(output_path, conn_id=conn_id).fs  # noqa: B018 - resolving fs loads its package
        except Exception as exc:
            raise ZenDriveInputError(
                f"output_path={output_path!r} cannot be written: {type(exc).__name__}: {exc}. Install the "
                "provider of that store (e.g. apache-airflow-providers-amazon for s3://) and set output_conn_id."
            ) from None
        return
    refuse_relative(output_path)
    path = _local_path(output_path)
    if path.is_dir():
        raise ZenDriveInputError(f"output_path={output_path!r} is a folder; name the file to write.")
    folder = path.parent
    while not folder.exists():
        folder = folder.parent
    if not folder.is_dir():
        raise ZenDriveInputError(f"output_path={output_path!r} lies below {str(folder)!r}, which is a file.")
    if not os.access(folder, os.W_OK | os.X_OK):
        raise ZenDriveInputError(f"output_path={output_path!r}: the folder {str(folder)!r} is not writable.")


def refuse_relative(output_path: str) -> None:
    """
    Refuse a relative local path: it would resolve against the DAG processor's folder in the outlet Asset and
    against the worker's folder for the file.

    :raises ZenDriveInputError: for a relative local path.
    """
    if not is_local(output_path):
        return
    raw = urllib.parse.urlsplit(output_path).path if output_path.startswith("file://") else output_path
    if not Path(raw).expanduser().is_absolute():
        raise ZenDriveInputError(
            f"output_path={output_path!r} is relative: it would resolve against a different folder when the DAG "
            "is parsed and when the task runs. Use an absolute path or a URI."
        )


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
    :raises OSError: when the file cannot be written, or reads back different from ``data``.
    """
    if is_local(output_path):
        path = _local_path(output_path)
        _write_local(path, data)
        _check_read_back(path.as_uri(), path.read_bytes(), data)
        return path.as_uri()
    from airflow.sdk import ObjectStoragePath

    target = ObjectStoragePath(output_path, conn_id=conn_id)
    with contextlib.suppress(FileExistsError, NotImplementedError):
        target.parent.mkdir(parents=True, exist_ok=True)
    # One put of the whole content: nothing is visible at the final key until it completes.
    target.fs.pipe_file(target.path, data)
    _check_read_back(output_path, target.fs.cat_file(target.path), data)
    return output_path


def _check_read_back(uri: str, found: bytes, data: bytes) -> None:
    if found != data:
        raise OSError(
            f"{uri} reads back {len(found):,} bytes that differ from the {len(data):,} written: another writer, "
            "or a store that does not keep what it acknowledged. The task's retry writes it again."
        )


#: A temporary file younger than this is never swept, even unlocked: its writer may not have locked it yet.
STALE_TEMP_SECONDS = 10.0


def _temp_prefix(path: Path) -> str:
    return f".{path.name}."


def _sweep_stale_temp_files(path: Path) -> list[Path]:
    """
    Remove the temporary files that killed writers of ``path`` left in its folder (see the module docstring).

    A leftover is a ``.<name>.*.tmp`` file older than :data:`STALE_TEMP_SECONDS` whose ``flock`` can be taken:
    its writer is gone (the kernel drops a process's locks when it dies). One that a live writer holds is kept.

    :return: the files removed.
    """
    removed = []
    for candidate in path.parent.glob(f"{glob.escape(_temp_prefix(path))}*.tmp"):
        try:
            fd = os.open(candidate, os.O_RDONLY | os.O_NOFOLLOW)
        except OSError:
            continue
        try:
            if time.time() - os.fstat(fd).st_mtime < STALE_TEMP_SECONDS:
                continue
            try:
                fcntl.flock(fd, fcntl.LOCK_EX | fcntl.LOCK_NB)
            except BlockingIOError:
                continue  # a live writer
            with contextlib.suppress(FileNotFoundError):
                candidate.unlink()
                removed.append(candidate)
        finally:
            os.close(fd)
    return removed


def _write_local(path: Path, data: bytes) -> None:
    path.parent.mkdir(parents=True, exist_ok=True)
    _sweep_stale_temp_files(path)
    fd, temp_name = tempfile.mkstemp(prefix=_temp_prefix(path), suffix=".tmp", dir=path.parent)
    try:
        fcntl.flock(fd, fcntl.LOCK_EX)  # held until the file is renamed and closed
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
