"""One triggerer-like process: N ``OGCJobTrigger`` (or baseline) triggers in ONE asyncio loop.

Run by :mod:`benchmarks.triggerer` in a fresh process per measurement (peak RSS is per process)::

    python -m benchmarks.trigger_load --variant provider --n 1000 --url http://127.0.0.1:PORT \
        --warmup 15 --window 60 --out result.json

Like the triggerer's ``TriggerRunner.run_trigger``: every trigger runs as its own asyncio task,
with a greenback portal, consuming ``trigger.run()`` until its first event. The loop is the
stdlib one (``asyncio.run``), as in the triggerer. Jobs never end (the job server answers
``running``), so every trigger polls for the whole run. Job ages at the start are spread
uniformly over ``[--min-age, --min-age + --age-spread]`` seconds (jobs submitted at a steady rate;
``--min-age`` 0 by default, 60 puts every job at a 10 s ceiling from the start), and triggers start
at random times over ``--start-spread`` seconds (default: the max poll interval), so polls are not
synchronised; ``--start-spread 0`` starts them all at once, as after a triggerer restart. The
poll schedule is the provider's (``airflow_provider_ogc.polling`` defaults: floor and ratio) with
the ``--max-interval`` ceiling (10 s, the issue's triggerer workload). ``--patch before_fix`` runs
the provider as it was before the pool fix (BENCHMARK-ONLY, :mod:`benchmarks.patches`); the result's
``pool`` key shows the pool limits and gate the triggers really used.

The server is :mod:`benchmarks.job_server` (any job id is ``running``; ``/stats`` counts
``requests``), or, with ``--job-ids FILE`` (a JSON list of job ids, trigger i watching id
i mod len), any server whose ``/stats`` counts ``requests`` or ``status_requests``, such as
``tests/servers/timed_jobs.py`` with long ``sleep`` jobs (the real-triggerer benchmark's server).

A separate thread keeps the clock, so an overloaded loop cannot stretch the run: after
``--warmup`` seconds (which absorb the start-up and the first polls) it measures for ``--window``
seconds: CPU seconds of the whole process (``time.process_time``), polls answered by the job
server (its ``/stats`` counter), garbage-collector pauses, and the lateness of a 0.1 s ticker in the
loop. Peak RSS is ``ru_maxrss`` over the whole process life. Then it writes the result and ends
the process at once (no orderly teardown of thousands of tasks).
"""

from __future__ import annotations

import argparse
import asyncio
import gc
import http.client
import json
import os
import random
import resource
import statistics
import sys
import threading
import time
import weakref
from pathlib import Path
from typing import Any

CONN_ID = "ogc_bench"
TICK = 0.1


def raise_fd_limit() -> int:
    soft, hard = resource.getrlimit(resource.RLIMIT_NOFILE)
    target = hard if hard != resource.RLIM_INFINITY else max(soft, 65536)
    if target > soft:
        try:
            resource.setrlimit(resource.RLIMIT_NOFILE, (target, hard))
            soft = target
        except (ValueError, OSError):
            pass
    return soft


def rss_mb() -> float:
    """Current resident set size in MB (Linux /proc; 0 elsewhere)."""
    try:
        pages = int(Path("/proc/self/statm").read_text().split()[1])
    except OSError:
        return 0.0
    return pages * os.sysconf("SC_PAGE_SIZE") / 1e6


def peak_rss_mb() -> float:
    kb = resource.getrusage(resource.RUSAGE_SELF).ru_maxrss  # KB on Linux (bytes on macOS)
    return kb / 1e3 if sys.platform != "darwin" else kb / 1e6


def percentile(values: list[float], q: float) -> float | None:
    if not values:
        return None
    ordered = sorted(values)
    return ordered[min(len(ordered) - 1, max(0, round(q * (len(ordered) - 1))))]


def baseline_trigger_class() -> type:
    """The pattern several providers use: a new HTTP client (session) for every poll, closed after it.

    Same trigger loop, schedule, connection handling and statusInfo parsing as ``OGCJobTrigger``;
    only ``aget_job_status`` differs: ``async with httpx.AsyncClient(...)`` around one GET, and no
    retry layer (which only makes the baseline cheaper).
    """
    import httpx

    from airflow_provider_ogc.hooks._http import JSON, decode_json
    from airflow_provider_ogc.hooks.ogc_processes import (
        OGCProcessesHook,
        _default_headers,
        _job_path,
        _raise_for_status,
    )
    from airflow_provider_ogc.models import StatusInfo
    from airflow_provider_ogc.triggers.ogc_processes import OGCJobTrigger

    class SessionPerPollHook(OGCProcessesHook):
        async def aget_job_status(self, job_id: str) -> StatusInfo:
            settings = await self.asettings()
            url = settings.url(_job_path(job_id))
            async with httpx.AsyncClient(
                auth=settings.auth(),
                headers=_default_headers(),
                timeout=settings.httpx_timeout(),
                verify=settings.verify,
            ) as client:
                response = _raise_for_status(await client.get(url, headers={"Accept": JSON}))
            return StatusInfo.from_dict(decode_json(response), job_url=url, job_id=job_id)

    class SessionPerPollTrigger(OGCJobTrigger):
        def _hook(self) -> Any:
            return SessionPerPollHook(ogc_conn_id=self.ogc_conn_id)

    return SessionPerPollTrigger


def scheduled_polls(
    ages: list[float], delays: list[float], start: float, end: float, lo: float, hi: float, ratio: float
) -> int:
    """Polls the schedule asks for in [start, end) seconds after the run began (no request latency)."""
    from airflow_provider_ogc.polling import PollSchedule

    schedule = PollSchedule(lo, hi, ratio)
    total = 0
    for age, delay in zip(ages, delays, strict=False):
        t = delay
        while t < end:
            if t >= start:
                total += 1
            t += schedule.next_interval(age + t)
    return total


def pool_info(loop: asyncio.AbstractEventLoop) -> list[dict[str, Any]]:
    """The shared async clients' pool limits and gates, as the triggers really used them.

    Read from the live objects (not from the options), so the JSON shows that the "before the
    fix" patch took effect and that the shipped variant runs the shipped pool.
    """
    from airflow_provider_ogc.hooks import ogc_processes

    out: list[dict[str, Any]] = []
    gates = ogc_processes._ASYNC_GATES
    for client in list(ogc_processes._ASYNC_CLIENTS.get(loop, {}).values()):
        gate = gates.get(client) if isinstance(gates, weakref.WeakKeyDictionary) else None
        connector = getattr(getattr(client, "session", None), "connector", None)
        if connector is not None:  # aiohttp (shipped): every connection of the pool is kept alive
            limits = {"max_connections": connector.limit, "max_keepalive_connections": connector.limit}
        else:  # httpx (benchmarks/patches.py's "before the fix")
            pool = getattr(getattr(getattr(client, "client", None), "_transport", None), "_pool", None)
            limits = {
                "max_connections": getattr(pool, "_max_connections", None),
                "max_keepalive_connections": getattr(pool, "_max_keepalive_connections", None),
            }
        out.append({**limits, "gated": isinstance(gate, asyncio.Semaphore)})
    return out


def server_stats(host: str, port: int) -> dict[str, int | None]:
    """Status GETs (``requests``) and TCP connections (``connections``, None if not counted) so far.

    ``benchmarks/job_server.py`` counts both; ``tests/servers/timed_jobs.py`` counts the status GETs
    as ``status_requests`` and no connections.
    """
    conn = http.client.HTTPConnection(host, port, timeout=30)
    try:
        conn.request("GET", "/stats", headers={"Connection": "close"})
        stats = json.loads(conn.getresponse().read())
    finally:
        conn.close()
    requests = stats["requests"] if "requests" in stats else stats["status_requests"]
    return {"requests": int(requests), "connections": stats.get("connections")}


class Run:
    """The triggers, the ticker and what the measuring thread reads."""

    def __init__(self, args: argparse.Namespace) -> None:
        self.args = args
        self.lags: list[float] = []
        self.ticks = 0
        self.tick_due: float | None = None  # when the pending tick should fire (loop clock = monotonic)
        self.measuring = False
        self.gc_pauses: list[tuple[int, float]] = []
        self._gc_started = 0.0
        self.events: list[dict[str, Any]] = []
        self.tasks: list[asyncio.Task[None]] = []
        gc.callbacks.append(self._gc_callback)

    def _gc_callback(self, phase: str, info: dict[str, Any]) -> None:
        if phase == "start":
            self._gc_started = time.perf_counter()
        elif self.measuring:
            self.gc_pauses.append((info["generation"], time.perf_counter() - self._gc_started))

    def build(self) -> None:
        import httpx

        from airflow_provider_ogc.triggers.ogc_processes import OGCJobTrigger

        args = self.args
        url = httpx.URL(args.url)
        self.host, self.port = url.host, url.port or 80
        if args.patch:
            from benchmarks import patches

            for name in args.patch:
                patches.apply(name)
        cls = OGCJobTrigger if args.variant == "provider" else baseline_trigger_class()
        rng = random.Random(args.seed)
        now = time.time()
        self.ages = [args.min_age + rng.uniform(0, args.age_spread) for _ in range(args.n)]
        self.delays = [rng.uniform(0, args.start_spread) for _ in range(args.n)]
        job_ids = json.loads(Path(args.job_ids).read_text()) if args.job_ids else None
        self.triggers = [
            cls(
                job_id=job_ids[i % len(job_ids)] if job_ids else f"job-{i:05d}",
                ogc_conn_id=CONN_ID,
                submitted_at=now - age,
                min_poll_interval=args.min_interval,
                max_poll_interval=args.max_interval,
                poll_ratio=args.ratio,
            )
            for i, age in enumerate(self.ages)
        ]
        self.rss_before = rss_mb()

    async def run_trigger(self, trigger: Any, delay: float) -> None:
        await asyncio.sleep(delay)
        if not self.args.no_greenback:
            import greenback

            await greenback.ensure_portal()
        async for event in trigger.run():
            self.events.append(event.payload)
            return

    async def ticker(self) -> None:
        loop = asyncio.get_running_loop()
        while True:
            before = loop.time()
            self.tick_due = before + TICK
            await asyncio.sleep(TICK)
            if self.measuring:
                self.ticks += 1
                self.lags.append(max(0.0, loop.time() - before - TICK))

    async def main(self) -> None:
        self.started = time.monotonic()
        self.tasks.append(asyncio.create_task(self.ticker()))
        for trigger, delay in zip(self.triggers, self.delays, strict=True):
            self.tasks.append(asyncio.create_task(self.run_trigger(trigger, delay)))
        await asyncio.Event().wait()  # forever: the measuring thread ends the process


def measure(run: Run, loop: asyncio.AbstractEventLoop) -> None:
    """The measuring thread: warm-up, window, result file, exit."""
    args = run.args
    aborted: str | None = None

    def wait(seconds: float) -> None:
        nonlocal aborted
        deadline = time.monotonic() + seconds
        while aborted is None and (left := deadline - time.monotonic()) > 0:
            time.sleep(min(0.5, left))
            if rss_mb() > args.max_rss_mb:
                aborted = f"RSS over {args.max_rss_mb:.0f} MB"

    profiler = None
    if args.profile:
        import cProfile

        profiler = cProfile.Profile()  # enabled/disabled in the loop's thread, which it then profiles
    wait(args.warmup)
    stats0 = server_stats(run.host, run.port)
    cpu0, wall0 = time.process_time(), time.monotonic()
    run.measuring = True
    if profiler:
        loop.call_soon_threadsafe(profiler.enable)
    wait(args.window)
    run.measuring = False
    cpu1, wall1 = time.process_time(), time.monotonic()
    stats1 = server_stats(run.host, run.port)
    if profiler:
        done = threading.Event()

        def stop_profiler() -> None:
            profiler.disable()
            done.set()

        loop.call_soon_threadsafe(stop_profiler)
        done.wait(60)
        profiler.dump_stats(args.profile)

    cpu, wall = cpu1 - cpu0, wall1 - wall0
    polls = int(stats1["requests"] or 0) - int(stats0["requests"] or 0)
    connections = (
        stats1["connections"] - stats0["connections"]
        if stats1["connections"] is not None and stats0["connections"] is not None
        else None
    )
    lags = list(run.lags)
    if run.tick_due is not None and wall1 - run.tick_due > TICK:
        lags.append(wall1 - run.tick_due)  # a tick still waiting: the loop has been blocked this long
    pauses = list(run.gc_pauses)
    window_start, window_end = wall0 - run.started, wall1 - run.started
    expected = scheduled_polls(
        run.ages, run.delays, window_start, window_end, args.min_interval, args.max_interval, args.ratio
    )

    def ms(value: float | None) -> float | None:
        return None if value is None else round(1000 * value, 2)

    result = {
        "variant": args.variant,
        "n": args.n,
        "window_s": round(wall, 3),
        "warmup_s": args.warmup,
        "start_spread_s": args.start_spread,
        "min_age_s": args.min_age,
        "age_spread_s": args.age_spread,
        "max_interval_s": args.max_interval,
        "min_interval_s": args.min_interval,
        "cpu_s": round(cpu, 4),
        "cpu_share": round(cpu / wall, 4),
        "polls": polls,
        "polls_scheduled": expected,
        "polls_per_s": round(polls / wall, 2),
        "cpu_s_per_1000_polls": round(1000 * cpu / polls, 4) if polls else None,
        "peak_rss_mb": round(peak_rss_mb(), 1),
        "rss_before_triggers_mb": round(run.rss_before, 1),
        "rss_end_mb": round(rss_mb(), 1),
        "loop_lag_p50_ms": ms(percentile(lags, 0.5)),
        "loop_lag_p99_ms": ms(percentile(lags, 0.99)),
        "loop_lag_max_ms": ms(max(lags) if lags else None),
        "loop_lag_mean_ms": ms(statistics.fmean(lags) if lags else None),
        "ticks": run.ticks,
        "ticks_expected": int(wall / TICK),
        "gc_pause_total_ms": round(1000 * sum(p for _, p in pauses), 1),
        "gc_pause_max_ms": round(1000 * max((p for _, p in pauses), default=0.0), 1),
        "gc_gen2_collections": sum(g == 2 for g, _ in pauses),
        "triggers_alive": sum(not t.done() for t in run.tasks[1:]),
        "events": len(run.events),
        "event_statuses": sorted({str(e.get("status")) for e in run.events}),
        "new_connections": connections,
        "greenback": not args.no_greenback,
        "patches": args.patch or [],
        "pool": pool_info(loop),
        "fd_limit": resource.getrlimit(resource.RLIMIT_NOFILE)[0],
        "aborted": aborted,
    }
    Path(args.out).write_text(json.dumps(result, indent=2))
    sys.stdout.flush()
    sys.stderr.flush()
    os._exit(0)


def main(argv: list[str] | None = None) -> int:
    parser = argparse.ArgumentParser(prog="python -m benchmarks.trigger_load")
    parser.add_argument("--variant", choices=("provider", "baseline"), required=True)
    parser.add_argument("--n", type=int, required=True)
    parser.add_argument("--url", required=True, help="the job server's root URL")
    parser.add_argument("--warmup", type=float, default=15.0)
    parser.add_argument("--window", type=float, default=60.0)
    parser.add_argument("--min-interval", type=float, default=None, help="default: the provider's")
    parser.add_argument("--max-interval", type=float, default=10.0)
    parser.add_argument("--ratio", type=float, default=None, help="poll ratio; default: the provider's")
    parser.add_argument(
        "--min-age", type=float, default=0.0, help="youngest job's age at the start, s (default 0)"
    )
    parser.add_argument(
        "--age-spread", type=float, default=600.0, help="ages uniform over [min-age, min-age + this], s"
    )
    parser.add_argument(
        "--job-ids",
        help="a JSON file listing job ids the server knows (default: job-00000, ... for job_server.py)",
    )
    parser.add_argument(
        "--start-spread",
        type=float,
        default=None,
        help="start the triggers at random times over this many seconds (default: --max-interval; "
        "0 = all at once, as after a triggerer restart)",
    )
    parser.add_argument("--seed", type=int, default=0)
    parser.add_argument("--no-greenback", action="store_true")
    parser.add_argument("--max-rss-mb", type=float, default=4000.0, help="stop measuring above this RSS")
    parser.add_argument("--profile", help="write cProfile stats of the loop thread during the window here")
    parser.add_argument(
        "--patch",
        action="append",
        choices=("before_fix",),
        help="BENCHMARK-ONLY: run the provider as it was before the pool fix (benchmarks/patches.py)",
    )
    parser.add_argument("--out", required=True, help="write the JSON result here")
    args = parser.parse_args(argv)
    if args.start_spread is None:
        args.start_spread = args.max_interval
    from airflow_provider_ogc.polling import DEFAULT_MIN_POLL_INTERVAL, DEFAULT_POLL_RATIO

    args.min_interval = DEFAULT_MIN_POLL_INTERVAL if args.min_interval is None else args.min_interval
    args.ratio = DEFAULT_POLL_RATIO if args.ratio is None else args.ratio

    raise_fd_limit()
    os.environ.setdefault(
        f"AIRFLOW_CONN_{CONN_ID.upper()}",
        json.dumps({"conn_type": "ogc_processes", "host": args.url}),
    )
    run = Run(args)
    run.build()
    loop = asyncio.new_event_loop()
    asyncio.set_event_loop(loop)
    threading.Thread(target=measure, args=(run, loop), daemon=True, name="measure").start()
    loop.run_until_complete(run.main())
    return 0


if __name__ == "__main__":
    sys.exit(main())
