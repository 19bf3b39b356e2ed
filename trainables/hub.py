"""Is the Hugging Face hub reachable? One fast probe before a hub name is loaded.

Without it an offline machine spends 25-55 s in the hub client's retries (printing each one)
before its error. The probe opens a TCP connection to the hub's host (`HF_ENDPOINT`, default
huggingface.co) with a short timeout, once per process; a name already in the local cache loads
offline instead.
"""

from __future__ import annotations

import functools
import os
import socket
from urllib.parse import urlparse

PROBE_TIMEOUT_S = 3.0


@functools.cache
def hub_reachable() -> bool:
    if os.environ.get("HF_HUB_OFFLINE", "").lower() in ("1", "true", "yes"):
        return False
    endpoint = urlparse(os.environ.get("HF_ENDPOINT", "https://huggingface.co"))
    host, port = (
        endpoint.hostname or "huggingface.co",
        endpoint.port or (443 if endpoint.scheme != "http" else 80),
    )
    try:
        socket.create_connection((host, port), timeout=PROBE_TIMEOUT_S).close()
        return True
    except OSError:
        return False


def cached(repo_id: str, filename: str, repo_type: str = "model") -> bool:
    """Whether `filename` of `repo_id` is in the local hub cache (usable offline)."""
    try:
        from huggingface_hub import try_to_load_from_cache
    except ImportError:
        return False
    found = try_to_load_from_cache(repo_id, filename, repo_type=repo_type)
    return isinstance(found, str)
