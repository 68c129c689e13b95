"""Reliability tests: at the end of the session, the figures the tests recorded
(relsupport.record_figures) are merged into $MEXC_PAPER_FIGURES when it is set, e.g.
`MEXC_PAPER_FIGURES=/tmp/ci.json python -m pytest tests/reliability -p no:randomly`.
No test exists only to report: the figures are written here, whatever ran."""

from __future__ import annotations

import os

import pytest
from relsupport import write_figures


def pytest_sessionfinish(session: pytest.Session, exitstatus: int) -> None:
    path = write_figures(os.environ.get("MEXC_PAPER_FIGURES"))
    if path is not None:
        print(f"\n[figures] written to {path}")
