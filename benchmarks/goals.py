"""Goal verdicts from the results of ``python -m benchmarks`` (shared by the CLI and the table)."""

from __future__ import annotations

from typing import Any

KEEP_UP = 0.9  # a variant that does fewer of its scheduled polls has no meaningful CPU per poll


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
        top = max(t["ns"])
        shipped, before = by.get((top, "provider")), by.get((top, "before"))
        for key, what, target in (
            ("cpu_share", "within half a core (CPU s / wall s)", 0.5),
            ("peak_rss_mb", "within 300 MB peak RSS", 300),
        ):
            value = shipped[key] if shipped else None
            old = before[key] if before else None
            out.append(
                {
                    "goal": f"triggerer: {top:,} concurrent jobs {what}",
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
        out.append(
            {
                "goal": "triggerer: at least 3x less CPU per poll than a new HTTP session per poll, every N "
                "(and keeping up: at least 90% of the scheduled polls done)",
                "target": round(1 / 3, 4),
                "measured": ratios,
                "met": all(v is not None and v <= 1 / 3 for v in ratios.values()),
                "measured_before_fix": before_ratios,
                "met_before_fix": all(v is not None and v <= 1 / 3 for v in before_ratios.values()),
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
