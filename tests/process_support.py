"""Helpers for tests that run the sidecar as a real process (`python -m proxy`)."""

from __future__ import annotations

import json
import socket
import subprocess
import time
import urllib.request
from typing import Any


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


def wait_healthy(port: int, proc: subprocess.Popen[Any], timeout: float = 15) -> dict:
    """Poll /healthz with a deadline (another process gives no readiness event to await)."""
    deadline = time.monotonic() + timeout
    while time.monotonic() < deadline:
        if proc.poll() is not None:
            raise AssertionError(f"mexc-paper exited early: {proc.communicate()}")
        try:
            with urllib.request.urlopen(f"http://127.0.0.1:{port}/healthz", timeout=1) as r:
                return json.loads(r.read())
        except OSError:
            time.sleep(0.05)
    raise AssertionError("mexc-paper did not answer /healthz")
