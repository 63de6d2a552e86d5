"""When to poll a job next: quick first checks for short jobs, backing off to a ceiling.

The interval grows with the job's age (``ratio`` of the time elapsed since submission), so a job
that ends just after a poll is noticed within ``ratio`` of its duration (never sooner than
``min_interval``, never later than ``max_interval``). Long jobs are polled a few dozen times
instead of every ten seconds.
"""

from __future__ import annotations

from dataclasses import dataclass

__all__ = ["PollSchedule", "task_poll_intervals"]

# Defaults measured in benchmarks/ (polling): a job is noticed within 20% of its duration, with
# under half the polls of the seed's fixed 10 s loop over jobs of 5 s to 1 h.
DEFAULT_MIN_POLL_INTERVAL = 1.0
DEFAULT_MAX_POLL_INTERVAL = 120.0
DEFAULT_POLL_RATIO = 0.2


@dataclass(frozen=True)
class PollSchedule:
    """
    An adaptive polling schedule.

    :param min_interval: the shortest wait between two polls, in seconds.
    :param max_interval: the longest wait between two polls (the ceiling), in seconds.
    :param ratio: the wait as a share of the time elapsed since the job was submitted.
    """

    min_interval: float = DEFAULT_MIN_POLL_INTERVAL
    max_interval: float = DEFAULT_MAX_POLL_INTERVAL
    ratio: float = DEFAULT_POLL_RATIO

    def __post_init__(self) -> None:
        if self.min_interval <= 0 or self.max_interval < self.min_interval:
            raise ValueError(
                f"poll intervals must satisfy 0 < min_interval <= max_interval, got "
                f"{self.min_interval} and {self.max_interval}"
            )
        if not 0 < self.ratio <= 1:
            raise ValueError(f"poll ratio must be in (0, 1], got {self.ratio}")

    def next_interval(self, elapsed: float) -> float:
        """Seconds to wait before the next poll, ``elapsed`` seconds after submission."""
        return min(self.max_interval, max(self.min_interval, elapsed * self.ratio))


def task_poll_intervals(poll_interval: float, max_poll_interval: float) -> tuple[float, float]:
    """
    A task's poll intervals, refused when the DAG is parsed if the trigger could not use them.

    :raises ValueError: naming the parameters.
    """
    try:
        PollSchedule(poll_interval, max_poll_interval)
    except (TypeError, ValueError):
        raise ValueError(
            "poll_interval and max_poll_interval must satisfy 0 < poll_interval <= max_poll_interval, "
            f"got {poll_interval!r} and {max_poll_interval!r}"
        ) from None
    return poll_interval, max_poll_interval
