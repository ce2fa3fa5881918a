"""Every file write is read back and compared before the task goes on (the hand-off rule of issue 15)."""

from __future__ import annotations

from pathlib import Path

import pytest

from airflow_provider_zendrive._outputs.files import write_atomically


def test_a_local_write_is_read_back(tmp_path: Path) -> None:
    target = tmp_path / "sub" / "usage.csv"
    assert write_atomically(str(target), b"date\n2026-05-01\n") == target.as_uri()
    assert target.read_bytes() == b"date\n2026-05-01\n"


def test_a_local_write_that_reads_back_different_fails(
    tmp_path: Path, monkeypatch: pytest.MonkeyPatch
) -> None:
    target = tmp_path / "usage.csv"
    monkeypatch.setattr(Path, "read_bytes", lambda self: b"someone else's bytes")
    with pytest.raises(OSError, match="reads back 20 bytes that differ from the 5 written"):
        write_atomically(str(target), b"mine\n")


def test_an_object_storage_write_is_read_back(monkeypatch: pytest.MonkeyPatch) -> None:
    from airflow.sdk import ObjectStoragePath
    from airflow.sdk.io import attach
    from fsspec.implementations.memory import MemoryFileSystem

    attach(
        "memory", fs=MemoryFileSystem()
    )  # an object store in this process, as s3:// would be with its provider
    uri = "memory://zendrive-tests/reports/usage.csv"
    assert write_atomically(uri, b"a,b\n1,2\n") == uri
    assert ObjectStoragePath(uri).read_bytes() == b"a,b\n1,2\n"

    fs = ObjectStoragePath(uri).fs
    monkeypatch.setattr(type(fs), "cat_file", lambda self, path, **kwargs: b"")
    with pytest.raises(OSError, match="reads back 0 bytes"):
        write_atomically(uri, b"a,b\n1,2\n")
