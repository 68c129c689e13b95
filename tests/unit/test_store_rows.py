"""Multi-row statements write exactly what executemany would (store._row_statements)."""

from __future__ import annotations

import sqlite3

import pytest

from proxy.store import _row_statements

_UPSERT = (
    "INSERT INTO t (k, v, w) VALUES (?, ?, ?) "
    "ON CONFLICT(k) DO UPDATE SET v=excluded.v, w=excluded.w"
)


def _table() -> sqlite3.Connection:
    c = sqlite3.connect(":memory:")
    c.execute("CREATE TABLE t (k INTEGER PRIMARY KEY, v TEXT, w TEXT)")
    c.executemany("INSERT INTO t VALUES (?, ?, ?)", [(k, "old", None) for k in range(0, 600, 7)])
    return c


@pytest.mark.parametrize("n", [1, 2, 3, 7, 16, 24, 31, 255, 256, 257, 600])
def test_same_rows_as_executemany(n: int) -> None:
    rows = [(k, f"v{k}", None if k % 3 else f"w{k}") for k in range(n)]
    ref, new = _table(), _table()
    ref.executemany(_UPSERT, rows)
    statements: list = []
    _row_statements(statements, _UPSERT, rows, 250_000)
    for sql, params in statements:
        new.execute(sql, params)
    dump = "SELECT k, v, w FROM t ORDER BY k"
    assert new.execute(dump).fetchall() == ref.execute(dump).fetchall()
    # one statement per power of two in n (chunks of at most 256 rows)
    assert len(statements) == sum(bin(c).count("1") for c in [256] * (n // 256) + [n % 256])


def test_chunks_respect_the_bound_variable_limit() -> None:
    rows = [(k, "v", "w") for k in range(100)]
    statements: list = []
    _row_statements(statements, _UPSERT, rows, 999 // 10)  # at most 33 rows of 3 variables
    assert max(len(p) for _, p in statements) <= 99
    assert sum(len(p) for _, p in statements) == 300
