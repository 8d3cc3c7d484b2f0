"""Run every ``bench/bench_*.py`` and record the figures.

Writes ``bench/results.json`` (one flat JSON object of figures) and the table in
``bench/RESULTS.md``. Usage: ``make bench`` or ``python bench/run.py [name ...]``.
"""

from __future__ import annotations

import importlib.util
import json
import platform
import sys
import time
import traceback
from pathlib import Path

HERE = Path(__file__).parent
RESULTS_JSON = HERE / "results.json"
RESULTS_MD = HERE / "RESULTS.md"

#: key -> (comparison, target): what the issues ask for; measured, never asserted in tests.
TARGETS: dict[str, tuple[str, float]] = {
    "bus.ns_per_event": ("<=", 1000),
    "bus.ratio_vs_pyee": ("<=", 1.5),
    "bus.installed_ratio_vs_bare": ("<=", 1.15),
    "bus.installed_ratio_vs_pyee": ("<=", 1.3),
    "bus.match_10k_us": ("<=", 5),
    "hooks.ratio_vs_pluggy": ("<=", 1.2),
    "reload.p95_ms": ("<=", 25),
    "sandbox.rtt_ratio_vs_pipe": ("<=", 1.5),
    "sandbox.worker_start_ms": ("<=", 150),
    "api.get_ratio_vs_hello": (">=", 0.5),
    "api.events_per_s": (">=", 5000),
    "journal.sqlite_appends_per_s": (">=", 20000),
    "journal.postgres_appends_per_s": (">=", 10000),
    "nats.core_ratio_vs_raw": (">=", 0.7),
    "nats.js_ratio_vs_raw": (">=", 0.75),
    "scheduler.mem_tasks_per_s": (">=", 50000),
    "scheduler.durable_tasks_per_s": (">=", 5000),
    "scheduler.ratio_vs_dramatiq": (">=", 3),
    "metrics.counter_ratio_vs_prometheus": ("<=", 1.5),
    "metrics.histogram_ratio_vs_prometheus": ("<=", 1.5),
    "workflows.ratio_vs_dbos_sqlite": (">=", 2),
    "workflows.ratio_vs_dbos_postgres": (">=", 1.5),
    "workflows.start_to_done_p50_ms": ("<=", 5),
    "workflows.ratio_vs_langgraph_resume": ("<=", 1),
    "workflows.bytes_per_waiting_run": ("<=", 4096),
    "metrics.observations_per_s": (">=", 1_000_000),
    "metrics.percentile_rel_error": ("<=", 0.01),
}


def _load(path: Path) -> object:
    spec = importlib.util.spec_from_file_location(path.stem, path)
    assert spec is not None and spec.loader is not None
    module = importlib.util.module_from_spec(spec)
    spec.loader.exec_module(module)
    return module


def _verdict(key: str, value: float) -> tuple[str, str]:
    if key not in TARGETS:
        return "", ""
    op, target = TARGETS[key]
    met = value <= target if op == "<=" else value >= target
    return f"{op} {target:g}", "yes" if met else "**no**"


def _write_markdown(results: dict[str, float], ran: list[str], failed: dict[str, str]) -> None:
    stamp = time.strftime("%Y-%m-%d %H:%M UTC", time.gmtime())
    lines = [
        "# Benchmark results",
        "",
        "Produced by `make bench` (`.venv/bin/python bench/run.py`), which runs every",
        "`bench/bench_*.py`; each script measures ours beside its floor or peer in the same run.",
        f"Last run: {stamp} on {platform.node()} ({platform.python_implementation()} "
        f"{platform.python_version()}, {platform.machine()}), scripts: {', '.join(ran)}"
        " (figures of scripts not run this time are kept from their last run).",
        "Shared 2-core machines are noisy: ratios from the same run are the figures to trust.",
        "",
        "| key | value | target | met |",
        "|---|---:|---|---|",
    ]
    for key in sorted(results):
        target, met = _verdict(key, results[key])
        lines.append(f"| `{key}` | {results[key]:g} | {target} | {met} |")
    if failed:
        lines += ["", "## Scripts that failed", ""]
        lines += [f"- `{name}`: {error}" for name, error in sorted(failed.items())]
    RESULTS_MD.write_text("\n".join(lines) + "\n", encoding="utf-8")


def main(argv: list[str]) -> int:
    wanted = set(argv)
    scripts = sorted(p for p in HERE.glob("bench_*.py") if not wanted or p.stem[6:] in wanted)
    results: dict[str, float] = (
        json.loads(RESULTS_JSON.read_text()) if RESULTS_JSON.exists() and wanted else {}
    )
    failed: dict[str, str] = {}
    for script in scripts:
        print(f"== {script.name}", flush=True)
        try:
            figures = _load(script).run()  # type: ignore[attr-defined]
        except Exception as e:
            traceback.print_exc()
            failed[script.name] = f"{type(e).__name__}: {e}"
            continue
        results.update({k: float(v) for k, v in figures.items()})
    RESULTS_JSON.write_text(json.dumps(results, indent=2, sort_keys=True) + "\n", encoding="utf-8")
    _write_markdown(results, [s.stem for s in scripts], failed)
    print(
        f"wrote {RESULTS_JSON.relative_to(HERE.parent)} and {RESULTS_MD.relative_to(HERE.parent)}"
    )
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main(sys.argv[1:]))
