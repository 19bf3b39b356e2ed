"""Files on a study's storage, local or a URI (abfss://, s3://, gs://, file://), via `pyarrow.fs`.

Ray resolves `storage_path` with `pyarrow.fs.FileSystem.from_uri`, so greentune does the same for
everything it writes beside Tune's state: small files are written atomically (a temporary name,
then a move), folders are uploaded whole, and a URI study's result files are mirrored from the
head's folder to the URI (`Mirror`).

    >>> write_text("abfss://results@acct.dfs.core.windows.net/studies/s1/x.json", "{}")
    >>> read_text("/tmp/studies/s1/x.json")
"""

from __future__ import annotations

import os
import uuid
import warnings
from dataclasses import dataclass
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


def write_bytes(location: str, data: bytes) -> None:
    """Write `data` to `location` atomically: a reader sees the old file or the new, never half."""
    fs, path = filesystem(location)
    parent = path.rsplit("/", 1)[0]
    fs.create_dir(parent, recursive=True)
    tmp = f"{parent}/.{path.rsplit('/', 1)[1]}.tmp-{uuid.uuid4().hex[:8]}"
    try:
        with fs.open_output_stream(tmp) as out:
            out.write(data)
        fs.move(tmp, path)
    except BaseException:
        try:
            fs.delete_file(tmp)
        except OSError:
            pass
        raise


def read_bytes(location: str) -> bytes | None:
    """The file's bytes, or None where it does not exist."""
    import pyarrow.fs

    fs, path = filesystem(location)
    if fs.get_file_info(path).type != pyarrow.fs.FileType.File:
        return None
    with fs.open_input_stream(path) as f:
        return f.read()


def write_text(location: str, text: str) -> None:
    write_bytes(location, text.encode("utf-8"))


def read_text(location: str) -> str | None:
    """The file's text, or None where it does not exist."""
    data = read_bytes(location)
    return None if data is None else data.decode("utf-8")


@dataclass(frozen=True)
class Mirror:
    """A study's result files where the user will look: with a URI storage they are written in a
    folder on the head (`local_dir`) and copied to the study's folder on the URI (`remote_dir`)
    after every write, so `ray down` (which deletes the head) loses none of them. Without a URI,
    `remote_dir` is None and nothing is copied."""

    local_dir: Path
    remote_dir: str | None = None

    def push(self, *names: str) -> None:
        """Copy these files (names in the study folder) to the URI. A failed copy warns and
        leaves the URI's previous copy whole; the next write copies again."""
        if self.remote_dir is None:
            return
        for name in names:
            local = self.local_dir / name
            if not local.is_file():
                continue
            try:
                write_bytes(join(self.remote_dir, name), local.read_bytes())
            except OSError as e:
                warnings.warn(
                    f"could not copy {name} to {self.remote_dir} ({str(e)[:160]}); it is kept "
                    f"in {self.local_dir} and copied again at the next write",
                    RuntimeWarning,
                    stacklevel=2,
                )

    def pull(self, names: tuple[str, ...]) -> list[str]:
        """Download the files the head lacks (a resume on a new head): the names fetched."""
        if self.remote_dir is None:
            return []
        fetched = []
        for name in names:
            local = self.local_dir / name
            if local.exists():
                continue
            data = read_bytes(join(self.remote_dir, name))
            if data is not None:
                write_bytes(str(local), data)
                fetched.append(name)
        return fetched


def replace_dir(local_dir: Path, location: str) -> None:
    """Put a local folder at `location`, replacing what was there. Locally the new folder is
    filled beside it and swapped in by renames (a reader sees the old folder or the new); on a
    URI the old files are deleted, then the new ones copied."""
    import pyarrow.fs

    fs, path = filesystem(location)
    info = fs.get_file_info(path)
    if info.type == pyarrow.fs.FileType.NotFound:
        upload_dir(local_dir, location)
        return
    if isinstance(fs, pyarrow.fs.LocalFileSystem):
        import shutil

        tag = uuid.uuid4().hex[:8]
        new, old = f"{path}.tmp-{tag}", f"{path}.old-{tag}"
        shutil.copytree(local_dir, new)
        os.replace(path, old)
        os.replace(new, path)
        shutil.rmtree(old, ignore_errors=True)
        return
    fs.delete_dir(path)
    upload_dir(local_dir, location)


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
