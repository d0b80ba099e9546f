"""The suite's table, its verdicts against the goals of issue 16, and its plots (matplotlib, bench-only)."""

from __future__ import annotations

import json
import math
import statistics
import sys
from collections.abc import Sequence
from dataclasses import dataclass
from pathlib import Path
from typing import Protocol

SHIPPED, BARE, RAW, JAVA, FLOOR = "sidecar shipped", "sidecar bare", "raw aiokafka", "Kafka perf tool", "HTTP floor"
STRIMZI = "Strimzi bridge"
PATHS = ("produce100", "produce1", "active-binary", "active-json", "reactive")
GOALS = {
    "produce100 rate": ">= 0.8x raw aiokafka records/s (shipped chain)",
    "produce100 cpu": "<= 1.3x raw aiokafka CPU per record (shipped chain)",
    "produce1 p99": "<= raw aiokafka p99 + 2 ms (shipped chain)",
    "strimzi": ">= 2x the Strimzi bridge's records/s (produce 100, active binary and json; shipped chain)",
    "active rate": ">= 0.5x raw aiokafka read rate (binary and json)",
    "reactive rate": ">= 0.5x raw aiokafka read rate (shipped chain)",
    "chain overhead": "shipped <= 1.15x bare CPU per record on every path",
    "idle rss": "<= 80 MB",
    "audit": "zero audit drops",
    "consumer limit": "measured: fetch (raw aiokafka) + HTTP floor CPU per record bound a one-core sidecar's rate",
}


class RowLike(Protocol):
    scenario: str
    system: str
    records: int
    p50_ms: float
    p99_ms: float
    errors: int
    rss_mb: float
    peak_rss_mb: float
    note: str

    @property
    def rate(self) -> float: ...

    @property
    def cpu_us_per_record(self) -> float: ...


def _fmt(value: float, spec: str) -> str:
    return "—" if math.isnan(value) else format(value, spec)


def table(rows: Sequence[RowLike]) -> str:
    lines = [
        "| scenario | system | records/s | CPU µs/record | p50 ms | p99 ms | RSS MB | peak RSS MB | errors | note |",
        "|---|---|---:|---:|---:|---:|---:|---:|---:|---|",
    ]
    for r in rows:
        lines.append(
            f"| {r.scenario} | {r.system} | {_fmt(r.rate, ',.0f')} | {_fmt(r.cpu_us_per_record, '.1f')} "
            f"| {_fmt(r.p50_ms, '.2f')} | {_fmt(r.p99_ms, '.2f')} | {_fmt(r.rss_mb, '.1f')} "
            f"| {_fmt(r.peak_rss_mb, '.1f')} | {r.errors} | {r.note} |"
        )
    return "\n".join(lines)


def _find(rows: Sequence[RowLike], scenario: str, system: str) -> RowLike | None:
    return next((r for r in rows if r.scenario == scenario and r.system == system), None)


def _verdict(name: str, ok: bool | None, text: str) -> str:
    mark = "n/a " if ok is None else ("MET " if ok else "MISS")
    return f"{mark} {name}: {text}  (goal {GOALS[name]})"


def check_goals(rows: Sequence[RowLike]) -> list[str]:
    """One line per goal: MET / MISS / n/a with the measured ratio."""
    out = []

    def ratio(scenario: str, a: str, b: str, cpu: bool = False) -> float:
        x, y = _find(rows, scenario, a), _find(rows, scenario, b)
        if x is None or y is None:
            return math.nan
        num, den = (x.cpu_us_per_record, y.cpu_us_per_record) if cpu else (x.rate, y.rate)
        return num / den if den and not math.isnan(den) else math.nan

    def line(name: str, value: float, ok: bool, text: str) -> None:
        out.append(_verdict(name, None if math.isnan(value) else ok, text))

    r = ratio("produce100", SHIPPED, RAW)
    line("produce100 rate", r, r >= 0.8, f"{r:.2f}x")
    r = ratio("produce100", SHIPPED, RAW, cpu=True)
    line("produce100 cpu", r, r <= 1.3, f"{r:.2f}x")
    shipped, raw = _find(rows, "produce1", SHIPPED), _find(rows, "produce1", RAW)
    d = shipped.p99_ms - raw.p99_ms if shipped and raw else math.nan
    line("produce1 p99", d, d <= 2.0, f"{d:+.2f} ms over raw")
    for fmt in ("binary", "json"):
        r = ratio(f"active-{fmt}", SHIPPED, RAW)
        line("active rate", r, r >= 0.5, f"{fmt} {r:.2f}x")
    r = ratio("reactive", SHIPPED, RAW)
    line("reactive rate", r, r >= 0.5, f"{r:.2f}x")
    for variant in [x.system for x in rows if x.scenario == "reactive" and x.system.startswith(f"{SHIPPED} (")]:
        r = ratio("reactive", variant, RAW)
        line("reactive rate", r, r >= 0.5, f"{variant} {r:.2f}x")
    for path in PATHS:
        r = ratio(path, SHIPPED, BARE, cpu=True)
        line("chain overhead", r, r <= 1.15, f"{path} {r:.2f}x")
    for path in ("produce100", "active-binary", "active-json"):  # the shipped config, then each engine variant
        variants = [x.system for x in rows if x.scenario == path and x.system.startswith(f"{SHIPPED} (")]
        for system in (SHIPPED, *variants):
            r, c = ratio(path, system, STRIMZI), ratio(path, STRIMZI, system, cpu=True)
            which = path if system == SHIPPED else f"{path} {system}"
            line("strimzi", r, r >= 2.0, f"{which} {r:.2f}x the records/s at {c:.2f}x less CPU per record")
    out.extend(consumer_limits(rows))
    for r_ in rows:
        if r_.scenario == "idle" and r_.system.startswith("sidecar"):
            line("idle rss", r_.rss_mb, r_.rss_mb <= 80, f"{r_.system} {r_.rss_mb:.1f} MB")
    for r_ in rows:
        if r_.system == SHIPPED and "audit" in r_.note:
            dropped = r_.note.split("dropped ", 1)[1].split(",", 1)[0]
            out.append(_verdict("audit", dropped == "0", f"{r_.scenario}: {r_.note}"))
    return out


def consumer_limits(rows: Sequence[RowLike]) -> list[str]:
    """Per consumer path: the best read rate a sidecar doing only aiokafka's fetch and the HTTP delivery of
    the same bodies could reach, as a share of raw aiokafka's, when both are CPU-bound on one core:
    ``fetch / (fetch + HTTP floor)`` CPU per record. Also what the shipped sidecar spends beyond both."""
    out = []
    for path in ("active-binary", "active-json", "reactive"):
        raw, floor, shipped = _find(rows, path, RAW), _find(rows, path, FLOOR), _find(rows, path, SHIPPED)
        if raw is None or floor is None:
            continue
        fetch, http = raw.cpu_us_per_record, floor.cpu_us_per_record
        ceiling = fetch / (fetch + http)
        rest = f"; the shipped sidecar spends {shipped.cpu_us_per_record - fetch - http:.1f} more" if shipped else ""
        text = (f"{path}: fetch {fetch:.1f} + HTTP floor {http:.1f} µs/record -> at most {ceiling:.2f}x raw's "
                f"read rate{rest} (read-rate goal 0.5x)")  # fmt: skip
        out.append(f"LIMIT consumer limit: {text}  ({GOALS['consumer limit']})")
    return out


@dataclass(frozen=True, slots=True)
class Bar:
    scenario: str
    system: str
    rate: float
    cpu_us_per_record: float


def plot(rows: Sequence[RowLike | Bar], out: Path) -> list[Path]:
    """Per scenario: records/s and CPU µs per record of each system, as horizontal bar charts."""
    import matplotlib

    matplotlib.use("Agg")
    import matplotlib.pyplot as plt

    written: list[Path] = []
    scenarios = [p for p in PATHS if any(r.scenario == p for r in rows)]
    if not scenarios:
        return written
    for metric, label, name in (
        ("rate", "records/s (busy machine: indicative only)", "rate"),
        ("cpu_us_per_record", "CPU µs per record (lower is better)", "cpu"),
    ):
        found = {scenario: [r for r in rows if r.scenario == scenario] for scenario in scenarios}
        heights = [max(1.2, 0.32 * len(found[s]) + 0.6) for s in scenarios]
        fig, axes = plt.subplots(len(scenarios), 1, figsize=(8, sum(heights)), gridspec_kw={"height_ratios": heights})
        for ax, scenario in zip(axes if len(scenarios) > 1 else [axes], scenarios, strict=True):
            group = found[scenario]
            values = [getattr(r, metric) for r in group]
            ax.barh(range(len(group)), [0 if math.isnan(v) else v for v in values], color="#4472c4")
            ax.set_yticks(range(len(group)), [r.system for r in group], fontsize=7)
            ax.invert_yaxis()
            ax.set_title(scenario, fontsize=9, loc="left")
            ax.tick_params(axis="x", labelsize=7)
            for index, value in enumerate(values):
                if not math.isnan(value):
                    ax.text(
                        value, index, f" {value:,.1f}" if value < 100 else f" {value:,.0f}", va="center", fontsize=6
                    )
        fig.supxlabel(label, fontsize=8)
        fig.tight_layout()
        path = out / f"suite-{name}.png"
        fig.savefig(path, dpi=90)
        plt.close(fig)
        written.append(path)
    return written


def main(argv: Sequence[str]) -> int:
    """``python bench/report.py RESULTS_DIR``: re-draw the plots of a run from its ``suite.json`` (medians)."""
    out = Path(argv[0])
    rows = json.loads((out / "suite.json").read_text(encoding="utf-8"))["rows"]
    groups: dict[tuple[str, str], list[dict[str, float]]] = {}
    for row in rows:
        groups.setdefault((row["scenario"], row["system"]), []).append(row)

    def median(group: list[dict[str, float]], key: str) -> float:
        values = [float(r[key]) for r in group if r[key] is not None and not math.isnan(float(r[key]))]
        return statistics.median(values) if values else math.nan

    bars = [Bar(sc, sy, median(g, "rate"), median(g, "cpu_us_per_record")) for (sc, sy), g in groups.items()]
    for path in plot(bars, out):
        print(f"plot: {path}")
    return 0


if __name__ == "__main__":
    raise SystemExit(main(sys.argv[1:]))
