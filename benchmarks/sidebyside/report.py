"""Medians, ratios and the targets of issue 6, printed as Markdown tables.

MB is 10^6 bytes everywhere (throughput and RSS). Ratios use medians from the same run
of the harness, so they compare contenders under the same machine load.
"""

from __future__ import annotations

from collections.abc import Callable

from sidebyside.contenders import FLOOR, MIRROR, NBTK, UTILS
from sidebyside.measure import Sample, median, spread
from sidebyside.suites import Outcome

MB = 1_000_000
Check = tuple[str, float, float, bool]  # label, value, target, met


def _med(samples: list[Sample], get: Callable[[Sample], float]) -> float:
    return median([get(s) for s in samples])


def _secs(outcome: Outcome, name: str) -> float:
    return _med(outcome.samples[name], lambda s: s.seconds)


def _ratio_cells(outcome: Outcome, name: str) -> list[str]:
    mine, cells = _secs(outcome, name), []
    for other, how in ((UTILS, "faster"), (FLOOR, "of floor")):
        if other not in outcome.samples or name == other:
            cells.append("-")
        elif how == "faster":
            cells.append(f"{_secs(outcome, other) / mine:.2f}x")
        else:
            cells.append(f"{mine / _secs(outcome, other):.2f}x")
    return cells


def num(x: float) -> str:
    """Three significant digits for small values, so a slow rate never prints as 0.0."""
    return f"{x:,.1f}" if x >= 10 else f"{x:.3g}"


def table(head: list[str], rows: list[list[str]]) -> str:
    lines = ["| " + " | ".join(head) + " |", "|" + "|".join("---" for _ in head) + "|"]
    return "\n".join(lines + ["| " + " | ".join(r) + " |" for r in rows])


def throughput_table(outcome: Outcome) -> str:
    """B1 and B3: wall time, MB/s, series/s, peak RSS and both ratios per contender."""
    head = ["contender", "wall s (median)", "spread", "CPU s", "MB/s", "series/s",
            "peak RSS MB", "requests", "tcia-utils time / this", "this / floor time"]
    rows = []
    for name, samples in outcome.samples.items():
        secs = _secs(outcome, name)
        rows.append([name, f"{secs:.2f}", f"{spread([s.seconds for s in samples]):.0%}",
                     f"{_med(samples, lambda s: s.cpu):.2f}", num(outcome.totals.bytes / MB / secs),
                     num(outcome.totals.series / secs),
                     f"{_med(samples, lambda s: s.peak_rss) / MB:.0f}",
                     f"{_med(samples, lambda s: s.extra['requests']):.0f}",
                     *_ratio_cells(outcome, name)])
    return table(head, rows)


def cpu_per_gb(outcome: Outcome, name: str) -> float:
    return _med(outcome.samples[name], lambda s: s.cpu) / (outcome.totals.bytes / 1e9)


def limit_lines(outcome: Outcome) -> str:
    """B1: CPU s per GB of every contender next to the verifying-mirror limit."""
    if outcome.limit is None:
        return ""
    lim = float(outcome.limit["cpu_s_per_gb"])
    per = ", ".join(f"{name} {cpu_per_gb(outcome, name):.2f}" for name in outcome.samples)
    return (f"\n\nCPU s per GB of DICOM: {per}. Verifying-mirror limit measured in this run "
            f"(inflate with {outcome.limit['inflater']} + MD5 + UID header read + write, one "
            f"thread, no network, no fsync): **{lim:.2f} CPU s/GB**; tcia-mirror is "
            f"{cpu_per_gb(outcome, MIRROR) / lim:.2f}x the limit.")


def contender_lines(outcome: Outcome) -> str:
    """nbiatoolkit against tcia-mirror (no target: a comparison), and who was left out."""
    lines = []
    if NBTK in outcome.samples and MIRROR in outcome.samples:
        nb, mine = outcome.samples[NBTK], outcome.samples[MIRROR]
        cpu = _med(nb, lambda s: s.cpu) / _med(mine, lambda s: s.cpu)
        lines.append(
            f"{NBTK} time / {MIRROR} time: {_secs(outcome, NBTK) / _secs(outcome, MIRROR):.2f}x,"
            f" CPU {cpu:.2f}x, peak RSS {_med(nb, lambda s: s.peak_rss) / MB:.0f} MB vs "
            f"{_med(mine, lambda s: s.peak_rss) / MB:.0f} MB ({NBTK}: v2 endpoints, one pool "
            f"worker process; its CPU includes the worker, its peak RSS is its largest "
            f"process).")
    lines += [f"{name} not run: {why}" for name, why in outcome.left_out.items()]
    return "".join(f"\n\n{line}" for line in lines)


def memory_table(outcome: Outcome) -> str:
    head = ["contender", "peak RSS MB (median)", "peak RSS MB (max)", "wall s (median)",
            "CPU s", "MB/s"]
    rows = []
    for name, samples in outcome.samples.items():
        secs = _secs(outcome, name)
        rows.append([name, f"{_med(samples, lambda s: s.peak_rss) / MB:.0f}",
                     f"{max(s.peak_rss for s in samples) / MB:.0f}", f"{secs:.2f}",
                     f"{_med(samples, lambda s: s.cpu):.2f}",
                     num(outcome.totals.bytes / MB / secs)])
    return table(head, rows)


def noop_table(outcome: Outcome) -> str:
    samples = outcome.samples[MIRROR]
    reqs = _med(samples, lambda s: s.extra["requests"])
    endpoints = sorted(samples[-1].extra["by_endpoint"].items())
    return table(
        ["contender", "series in sync", "wall s (median)", "spread", "CPU s", "requests",
         "per collection", "requests by endpoint (last run)"],
        [[MIRROR, f"{outcome.totals.series:,}", f"{_secs(outcome, MIRROR):.2f}",
          f"{spread([s.seconds for s in samples]):.0%}",
          f"{_med(samples, lambda s: s.cpu):.2f}", f"{reqs:.0f}",
          f"{reqs / outcome.collections:.1f}",
          ", ".join(f"{k} {v}" for k, v in endpoints)]])


def discovery_table(outcome: Outcome) -> str:
    """B5: the first discovery and the no-op sync after it, each in its own process."""
    rows = []
    for name, samples in outcome.samples.items():
        rows.append([name, f"{outcome.totals.series:,}", f"{_secs(outcome, name):.2f}",
                     f"{_med(samples, lambda s: s.cpu):.2f}",
                     f"{_med(samples, lambda s: s.peak_rss) / MB:.0f}"])
    return table(["step", "series", "wall s (median)", "CPU s", "peak RSS MB"], rows)


def checks(results: dict[str, Outcome]) -> list[Check]:
    """(label, measured, target, met) for every target of the benchmarks that ran."""
    out: list[Check] = []
    for key in ("b1", "b3"):
        if key in results:
            o = results[key]
            speed = _secs(o, UTILS) / _secs(o, MIRROR)
            floor = _secs(o, MIRROR) / _secs(o, FLOOR)
            out.append((f"{key.upper()} tcia-utils time / tcia-mirror time", speed, 1.5,
                        speed >= 1.5))
            out.append((f"{key.upper()} tcia-mirror time / raw floor time", floor, 1.25,
                        floor <= 1.25))
            out.append((f"{key.upper()} tcia-mirror CPU / tcia-utils CPU (lower is better)",
                        cpu := _med(o.samples[MIRROR], lambda s: s.cpu)
                        / _med(o.samples[UTILS], lambda s: s.cpu), 1 / 1.5, cpu <= 1 / 1.5))
            if o.limit is not None:
                times = cpu_per_gb(o, MIRROR) / float(o.limit["cpu_s_per_gb"])
                out.append((f"{key.upper()} tcia-mirror CPU per GB / verifying-mirror limit",
                            times, 1.5, times <= 1.5))
            if key == "b3":
                ms = _med(o.samples[MIRROR], lambda s: s.cpu) / o.totals.series * 1000
                out.append(("B3 tcia-mirror CPU ms per series", ms, 2.0, ms <= 2.0))
    if "b2" in results:
        rss = _med(results["b2"].samples[MIRROR], lambda s: s.peak_rss) / MB
        out.append(("B2 tcia-mirror peak RSS, MB", rss, 150.0, rss <= 150))
    if "b4" in results:
        o = results["b4"]
        secs = _secs(o, MIRROR)
        per = _med(o.samples[MIRROR], lambda s: s.extra["requests"]) / o.collections
        out.append(("B4 no-op resync wall time, s", secs, 10.0, secs <= 10))
        out.append(("B4 requests per collection", per, 3.0, per <= 3))
    if "b5" in results:
        o = results["b5"]
        first = o.samples["tcia-mirror first discovery"]
        cpu, rss = _med(first, lambda s: s.cpu), _med(first, lambda s: s.peak_rss) / MB
        noop = _secs(o, "tcia-mirror no-op sync")
        out.append(("B5 first discovery CPU s", cpu, 15.0, cpu <= 15))
        out.append(("B5 first discovery peak RSS, MB", rss, 300.0, rss <= 300))
        out.append(("B5 no-op sync wall time, s", noop, 5.0, noop <= 5))
    return out


def verdicts(results: dict[str, Outcome]) -> str:
    lines = []
    for label, value, target, met in checks(results):
        at_least = "tcia-utils time" in label
        sign = ">=" if at_least else "<="
        miss = "" if met else (f", missed by {abs(value - target) / target:.0%}")
        lines.append(f"- {label}: {value:.2f} (target {sign} {target:g}): "
                     f"{'MET' if met else 'MISSED'}{miss}")
    return "\n".join(lines)


def render(results: dict[str, Outcome]) -> str:
    titles = {"b1": "B1 throughput", "b2": "B2 memory", "b3": "B3 small series",
              "b4": "B4 no-op resync", "b5": "B5 NLST-sized discovery"}
    kinds = {"b1": throughput_table, "b2": memory_table, "b3": throughput_table,
             "b4": noop_table, "b5": discovery_table}
    parts = []
    for key, outcome in results.items():
        runs = len(next(iter(outcome.samples.values())))
        dicom = f", {outcome.totals.bytes / MB:,.1f} MB of DICOM" if outcome.totals.bytes else ""
        parts.append(f"### {titles[key]}: {outcome.about}, {runs} run(s) each{dicom}"
                     f"\n\n{kinds[key](outcome)}"
                     f"{limit_lines(outcome)}{contender_lines(outcome)}")
    parts.append("### Targets\n\n" + verdicts(results))
    return "\n\n".join(parts) + "\n"
