"""Polls per job and detection latency: the provider's adaptive schedule vs. a fixed 10 s loop.

A simulated clock (no servers): the job is submitted at t = 0 and polled at once, then after every
poll the watcher sleeps ``PollSchedule.next_interval(t)`` (adaptive) or 10 s (the seed notebook's
``while True: ...; time.sleep(10)``). Request latency is ignored. A job of duration D is noticed by
the first poll at or after D.

* ``worst_latency(D)``: the length of the poll gap that contains D, i.e. how late a job ending just
  after a poll is noticed (fixed 10 s loop, 5 s job: the gap (0, 10] -> 10 s = 200 %).
* ``polls(D)``: polls until the end is noticed, that one included.

The adaptive parameters are read from the provider (``airflow_provider_ogc.polling``'s
``DEFAULT_*`` constants), not restated here; the defaults of ``ExecuteProcessOperator``,
``JobStatusSensor`` and ``OGCJobTrigger`` are read too and must agree with them
(``defaults_agree``). What-if schedules (other ratios and ceilings, the defaults before commit
8b5d946) are computed for the JSON only, not the table.
"""

from __future__ import annotations

import inspect
import math
import random
import statistics
from typing import TYPE_CHECKING, Any

if TYPE_CHECKING:
    from collections.abc import Callable

FIXED_INTERVAL = 10.0
NAMED_DURATIONS = {"5 s": 5.0, "30 s": 30.0, "5 min": 300.0, "1 h": 3600.0}
GOAL_SHARE = 0.20  # worst-case latency <= 20 % of the duration ...
GOAL_FLOOR = 1.0  # ... or 1 s, whichever is larger
MIX_LOW, MIX_HIGH = 5.0, 3600.0
# What-ifs, for the JSON only: the defaults before commit 8b5d946 (ratio 0.15, 60 s), other
# ceilings, and the triggerer benchmark's 10 s ceiling.
WHAT_IF: tuple[dict[str, Any], ...] = (
    {"label": "before 8b5d946", "min_interval": 1.0, "max_interval": 60.0, "ratio": 0.15},
    {"label": "ratio 0.2, 60 s", "min_interval": 1.0, "max_interval": 60.0, "ratio": 0.2},
    {"label": "ratio 0.2, 90 s", "min_interval": 1.0, "max_interval": 90.0, "ratio": 0.2},
    {"label": "ratio 0.15, 120 s", "min_interval": 1.0, "max_interval": 120.0, "ratio": 0.15},
    {
        "label": "ratio 0.2, 10 s (triggerer benchmark)",
        "min_interval": 1.0,
        "max_interval": 10.0,
        "ratio": 0.2,
    },
)


def provider_defaults() -> dict[str, float]:
    """The package's polling defaults (``airflow_provider_ogc.polling``)."""
    from airflow_provider_ogc import polling

    return {
        "min_interval": float(polling.DEFAULT_MIN_POLL_INTERVAL),
        "max_interval": float(polling.DEFAULT_MAX_POLL_INTERVAL),
        "ratio": float(polling.DEFAULT_POLL_RATIO),
    }


def public_defaults() -> dict[str, dict[str, float]]:
    """The schedule defaults users see in the operator, sensor and trigger signatures."""
    from airflow_provider_ogc.operators import ExecuteProcessOperator
    from airflow_provider_ogc.sensors import JobStatusSensor
    from airflow_provider_ogc.triggers.ogc_processes import OGCJobTrigger

    out: dict[str, dict[str, float]] = {}
    for cls, names in (
        (ExecuteProcessOperator, {"min_interval": "poll_interval", "max_interval": "max_poll_interval"}),
        (JobStatusSensor, {"min_interval": "poll_interval", "max_interval": "max_poll_interval"}),
        (
            OGCJobTrigger,
            {"min_interval": "min_poll_interval", "max_interval": "max_poll_interval", "ratio": "poll_ratio"},
        ),
    ):
        params = inspect.signature(cls.__init__).parameters
        out[cls.__name__] = {key: float(params[name].default) for key, name in names.items()}
    return out


def poll_times(next_interval: Callable[[float], float], until: float) -> list[float]:
    """Poll instants from 0 up to and including the first one at or after ``until``."""
    times = [0.0]
    while times[-1] < until:
        times.append(times[-1] + next_interval(times[-1]))
    return times


def judge(next_interval: Callable[[float], float], duration: float) -> dict[str, float]:
    times = poll_times(next_interval, duration)
    detected = times[-1]
    gap = times[-1] - times[-2] if len(times) > 1 else 0.0
    return {
        "polls": len(times),
        "latency_s": detected - duration,
        "worst_latency_s": gap,
        "worst_latency_pct": 100 * gap / duration,
    }


def _bound_use(judged: dict[str, float], duration: float) -> float:
    """Worst-case latency as a share of the goal's bound, max(20 % of the duration, 1 s)."""
    return judged["worst_latency_s"] / max(GOAL_SHARE * duration, GOAL_FLOOR)


def run(samples: int = 10_000, seed: int = 0) -> dict[str, Any]:
    from airflow_provider_ogc.polling import PollSchedule

    defaults = provider_defaults()
    public = public_defaults()
    schedule = PollSchedule(defaults["min_interval"], defaults["max_interval"], defaults["ratio"])
    watchers: dict[str, Callable[[float], float]] = {
        "adaptive": schedule.next_interval,
        "fixed": lambda _t: FIXED_INTERVAL,
    }
    rng = random.Random(seed)
    mix = [math.exp(rng.uniform(math.log(MIX_LOW), math.log(MIX_HIGH))) for _ in range(samples)]

    result: dict[str, Any] = {
        "adaptive_schedule": defaults,
        "public_defaults": public,
        "defaults_agree": all(
            value == defaults[key] for sig in public.values() for key, value in sig.items()
        ),
        "fixed_interval_s": FIXED_INTERVAL,
        "mix": {"samples": samples, "seed": seed, "low_s": MIX_LOW, "high_s": MIX_HIGH, "law": "log-uniform"},
        "durations": {},
    }
    for label, duration in NAMED_DURATIONS.items():
        result["durations"][label] = {
            name: {k: round(v, 3) for k, v in judge(fn, duration).items()} for name, fn in watchers.items()
        }
    for name, fn in watchers.items():
        judged = [judge(fn, d) for d in mix]
        bound_use = [_bound_use(j, d) for j, d in zip(judged, mix, strict=True)]
        result[name] = {
            "mean_polls": round(statistics.fmean(j["polls"] for j in judged), 2),
            "median_polls": statistics.median(j["polls"] for j in judged),
            "mean_latency_s": round(statistics.fmean(j["latency_s"] for j in judged), 2),
            "mean_latency_pct": round(
                statistics.fmean(100 * j["latency_s"] / d for j, d in zip(judged, mix, strict=True)), 2
            ),
            "max_worst_latency_pct": round(max(j["worst_latency_pct"] for j in judged), 1),
            # > 1 means some job in the mix can be noticed later than max(20 % of its duration, 1 s)
            "max_share_of_latency_bound": round(max(bound_use), 3),
        }
    fixed_polls = result["fixed"]["mean_polls"]
    result["polls_ratio"] = round(result["adaptive"]["mean_polls"] / fixed_polls, 3)
    result["what_if"] = []
    for params in WHAT_IF:
        alt = PollSchedule(params["min_interval"], params["max_interval"], params["ratio"])
        judged = [judge(alt.next_interval, d) for d in mix]
        mean_polls = statistics.fmean(j["polls"] for j in judged)
        result["what_if"].append(
            {
                **params,
                "mean_polls": round(mean_polls, 2),
                "polls_ratio": round(mean_polls / fixed_polls, 3),
                "max_share_of_latency_bound": round(
                    max(_bound_use(j, d) for j, d in zip(judged, mix, strict=True)),
                    3,
                ),
            }
        )
    worst_named = max(
        result["durations"][label]["adaptive"]["worst_latency_s"] / max(GOAL_SHARE * d, GOAL_FLOOR)
        for label, d in NAMED_DURATIONS.items()
    )
    result["goals"] = {
        "latency_met": max(worst_named, result["adaptive"]["max_share_of_latency_bound"]) <= 1.0 + 1e-9,
        "polls_met": result["polls_ratio"] <= 0.5,
    }
    return result


if __name__ == "__main__":
    import json

    print(json.dumps(run(), indent=2))
