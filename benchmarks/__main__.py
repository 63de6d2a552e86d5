"""``python -m benchmarks``: run the provider's benchmarks and print one table (see benchmarks/README.md)."""

from __future__ import annotations

import argparse
import json
import os
import platform
import sys
import tempfile
import time
import traceback
from importlib.metadata import version
from pathlib import Path
from typing import Any

from benchmarks import report
from benchmarks.goals import goals

BENCHMARKS = ("parse", "triggerer", "polling", "slots", "realtrig")
FULL = {
    "parse_runs": 30,
    "triggers": [100, 1000, 5000],
    "window": 60.0,
    "warmup": 15.0,
    "burst": 1000,
    "shipped_ceiling_triggers": 10_000,
    "shipped_ceiling_warmup": 45.0,
    "slots_jobs": 4,
    "slots_seconds": 20.0,
    "real_tasks": 300,
    "real_window": 60.0,
    "real_warmup": 15.0,
    "real_workers": 2,
    "real_worker_concurrency": 8,
    "real_start_timeout": 900.0,
}
QUICK = {
    "parse_runs": 5,
    "triggers": [100, 500],
    "window": 15.0,
    "warmup": 12.0,
    "burst": 0,
    "shipped_ceiling_triggers": 0,
    "slots_jobs": 2,
    "slots_seconds": 8.0,
    "real_tasks": 20,
    "real_window": 10.0,
    "real_warmup": 5.0,
    "real_workers": 1,
    "real_worker_concurrency": 6,
    "real_start_timeout": 300.0,
}
OPTION_KEYS = (
    "parse_runs",
    "triggers",
    "window",
    "warmup",
    "burst",
    "shipped_ceiling_triggers",
    "shipped_ceiling_warmup",
    "max_poll_interval",
    "mix_samples",
    "slots_jobs",
    "slots_seconds",
    "real_tasks",
    "real_window",
    "real_warmup",
    "real_min_poll",
    "real_workers",
    "real_worker_concurrency",
    "real_start_timeout",
)


def _csv_ints(text: str) -> list[int]:
    return [int(x) for x in text.replace("_", "").split(",") if x.strip()]


def _csv_names(text: str) -> list[str]:
    names = [x.strip() for x in text.split(",") if x.strip()]
    unknown = set(names) - set(BENCHMARKS)
    if unknown:
        raise argparse.ArgumentTypeError(
            f"unknown benchmark(s) {sorted(unknown)}; choose from {', '.join(BENCHMARKS)}"
        )
    return names


def parse_args(argv: list[str] | None) -> argparse.Namespace:
    parser = argparse.ArgumentParser(
        prog="python -m benchmarks",
        description="Benchmarks of airflow-provider-ogc: parse cost, triggerer capacity, polling schedule, "
        "worker slots, a real triggerer beside the harness. Prints one table (Markdown) with each figure "
        "beside its baseline from the same run.",
    )
    parser.add_argument("--quick", action="store_true", help="small N, few repetitions (the CI smoke mode)")
    parser.add_argument("--json", type=Path, help="also write every figure and sample to this JSON file")
    parser.add_argument("--only", type=_csv_names, help=f"comma-separated subset of {', '.join(BENCHMARKS)}")
    parser.add_argument("--skip", type=_csv_names, default=[], help="comma-separated benchmarks to skip")
    parser.add_argument("--parse-runs", type=int, help="fresh processes per DAG file (full 30, quick 5)")
    parser.add_argument("--triggers", type=_csv_ints, help="N concurrent triggers, e.g. 100,1000,5000")
    parser.add_argument("--window", type=float, help="triggerer measurement window, s (full 60, quick 15)")
    parser.add_argument(
        "--warmup", type=float, help="triggerer warm-up before the window, s (full 15, quick 12)"
    )
    parser.add_argument(
        "--burst",
        type=int,
        help="N triggers started at once (a triggerer restart); 0 = off (full 1000, quick 0)",
    )
    parser.add_argument(
        "--shipped-ceiling-triggers",
        type=int,
        help="N triggers at the shipped poll ceiling, provider only; 0 = off (full 10000, quick 0)",
    )
    parser.add_argument(
        "--shipped-ceiling-warmup",
        type=float,
        help="warm-up of that run, s (full 45; quick: --warmup); its triggers start over 2/3 of it",
    )
    parser.add_argument(
        "--max-poll-interval",
        type=float,
        default=10.0,
        help="the triggerer benchmark's poll ceiling, s (default 10, as the issue asks; the floor and "
        "ratio are the provider's)",
    )
    parser.add_argument("--mix-samples", type=int, default=10_000, help="jobs in the simulated duration mix")
    parser.add_argument(
        "--slots-jobs", type=int, help="jobs per DAG run in the worker-slot benchmark (full 4)"
    )
    parser.add_argument("--slots-seconds", type=float, help="duration of each of those jobs, s (full 20)")
    parser.add_argument(
        "--real-tasks",
        type=int,
        help="deferred ExecuteProcessOperator tasks watched by one real triggerer (full 300, quick 20)",
    )
    parser.add_argument(
        "--real-window", type=float, help="the real triggerer's measurement window, s (full 60, quick 10)"
    )
    parser.add_argument(
        "--real-warmup",
        type=float,
        help="least warm-up once every trigger runs, s (full 15, quick 5; the window also waits until "
        "every job is old enough to be polled at the ceiling)",
    )
    parser.add_argument(
        "--real-min-poll",
        type=float,
        help="the real tasks' poll_interval (floor), s (full: the provider's 1 s; quick: the ceiling, "
        "so that no job needs to age into it)",
    )
    parser.add_argument("--real-workers", type=int, help="Celery workers (full 2, quick 1)")
    parser.add_argument(
        "--real-worker-concurrency", type=int, help="task slots per Celery worker (full 8, quick 6)"
    )
    parser.add_argument(
        "--real-start-timeout",
        type=float,
        help="longest wait for the tasks to defer, s; the window then runs with those deferred (full 900)",
    )
    parser.add_argument(
        "--render",
        type=Path,
        metavar="JSON",
        help="print the table of an earlier --json file; measure nothing",
    )
    parser.add_argument("--quiet", action="store_true", help="no progress messages on stderr")
    args = parser.parse_args(argv)
    defaults = QUICK if args.quick else FULL
    for key, value in defaults.items():
        if getattr(args, key) is None:
            setattr(args, key, value)
    if args.shipped_ceiling_warmup is None:
        args.shipped_ceiling_warmup = args.warmup
    if args.real_min_poll is None:
        from airflow_provider_ogc.polling import DEFAULT_MIN_POLL_INTERVAL

        args.real_min_poll = args.max_poll_interval if args.quick else DEFAULT_MIN_POLL_INTERVAL
    selected = args.only or list(BENCHMARKS)
    args.selected = [b for b in BENCHMARKS if b in selected and b not in args.skip]
    return args


def machine_info(mode: str) -> dict[str, Any]:
    cpu = platform.processor() or platform.machine()
    try:
        for line in Path("/proc/cpuinfo").read_text().splitlines():
            if line.startswith("model name"):
                cpu = line.split(":", 1)[1].strip()
                break
    except OSError:
        pass
    return {
        "cores": os.cpu_count(),
        "cpu": cpu,
        "python": platform.python_version(),
        "airflow": version("apache-airflow"),
        "provider": version("airflow-provider-ogc"),
        "httpx": version("httpx"),
        "httpcore": version("httpcore"),
        "aiohttp": version("aiohttp"),  # the hook's async side: the triggers' polls
        "platform": platform.platform(terse=True),
        "load_start": " ".join(f"{x:.2f}" for x in os.getloadavg()),
        "mode": mode,
        "started_at": time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime()),
    }


def main(argv: list[str] | None = None) -> int:
    args = parse_args(argv)
    if args.render:
        earlier = json.loads(args.render.read_text())
        earlier["goals"] = goals(earlier)
        print(report.render(earlier))
        return 0
    os.environ.setdefault("AIRFLOW_HOME", tempfile.mkdtemp(prefix="ogc-bench-home-"))
    os.environ.setdefault("AIRFLOW__CORE__LOAD_EXAMPLES", "False")

    def say(*parts: object) -> None:
        if not args.quiet:
            print(*parts, file=sys.stderr, flush=True)

    mode = "quick" if args.quick else "full"
    began = time.monotonic()
    results: dict[str, Any] = {"machine": machine_info(mode), "selected": args.selected}
    results["options"] = {k: getattr(args, k) for k in OPTION_KEYS}
    failed = False
    for name in BENCHMARKS:
        if name not in args.selected:
            results[name] = {"skipped": "not selected"}
            continue
        say(f"[{name}] ({time.monotonic() - began:.0f} s elapsed)")
        t0 = time.monotonic()
        try:
            if name == "parse":
                from benchmarks import parse_cost

                results[name] = parse_cost.run(runs=args.parse_runs, log=say)
            elif name == "triggerer":
                from benchmarks import triggerer

                results[name] = triggerer.run(
                    args.triggers,
                    window=args.window,
                    warmup=args.warmup,
                    burst=args.burst,
                    max_interval=args.max_poll_interval,
                    floor_requests=100 if args.window < 5 else 12000,
                    shipped_n=args.shipped_ceiling_triggers,
                    shipped_warmup=args.shipped_ceiling_warmup,
                    log=say,
                )
            elif name == "polling":
                from benchmarks import polling_sim

                results[name] = polling_sim.run(samples=args.mix_samples)
            elif name == "slots":
                from benchmarks import worker_slots

                if not worker_slots.PYGEOAPI_BIN.is_dir():
                    results[name] = {"skipped": f"{worker_slots.PYGEOAPI_BIN} missing (make servers)"}
                else:
                    results[name] = worker_slots.run(n=args.slots_jobs, seconds=args.slots_seconds, log=say)
            elif name == "realtrig":
                from benchmarks import real_triggerer

                results[name] = real_triggerer.run(
                    n=args.real_tasks,
                    window=args.real_window,
                    warmup=args.real_warmup,
                    max_interval=args.max_poll_interval,
                    min_poll=args.real_min_poll,
                    workers=args.real_workers,
                    worker_concurrency=args.real_worker_concurrency,
                    start_timeout=args.real_start_timeout,
                    log=say,
                )
        except Exception as err:
            failed = True
            results[name] = {"error": f"{type(err).__name__}: {err}", "traceback": traceback.format_exc()}
            say(results[name]["traceback"])
        results[name]["elapsed_s"] = round(time.monotonic() - t0, 1)
    results["machine"]["load_end"] = " ".join(f"{x:.2f}" for x in os.getloadavg())
    results["goals"] = goals(results)
    results["elapsed_s"] = round(time.monotonic() - began, 1)
    results["table"] = report.render(results)
    print(results["table"])
    print(f"\n({results['elapsed_s']:.0f} s)")
    if args.json:
        args.json.parent.mkdir(parents=True, exist_ok=True)
        args.json.write_text(json.dumps(results, indent=2, default=str))
        say(f"JSON written to {args.json}")
    return 1 if failed else 0


if __name__ == "__main__":
    sys.exit(main())
