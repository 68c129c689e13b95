"""Files only their owner may read: the database holds every API key and secret.

SQLite creates its database with 0644 minus the umask, and gives the `-wal` and `-shm`
files the database's own mode. So the database is created empty and owner-only before
SQLite opens it, and the folders made for it are 0700; whatever the umask, the mode is
set explicitly. Folders and files that already exist are left as they are.
"""

from __future__ import annotations

import os
from pathlib import Path


def make_private_file(path: str | Path) -> None:
    """Create `path` (and its missing folders, 0700) as an empty 0600 file, unless it
    exists."""
    p = Path(path)
    missing = [d for d in (p.parent, *p.parent.parents) if not d.exists()]
    for d in reversed(missing):
        try:
            d.mkdir(mode=0o700)
        except FileExistsError:
            continue
        os.chmod(d, 0o700)  # mkdir's mode is reduced by the umask
    try:
        fd = os.open(p, os.O_WRONLY | os.O_CREAT | os.O_EXCL, 0o600)
    except FileExistsError:
        return
    try:
        os.fchmod(fd, 0o600)
    finally:
        os.close(fd)
