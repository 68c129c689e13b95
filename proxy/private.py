"""Files only their owner may read: the database holds every API key and secret, the TLS
folder the local CA's key.

SQLite creates its database with 0644 minus the umask, and gives the `-wal` and `-shm`
files the database's own mode. So the database is created empty and owner-only before
SQLite opens it. Every folder the sidecar makes for its data (the storage folder and its
missing parents, `tls/`) is made by `make_private_dir`, 0700 whatever the umask, whoever
comes first (the database, the TLS listener, `python -m proxy ca`). Folders and files that
already exist are left as they are: a folder the user made is the user's choice.
"""

from __future__ import annotations

import os
from pathlib import Path


def make_private_dir(path: str | Path) -> None:
    """Create `path` and its missing parents, each 0700; existing ones are left alone."""
    p = Path(path)
    missing = [d for d in (p, *p.parents) if not d.exists()]
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            continue  # made meanwhile by another process: theirs
        os.chmod(d, 0o700)  # mkdir's mode is reduced by the umask


def make_private_file(path: str | Path) -> None:
    """Create `path` (and its missing folders, 0700) as an empty 0600 file, unless it
    exists."""
    p = Path(path)
    make_private_dir(p.parent)
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
