"""Figures over repeated runs, targets, and the markdown table."""

from __future__ import annotations

import math
import os
import platform
import statistics
import sys
from collections.abc import Callable
from dataclasses import dataclass, field


@dataclass
class Figure:
    """One figure: a value per repeated run, summarised as median [min, max]."""

    section: str
    name: str
    unit: str
    samples: list[float] = field(default_factory=list)
    # target: (text shown, predicate on the median)
    target: tuple[str, Callable[[float], bool]] | None = None
    note: str = ""

    def add(self, value: float) -> None:
        self.samples.append(value)

    @property
    def median(self) -> float:
        vals = [v for v in self.samples if not math.isnan(v)]
        return statistics.median(vals) if vals else float("nan")

    @property
    def met(self) -> bool | None:
        if self.target is None or not self.samples:
            return None
        return self.target[1](self.median)


def fmt(v: float, unit: str) -> str:
    if math.isnan(v):
        return "n/a"
    if unit in ("x",):
        return f"{v:.2f}"
    if unit == "%":
        return f"{v:.0f}"
    a = abs(v)
    if a >= 1000:
        return f"{v:,.0f}"
    if a >= 100:
        return f"{v:.0f}"
    if a >= 10:
        return f"{v:.1f}"
    if a >= 1:
        return f"{v:.2f}"
    return f"{v:.3f}"


class Report:
    def __init__(self) -> None:
        self.figures: dict[tuple[str, str], Figure] = {}
        self.notes: list[str] = []

    def fig(
        self,
        section: str,
        name: str,
        unit: str,
        target: tuple[str, Callable[[float], bool]] | None = None,
        note: str = "",
    ) -> Figure:
        key = (section, name)
        f = self.figures.get(key)
        if f is None:
            f = self.figures[key] = Figure(section, name, unit, target=target, note=note)
        return f

    def add(self, section: str, name: str, unit: str, value: float, **kw: object) -> None:
        self.fig(section, name, unit, **kw).add(value)  # type: ignore[arg-type]

    def table(self, with_targets: bool = True) -> str:
        head = "| benchmark | figure | median | min | max | unit | runs |"
        sep = "|---|---|---:|---:|---:|---|---:|"
        if with_targets:
            head += " target | met |"
            sep += "---|---|"
        lines = [head, sep]
        for f in self.figures.values():
            vals = [v for v in f.samples if not math.isnan(v)]
            lo = min(vals) if vals else float("nan")
            hi = max(vals) if vals else float("nan")
            row = (
                f"| {f.section} | {f.name} | **{fmt(f.median, f.unit)}** | {fmt(lo, f.unit)} | "
                f"{fmt(hi, f.unit)} | {f.unit} | {len(f.samples)} |"
            )
            if with_targets:
                met = f.met
                row += (
                    f" {f.target[0] if f.target else ''} | "
                    f"{'' if met is None else ('yes' if met else '**NO**')} |"
                )
            lines.append(row)
        return "\n".join(lines)

    def summary(self) -> tuple[int, list[Figure]]:
        with_target = [f for f in self.figures.values() if f.target is not None]
        missed = [f for f in with_target if f.met is False]
        return len(with_target), missed


def machine() -> dict[str, str]:
    cpu = platform.processor() or "?"
    try:
        with open("/proc/cpuinfo", encoding="utf-8") as fh:
            for line in fh:
                if line.startswith("model name"):
                    cpu = line.split(":", 1)[1].strip()
                    break
    except OSError:
        pass
    try:
        import uvloop

        loop = f"uvloop {uvloop.__version__}"
    except ImportError:
        loop = "asyncio (uvloop not installed)"
    import aiohttp

    return {
        "cores": str(os.cpu_count()),
        "cpu": cpu,
        "python": f"{platform.python_implementation()} {sys.version.split()[0]}",
        "os": f"{platform.system()} {platform.release()}",
        "aiohttp": aiohttp.__version__,
        "event loop": loop,
    }
