"""Triggerer capacity: N concurrent job triggers in one asyncio loop, against a local job server.

Starts :mod:`benchmarks.job_server` in its own process (its CPU is not counted), then runs
:mod:`benchmarks.trigger_load` once per (N, variant), each in a FRESH process:

* ``provider``: ``OGCJobTrigger`` as shipped (one pooled ``httpx.AsyncClient`` per loop and server,
  ``max_connections`` connections all kept alive, at most that many requests in flight, the others
  waiting on an ``asyncio.Semaphore``);
* ``before``: the provider as it was BEFORE that fix, recreated by a BENCHMARK-ONLY monkeypatch
  (:mod:`benchmarks.patches`: a pool of 100 connections, 50 kept alive, no gate), so the table
  shows the fix's effect side by side;
* ``baseline``: a new ``httpx.AsyncClient`` opened and closed for every poll (the pattern several
  providers use), with the same trigger loop and schedule.

Optionally (``burst``), a restart scenario: N triggers that all start at the same instant, as when
a triggerer starts or restarts with N deferred tasks (1,000 is the triggerer's default capacity).

Optionally (``shipped_n``), the shipped-ceiling scenario: N (10,000 in full mode) triggers with the
provider's own poll ceiling (``airflow_provider_ogc.polling.DEFAULT_MAX_POLL_INTERVAL``, 120 s)
instead of the issue's 10 s, otherwise the same workload (job ages 0-600 s), started over the
first 30 s (:func:`shipped_start_spread`), with a longer warm-up (45 s) that absorbs their first polls. The
provider variant only: the baseline and the "before the fix" variant already fall behind at 5,000
triggers with a 10 s ceiling (the baseline grew to 2.7 GB there), so at 10,000 they would measure
nothing but memory exhaustion.

Variants are run in a rotating order for each N, so drifts of a noisy machine hit all of them.
"""

from __future__ import annotations

import json
import os
import subprocess
import sys
import tempfile
import time
from pathlib import Path
from typing import Any

VARIANTS = ("provider", "before", "baseline")
MAX_INTERVAL = 10.0  # the triggerer workload: a 10 s ceiling (the floor and ratio: the provider's)
# The shipped-ceiling triggers start over max(10 s, 2/3 of that run's warm-up): 30 s in full mode, so
# that 10,000 first polls do not queue up (over 10 s they delayed every trigger's schedule by seconds,
# and the window, inside the 120 s ceiling's first cycle, then counted 4% fewer polls than scheduled).
SHIPPED_MIN_START_SPREAD = 10.0


def shipped_start_spread(warmup: float) -> float:
    return max(SHIPPED_MIN_START_SPREAD, round(2 * warmup / 3, 1))


class JobServer:
    """``python -m <module> --port 0`` (default :mod:`benchmarks.job_server`) on a free loopback port.

    The module prints ``READY <port>`` once it listens; stopped by PID.
    """

    def __init__(self, python: str, log_path: Path, module: str = "benchmarks.job_server") -> None:
        self.log = log_path.open("wb")
        self.proc = subprocess.Popen(
            [python, "-m", module, "--port", "0"],
            stdout=subprocess.PIPE,
            stderr=self.log,
            cwd=str(Path(__file__).resolve().parent.parent),
        )
        assert self.proc.stdout is not None
        line = self.proc.stdout.readline().decode()
        if not line.startswith("READY "):
            self.stop()
            raise RuntimeError(f"{module} did not start: {line!r} (log {log_path})")
        self.url = f"http://127.0.0.1:{int(line.split()[1])}"

    def stop(self) -> None:
        if self.proc.poll() is None:
            self.proc.terminate()
            try:
                self.proc.wait(5)
            except subprocess.TimeoutExpired:
                self.proc.kill()
                self.proc.wait()
        self.log.close()


def _child_env(home: Path) -> dict[str, str]:
    env = {k: v for k, v in os.environ.items() if not k.startswith("AIRFLOW")}
    env.update(AIRFLOW_HOME=str(home), AIRFLOW__CORE__LOAD_EXAMPLES="False", PYTHONUNBUFFERED="1")
    repo = str(Path(__file__).resolve().parent.parent)
    env["PYTHONPATH"] = os.pathsep.join([repo, env["PYTHONPATH"]]) if env.get("PYTHONPATH") else repo
    return env


def _run_load(
    python: str,
    url: str,
    variant: str,
    n: int,
    warmup: float,
    window: float,
    work: Path,
    env: dict[str, str],
    scenario: str = "steady",
    max_interval: float = MAX_INTERVAL,
    extra: list[str] | None = None,
) -> dict[str, Any]:
    """One ``trigger_load`` process: its JSON result, or ``{"error": ...}`` for a failed run."""
    out = work / f"load-{scenario}-{variant}-{n}.json"
    log = work / f"load-{scenario}-{variant}-{n}.log"
    argv = [
        python,
        "-m",
        "benchmarks.trigger_load",
        "--variant",
        "baseline" if variant == "baseline" else "provider",
        "--n",
        str(n),
        "--url",
        url,
        "--warmup",
        str(warmup),
        "--window",
        str(window),
        "--max-interval",
        str(max_interval),
        "--out",
        str(out),
    ]
    if scenario == "burst":
        argv += ["--start-spread", "0"]
    argv += extra or []
    if variant == "before":
        argv += ["--patch", "before_fix"]
    began = time.monotonic()
    with log.open("wb") as sink:
        try:
            proc = subprocess.run(
                argv, env=env, stdout=sink, stderr=subprocess.STDOUT, timeout=warmup + window + 240
            )
            code: int | str = proc.returncode
        except subprocess.TimeoutExpired:
            code = "timeout"
    if code != 0 or not out.exists():
        tail = log.read_text(errors="replace")[-2000:]
        return {
            "scenario": scenario,
            "variant": variant,
            "n": n,
            "error": f"trigger_load exited {code}: {tail}",
        }
    result: dict[str, Any] = json.loads(out.read_text())
    result["variant"] = variant
    result["scenario"] = scenario
    result["process_wall_s"] = round(time.monotonic() - began, 1)
    return result


def run(
    ns: list[int],
    window: float,
    warmup: float,
    variants: tuple[str, ...] = VARIANTS,
    burst: int = 0,
    max_interval: float = MAX_INTERVAL,
    python: str | None = None,
    floor_requests: int = 12000,
    shipped_n: int = 0,
    shipped_warmup: float | None = None,
    log: Any = None,
) -> dict[str, Any]:
    from airflow_provider_ogc.hooks._http import ConnectionSettings
    from airflow_provider_ogc.polling import (
        DEFAULT_MAX_POLL_INTERVAL,
        DEFAULT_MIN_POLL_INTERVAL,
        DEFAULT_POLL_RATIO,
    )
    from benchmarks import patches

    python = python or sys.executable
    say = log or (lambda *a: None)
    results: list[dict[str, Any]] = []
    shipped_lead = warmup if shipped_warmup is None else shipped_warmup
    shipped_spread = shipped_start_spread(shipped_lead)
    with tempfile.TemporaryDirectory(prefix="ogc-bench-triggerer-") as tmp:
        work = Path(tmp)
        home = work / "home"
        home.mkdir()
        env = _child_env(home)
        server = JobServer(python, work / "job-server.log")
        try:
            floor_out = work / "floor.json"
            say("  triggerer: HTTP client floor (CPU per GET)")
            subprocess.run(
                [
                    python,
                    "-m",
                    "benchmarks.http_floor",
                    "--url",
                    server.url,
                    "--requests",
                    str(floor_requests),
                    "--out",
                    str(floor_out),
                    "--server-pid",
                    str(server.proc.pid),
                ],
                env=env,
                stdout=subprocess.DEVNULL,
                stderr=subprocess.DEVNULL,
                timeout=300,
                check=False,
            )
            floor = (
                json.loads(floor_out.read_text()) if floor_out.exists() else {"error": "http_floor failed"}
            )
            for i, n in enumerate(ns):
                order = list(variants[i % len(variants) :] + variants[: i % len(variants)])
                for variant in order:
                    say(f"  triggerer: N={n} {variant} ({warmup:g} s warm-up + {window:g} s window)")
                    results.append(
                        _run_load(
                            python,
                            server.url,
                            variant,
                            n,
                            warmup,
                            window,
                            work,
                            env,
                            max_interval=max_interval,
                        )
                    )
            if burst:
                for variant in ("provider", "before"):
                    say(f"  triggerer: restart burst, N={burst} {variant} (all triggers start at once)")
                    results.append(
                        _run_load(
                            python,
                            server.url,
                            variant,
                            burst,
                            warmup,
                            window,
                            work,
                            env,
                            "burst",
                            max_interval=max_interval,
                        )
                    )
            if shipped_n:
                say(
                    f"  triggerer: N={shipped_n} provider at the shipped {DEFAULT_MAX_POLL_INTERVAL:g} s "
                    f"ceiling ({shipped_lead:g} s warm-up + {window:g} s window)"
                )
                results.append(
                    _run_load(
                        python,
                        server.url,
                        "provider",
                        shipped_n,
                        shipped_lead,
                        window,
                        work,
                        env,
                        "shipped",
                        max_interval=DEFAULT_MAX_POLL_INTERVAL,
                        extra=["--start-spread", str(shipped_spread)],
                    )
                )
        finally:
            server.stop()
    return {
        "window_s": window,
        "warmup_s": warmup,
        "ns": ns,
        "burst_n": burst,
        "min_poll_interval_s": DEFAULT_MIN_POLL_INTERVAL,
        "max_poll_interval_s": max_interval,
        "poll_ratio": DEFAULT_POLL_RATIO,
        "provider_pool": {
            "max_connections": ConnectionSettings.__dataclass_fields__["max_connections"].default,
            "keepalive": "all",
            "gate": "asyncio.Semaphore(max_connections) per shared client",
        },
        "before": {
            "label": "BENCHMARK-ONLY monkeypatch (benchmarks/patches.py): the provider before the pool fix",
            "max_connections": patches.BEFORE_MAX_CONNECTIONS,
            "max_keepalive_connections": patches.BEFORE_MAX_KEEPALIVE,
            "gate": None,
        },
        "workload": (
            "job ages at start uniform in [0, 600] s, triggers started at uniform random times over the "
            f"first {max_interval:g} s; jobs stay running; stdlib asyncio loop; greenback portal per "
            "trigger as in Airflow's TriggerRunner"
        ),
        "burst_workload": "the same, but every trigger starts at t = 0, as when a triggerer (re)starts",
        "shipped_n": shipped_n,
        "shipped_max_poll_interval_s": DEFAULT_MAX_POLL_INTERVAL,
        "shipped_warmup_s": warmup if shipped_warmup is None else shipped_warmup,
        "shipped_workload": (
            f"the provider only, its shipped {DEFAULT_MAX_POLL_INTERVAL:g} s ceiling; job ages at start "
            f"uniform in [0, 600] s, triggers started over the first {shipped_spread:g} s; the "
            "baseline and the before-the-fix variant are not run (at 5,000 triggers and a 10 s ceiling "
            "they already fall behind, the baseline at 2.7 GB: at 10,000 they would measure memory "
            "exhaustion)"
        ),
        "http_floor": floor,
        "results": results,
    }
