"""The study's `metadata.json`: resolved config, derived numbers, versions, commit, hardware."""

from __future__ import annotations

import json
import os
import platform
import subprocess
from importlib import metadata as importlib_metadata
from pathlib import Path
from typing import Any

from core import schema
from meter.energy import cpu_model_name

PACKAGES = (
    "ray",
    "torch",
    "transformers",
    "datasets",
    "tokenizers",
    "deepspeed",
    "codecarbon",
    "nvidia-ml-py",
    "rouge-score",
    "pandas",
    "pyarrow",
)


def package_versions() -> dict[str, str | None]:
    versions = {}
    for name in PACKAGES:
        try:
            versions[name] = importlib_metadata.version(name)
        except importlib_metadata.PackageNotFoundError:
            versions[name] = None
    return versions


REPO = Path(__file__).resolve().parents[1]


def git_commit(repo: Path = REPO) -> str | None:
    try:
        out = subprocess.run(
            ["git", "-C", str(repo), "rev-parse", "HEAD"],
            capture_output=True,
            text=True,
            timeout=5,
            check=True,
        )
        return out.stdout.strip() or None
    except (OSError, subprocess.SubprocessError):
        return None


def hardware() -> dict[str, Any]:
    import psutil

    info: dict[str, Any] = {
        "machine": platform.machine(),
        "processor": cpu_model_name(),
        "logical_cpus": os.cpu_count(),
        "memory_bytes": psutil.virtual_memory().total,
        "python": platform.python_version(),
        "platform": platform.platform(),
    }
    try:
        import torch

        if torch.cuda.is_available():
            info["gpus"] = [torch.cuda.get_device_name(i) for i in range(torch.cuda.device_count())]
    except ImportError:
        pass
    return info


def write_metadata(study_dir: Path, metadata: dict[str, Any]) -> None:
    """Write metadata.json atomically (adds versions, commit and hardware on first write)."""
    study_dir.mkdir(parents=True, exist_ok=True)
    metadata.setdefault("versions", package_versions())
    metadata.setdefault("git_commit", git_commit())
    metadata.setdefault("hardware", hardware())
    path = study_dir / schema.METADATA_FILE
    tmp = path.with_name(f".{path.name}.tmp")
    tmp.write_text(json.dumps(metadata, indent=2, default=str))
    os.replace(tmp, path)


def read_metadata(study_dir: Path) -> dict[str, Any]:
    return json.loads((study_dir / schema.METADATA_FILE).read_text())
