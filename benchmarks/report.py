"""The benchmark's table: medians per scenario and server, ratios ours/git, CPU and RSS.

Rules: every figure is the median over runs of one scenario on one server; the ratio is
ours / git of those medians (lower is better; the issue's target is shown beside it).
Peak RSS is the server tree's sampled peak during the timed part, and for ours also the
growth above the RSS just before it.
"""

from __future__ import annotations

import statistics
from dataclasses import dataclass
from typing import Any

MIB = 1 << 20


@dataclass
class Row:
    size: str
    scenario: str
    goal: float | None
    samples: dict[str, list[Any]]  # target label -> [scenarios.Sample]

    def median(self, label: str, attr: str) -> float | None:
        got = self.samples.get(label)
        if not got:
            return None
        return float(statistics.median(getattr(s, attr) for s in got))

    def growth(self, label: str) -> float | None:
        got = self.samples.get(label)
        if not got:
            return None
        return float(statistics.median(s.rss - s.rss_before for s in got))

    def ratio(self, attr: str) -> float | None:
        ours, ref = self.median("ours", attr), self.median("git", attr)
        if ours is None or not ref:
            return None
        return ours / ref

    def progress_line(self) -> str:
        parts = [f"[{self.size}] {self.scenario}:"]
        for label in self.samples:
            values = ", ".join(f"{s.value:.3f}" for s in self.samples[label])
            parts.append(f"{label} [{values}] s")
        ratio = self.ratio("value")
        if ratio is not None:
            parts.append(f"ratio {ratio:.2f}")
        return " ".join(parts)

    def after_line(self) -> str:
        """The asynchronous work after each push (``Sample.after_wall``/``after_cpu``)."""
        parts = [f"[{self.size}] {self.scenario}, until the server is quiet after it:"]
        for label, got in self.samples.items():
            values = ", ".join(f"{s.after_wall:.1f} s/{s.after_cpu:.1f} CPU s" for s in got)
            parts.append(f"{label} [{values}]")
        return " ".join(parts)

    def as_dict(self) -> dict[str, Any]:
        return {
            "size": self.size,
            "scenario": self.scenario,
            "goal": self.goal,
            "samples": {k: [vars(s) for s in v] for k, v in self.samples.items()},
            "ratio": self.ratio("value"),
            "cpu_ratio": self.ratio("cpu"),
        }


def _f(value: float | None, fmt: str) -> str:
    return "-" if value is None else format(value, fmt)


def _mib(value: float | None) -> str:
    return "-" if value is None else f"{value / MIB:.0f}"


def print_table(rows: list[Row], extra: dict[str, Any]) -> None:
    """The markdown table of ``rows``, then the actor figures in ``extra``."""
    print(
        "| repo | scenario | git s | ours s | ratio | target | git CPU s | ours CPU s | CPU ratio "
        "| git peak RSS MiB | ours peak RSS MiB (+growth) |"
    )
    print("|---|---|---:|---:|---:|---:|---:|---:|---:|---:|---:|")
    for row in rows:
        ratio = row.ratio("value")
        flag = ""
        if ratio is not None and row.goal is not None:
            flag = " ok" if ratio <= row.goal else " MISS"
        print(
            f"| {row.size} | {row.scenario} | {_f(row.median('git', 'value'), '.3f')} "
            f"| {_f(row.median('ours', 'value'), '.3f')} | {_f(ratio, '.2f')}{flag} "
            f"| {_f(row.goal, '.2f')} | {_f(row.median('git', 'cpu'), '.2f')} "
            f"| {_f(row.median('ours', 'cpu'), '.2f')} | {_f(row.ratio('cpu'), '.2f')} "
            f"| {_mib(row.median('git', 'rss'))} | {_mib(row.median('ours', 'rss'))} "
            f"(+{_mib(row.growth('ours'))}) |"
        )
    print()
    for size, figures in extra.items():
        if size == "many_repos":
            continue
        if "wake_p50_ms" in figures:
            print(
                f"- {size}: actor wake from hibernation p50 {figures['wake_p50_ms']:.2f} ms "
                f"(target 2), p99 {figures['wake_p99_ms']:.2f} ms (target 20)"
            )
        idle = {k: v for k, v in figures.items() if k.endswith("_idle_rss")}
        if idle:
            print(
                f"- {size}: server RSS after loading the repo: "
                + ", ".join(f"{k.removesuffix('_idle_rss')} {v / MIB:.0f} MiB" for k, v in idle.items())
            )
    many = extra.get("many_repos")
    if many:
        print(
            f"- {many['repos']} repos with {many['active']} active: server RSS idle "
            f"{many['idle_rss'] / MIB:.0f} MiB, with the active ones resident {many['active_rss'] / MIB:.0f} MiB, "
            f"peak {many['peak_rss'] / MIB:.0f} MiB (target 300)"
        )
