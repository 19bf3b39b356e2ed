"""Files on a study's storage, local or a URI (abfss://, s3://, gs://, file://), via `pyarrow.fs`.

Ray resolves `storage_path` with `pyarrow.fs.FileSystem.from_uri`, so greentune does the same for
everything it writes beside Tune's state: small files are written atomically (a temporary name,
then a move), folders are uploaded whole.

    >>> write_text("abfss://results@acct.dfs.core.windows.net/studies/s1/x.json", "{}")
    >>> read_text("/tmp/studies/s1/x.json")
"""

from __future__ import annotations

import os
import uuid
from pathlib import Path
from typing import Any


def is_uri(location: str) -> bool:
    return "://" in location


def filesystem(location: str) -> tuple[Any, str]:
    """(pyarrow filesystem, path inside it) for a local path or a URI."""
    import pyarrow.fs

    if is_uri(location):
        return pyarrow.fs.FileSystem.from_uri(location)
    return pyarrow.fs.LocalFileSystem(), str(Path(location).expanduser().resolve())


def join(location: str, *parts: str) -> str:
    return "/".join([location.rstrip("/"), *parts])


def write_text(location: str, text: str) -> None:
    """Write `text` to `location` atomically: a reader sees the old file or the new, never half."""
    fs, path = filesystem(location)
    parent = path.rsplit("/", 1)[0]
    fs.create_dir(parent, recursive=True)
    tmp = f"{parent}/.{path.rsplit('/', 1)[1]}.tmp-{uuid.uuid4().hex[:8]}"
    with fs.open_output_stream(tmp) as out:
        out.write(text.encode("utf-8"))
    fs.move(tmp, path)


def read_text(location: str) -> str | None:
    """The file's text, or None where it does not exist."""
    import pyarrow.fs

    fs, path = filesystem(location)
    if fs.get_file_info(path).type != pyarrow.fs.FileType.File:
        return None
    with fs.open_input_stream(path) as f:
        return f.read().decode("utf-8")


def upload_dir(local_dir: Path, location: str) -> None:
    """Copy a local folder to `location` (created; a local destination is filled, then renamed,
    so a half-copied folder never appears under its final name)."""
    import pyarrow.fs

    fs, path = filesystem(location)
    parent = path.rsplit("/", 1)[0]
    fs.create_dir(parent, recursive=True)
    if isinstance(fs, pyarrow.fs.LocalFileSystem):
        import shutil

        tmp = f"{path}.tmp-{uuid.uuid4().hex[:8]}"
        shutil.copytree(local_dir, tmp)
        os.replace(tmp, path)
        return
    pyarrow.fs.copy_files(
        str(local_dir),
        path,
        source_filesystem=pyarrow.fs.LocalFileSystem(),
        destination_filesystem=fs,
    )
