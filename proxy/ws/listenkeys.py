"""listenKeys as MEXC hands them out (`/api/v3/userDataStream`, reference 7.19).

A key is 64 hex characters (256 bits) from `secrets`: nothing about it can be derived
from an account id or an API key, and it is the only credential a `/ws?listenKey=`
connection carries. It is valid for 60 minutes after its creation or its last keep-alive
(PUT); DELETE ends it (and the connections opened with it). At most 60 valid keys per
account. Keys are written to SQLite before they are answered, so a bot keeps its key
across a restart of the sidecar, as it would across a MEXC blip.

A key never appears whole in a log line: `mask()` shows its first and last 4 characters.
"""

from __future__ import annotations

import secrets
from collections.abc import Callable
from dataclasses import dataclass

from ..clock import Clock
from ..errors import ApiError, Err
from ..store import Store

TTL_MS = 60 * 60 * 1000  # valid 60 minutes after creation or keep-alive
MAX_KEYS_PER_ACCOUNT = 60


def new_key() -> str:
    """256 random bits as 64 lower-case hex characters, the shape of MEXC's samples."""
    return secrets.token_hex(32)


def mask(key: str) -> str:
    """What may be logged of a key (or of anything a client sent as one)."""
    if len(key) <= 12:
        return "***"
    return f"{key[:4]}...{key[-4:]}"


@dataclass(slots=True)
class ListenKey:
    key: str
    account_id: int
    created_ms: int
    expires_ms: int


class ListenKeys:
    """The valid keys, in memory and on disk. `on_end(key, why)` is called when a key is
    deleted or found expired (`why`: "deleted" or "expired"), so the streams opened
    with it can be closed."""

    def __init__(self, store: Store, clock: Clock, ttl_ms: int = TTL_MS,
                 per_account: int = MAX_KEYS_PER_ACCOUNT) -> None:
        self.store = store
        self.clock = clock
        self.ttl_ms = ttl_ms
        self.per_account = per_account
        self._keys: dict[str, ListenKey] = {}
        self.on_end: Callable[[str, str], None] | None = None

    async def load(self) -> None:
        """Read the stored keys; expired ones are dropped (and deleted from the disk)."""
        now = self.clock.now_ms()
        expired = []
        for key, account_id, created, expires in await self.store.listen_keys():
            if expires > now:
                self._keys[key] = ListenKey(key, account_id, created, expires)
            else:
                expired.append(key)
        await self.store.delete_listen_keys(expired)

    # ------------------------------------------------------------------ reads
    def account_of(self, key: str) -> int | None:
        """The account a valid key belongs to; None for an unknown or expired key."""
        entry = self._keys.get(key)
        if entry is None or entry.expires_ms <= self.clock.now_ms():
            return None
        return entry.account_id

    def get(self, key: str) -> ListenKey | None:
        entry = self._keys.get(key)
        if entry is None or entry.expires_ms <= self.clock.now_ms():
            return None
        return entry

    def valid(self, account_id: int) -> list[str]:
        """The account's valid keys, oldest first (GET /api/v3/userDataStream)."""
        now = self.clock.now_ms()
        return [
            e.key for e in self._keys.values() if e.account_id == account_id and e.expires_ms > now
        ]

    def __len__(self) -> int:
        return len(self._keys)

    # ------------------------------------------------------------------ changes
    async def create(self, account_id: int) -> str:
        await self.expire()
        if len(self.valid(account_id)) >= self.per_account:
            raise ApiError(Err.LISTEN_KEY_LIMIT, limit=str(self.per_account))
        now = self.clock.now_ms()
        entry = ListenKey(new_key(), account_id, now, now + self.ttl_ms)
        # in memory first, so two concurrent creations cannot both take the 60th place;
        # answered only once it is on disk
        self._keys[entry.key] = entry
        try:
            await self.store.put_listen_key(entry.key, account_id, entry.created_ms, entry.expires_ms)
        except BaseException:
            self._keys.pop(entry.key, None)
            raise
        return entry.key

    def _own(self, account_id: int, key: str) -> ListenKey:
        entry = self.get(key)
        if entry is None or entry.account_id != account_id:
            raise ApiError(Err.LISTEN_KEY_INVALID)
        return entry

    async def extend(self, account_id: int, key: str) -> str:
        """Valid for another 60 minutes from now (PUT)."""
        entry = self._own(account_id, key)
        expires = self.clock.now_ms() + self.ttl_ms
        await self.store.extend_listen_key(key, expires)
        entry.expires_ms = max(entry.expires_ms, expires)
        return key

    async def delete(self, account_id: int, key: str) -> str:
        """End the key and every stream opened with it (DELETE)."""
        self._own(account_id, key)
        await self.store.delete_listen_keys([key])
        self._end(key, "deleted")
        return key

    async def expire(self) -> list[str]:
        """Forget the keys whose time is up; their streams are ended."""
        now = self.clock.now_ms()
        gone = [k for k, e in self._keys.items() if e.expires_ms <= now]
        if gone:
            for k in gone:
                self._end(k, "expired")
            await self.store.delete_listen_keys(gone)
        return gone

    def _end(self, key: str, why: str) -> None:
        if self._keys.pop(key, None) is not None and self.on_end is not None:
            self.on_end(key, why)
