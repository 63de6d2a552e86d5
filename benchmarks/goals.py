"""Goal verdicts from the results of ``python -m benchmarks`` (shared by the CLI and the table)."""

from __future__ import annotations

from typing import Any

KEEP_UP = 0.9  # a variant that does fewer of its scheduled polls has no meaningful CPU per poll
# Issue 15 item 3: N triggers at the shipped poll ceiling (full mode: 10,000).
SHIPPED_RSS_MB = 400.0
SHIPPED_CPU_SHARE = 0.3
SHIPPED_DONE_SHARE = 0.98
FLOOR_GOAL = 1.5  # the provider's CPU per status GET at most 1.5x the cheaper client library (httpx, aiohttp)


def keeps_up(r: dict[str, Any] | None) -> bool:
    if not r or "polls" not in r:
        return False
    return bool(r["polls"] >= KEEP_UP * r["polls_scheduled"])


def per_poll_ratio(own: dict[str, Any] | None, base: dict[str, Any] | None) -> float | None:
    """CPU per poll of ``own`` / of ``base``; None if ``own`` fell behind its schedule.

    A baseline that answered no poll at all in the window costs infinitely much per poll (ratio 0).
    """
    if not own or not base or not keeps_up(own) or "polls" not in base:
        return None
    if base["polls"] == 0:
        return 0.0
    return round(own["cpu_s_per_1000_polls"] / base["cpu_s_per_1000_polls"], 4)


def done_share(r: dict[str, Any] | None) -> float | None:
    """Polls done / polls the schedule asked for in the window (None without a result)."""
    if not r or "polls" not in r or not r.get("polls_scheduled"):
        return None
    return round(r["polls"] / r["polls_scheduled"], 4)


def floor_verdict(floor: dict[str, Any]) -> dict[str, Any] | None:
    """The provider hook's CPU per status GET (10 in flight) as a ratio to the cheaper bare library's.

    The ratio is :mod:`benchmarks.http_floor`'s paired one (the median of the per-round ratios).
    """
    cheapest = floor.get("cheapest_library", {}).get("in_flight_10")
    ratio = floor.get("provider_ratio", {}).get("in_flight_10", {}).get(cheapest)
    if ratio is None:
        return None
    return {"cheapest": cheapest, "ratio": ratio, "met": ratio <= FLOOR_GOAL}


def goals(results: dict[str, Any]) -> list[dict[str, Any]]:
    out: list[dict[str, Any]] = []
    p = results.get("parse", {})
    if "ratio_inside" in p:
        out.append(
            {
                "goal": "parse: water_bodies.py at most 1.10x the sdk-only DAG (fresh process, median)",
                "target": 1.10,
                "measured": p["ratio_inside"],
                "met": p["ratio_inside"] <= 1.10,
            }
        )
    t = results.get("triggerer", {})
    if t.get("results"):
        by = {
            (r["n"], r["variant"]): r
            for r in t["results"]
            if "error" not in r and r.get("scenario") == "steady"
        }
        top = max(t["ns"]) if t["ns"] else None
        provider, before = by.get((top, "provider")), by.get((top, "before"))
        ceiling = t.get("max_poll_interval_s", 10.0)
        for key, what, target in (
            ("cpu_share", "within 0.5 of a core (CPU s / wall s)", 0.5),
            ("peak_rss_mb", "within 300 MB peak RSS", 300),
        ):
            if top is None:
                break
            value = provider[key] if provider else None
            old = before[key] if before else None
            out.append(
                {
                    "goal": f"triggerer: {top:,} jobs at a {ceiling:g} s ceiling {what}",
                    "target": target,
                    "measured": value,
                    "met": value is not None and value <= target,
                    "measured_before_fix": old,
                    "met_before_fix": old is not None and old <= target,
                }
            )
        ratios: dict[int, float | None] = {}
        before_ratios: dict[int, float | None] = {}
        for n in t["ns"]:
            base = by.get((n, "baseline"))
            for variant_key, store in (("provider", ratios), ("before", before_ratios)):
                store[n] = per_poll_ratio(by.get((n, variant_key)), base)
        if t["ns"]:
            out.append(
                {
                    "goal": "triggerer: at least 3x less CPU per poll than a new HTTP session per poll, "
                    "every N (and keeping up: at least 90% of the scheduled polls done)",
                    "target": round(1 / 3, 4),
                    "measured": ratios,
                    "met": all(v is not None and v <= 1 / 3 for v in ratios.values()),
                    "measured_before_fix": before_ratios,
                    "met_before_fix": all(v is not None and v <= 1 / 3 for v in before_ratios.values()),
                }
            )
        out.extend(shipped_goals(t))
        floor = floor_verdict(t.get("http_floor", {}))
        if floor:
            out.append(
                {
                    "goal": f"triggerer: the provider's CPU per status GET at most {FLOOR_GOAL:g}x the "
                    "cheaper client library's (httpx, aiohttp; 10 in flight)",
                    "target": FLOOR_GOAL,
                    "measured": floor["ratio"],
                    "cheapest_library": floor["cheapest"],
                    "met": floor["met"],
                }
            )
    s = results.get("polling", {})
    if "goals" in s:
        out.append(
            {
                "goal": "polling: worst-case detection latency at most max(20% of the duration, 1 s)",
                "target": 1.0,
                "measured": s["adaptive"]["max_share_of_latency_bound"],
                "met": s["goals"]["latency_met"],
            }
        )
        out.append(
            {
                "goal": "polling: at most half the fixed 10 s loop's polls over the 5 s-1 h mix",
                "target": 0.5,
                "measured": s["polls_ratio"],
                "met": s["goals"]["polls_met"],
            }
        )
    return out


def shipped_goals(t: dict[str, Any]) -> list[dict[str, Any]]:
    """Item 3's goals on the shipped-ceiling run: peak RSS, CPU share, due polls done."""
    n = t.get("shipped_n")
    if not n:
        return []
    runs = t.get("results", [])
    r = next((x for x in runs if x.get("scenario") == "shipped" and x.get("variant") == "provider"), None)
    ok = r is not None and "error" not in r
    ceiling = t.get("shipped_max_poll_interval_s")
    what = f"triggerer: {n:,} concurrent triggers at the shipped {ceiling:g} s ceiling"
    rss = r.get("peak_rss_mb") if ok and r else None
    share = r.get("cpu_share") if ok and r else None
    done = done_share(r) if ok else None
    return [
        {
            "goal": f"{what} within {SHIPPED_RSS_MB:g} MB peak RSS",
            "target": SHIPPED_RSS_MB,
            "measured": rss,
            "met": rss is not None and rss <= SHIPPED_RSS_MB,
        },
        {
            "goal": f"{what} within {SHIPPED_CPU_SHARE:g} of a core (CPU s / wall s)",
            "target": SHIPPED_CPU_SHARE,
            "measured": share,
            "met": share is not None and share <= SHIPPED_CPU_SHARE,
        },
        {
            "goal": f"{what} with at least {100 * SHIPPED_DONE_SHARE:g}% of the due polls done",
            "target": SHIPPED_DONE_SHARE,
            "measured": done,
            "met": done is not None and done >= SHIPPED_DONE_SHARE,
        },
    ]
