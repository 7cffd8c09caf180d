"""The length of a minutes-bounded run, fixed once from its measured speed.

A run given ``minutes`` times its steps after a short warm-up (compilation, cuDNN's kernel
search), then fixes ``total_steps`` once, so that the lr milestones fall where they should.
"""
from __future__ import annotations

import time

from .distributed import Dist, broadcast_int, sync

WARMUP_STEPS = 5  # steps run before the timing starts
CALIBRATION_STEPS = 100  # steps timed (after the warm-up) to plan a minutes-bounded run


def plan_total_steps(step: int, rate: float, seconds_left: float, eval_seconds: float,
                     eval_every: int, cap: int) -> int:
    """Steps that fit in ``seconds_left`` at ``rate`` it/s, leaving time for the evaluations
    still due; never more than ``cap``. Fixed once, so the lr milestones scale with it."""
    budget = max(seconds_left * 0.97, 0.0)
    steps = int(rate * budget)
    for _ in range(3):  # the evaluations' time depends on how many steps remain
        evals = steps // eval_every + 1
        steps = int(rate * max(budget - evals * eval_seconds, 0.0))
    return min(cap, step + max(steps, 1))


class TimeBudget:
    """The deadline of a run (``minutes`` after ``start``; none when ``minutes`` is unset) and
    the one measurement of its speed that plans its length.

    The timing starts ``WARMUP_STEPS`` after ``first_step`` and ends after
    ``CALIBRATION_STEPS`` more: counted in steps, so that every DDP rank plans at the same
    step. A single process also stops timing after a tenth of the minutes (a slow CPU run)."""

    def __init__(self, minutes: float | None, info: Dist, first_step: int, start: float,
                 eval_seconds: float, eval_every: int) -> None:
        self.minutes, self.info, self.first_step = minutes, info, first_step
        self.deadline = start + minutes * 60 if minutes else None
        self.eval_seconds, self.eval_every = eval_seconds, eval_every
        self.timed_from: tuple[int, float] | None = None  # (step, time) the timing started at
        self.rate: float | None = None  # measured it/s, once planned

    def plan(self, step: int, total_steps: int) -> int | None:
        """Called after each step until it answers: the run's total steps, fixed from the
        measured speed (the same on every rank); None while there is nothing to fix yet."""
        if self.deadline is None:
            return None
        if step == self.first_step + WARMUP_STEPS:
            sync(self.info.device)
            self.timed_from = (step, time.perf_counter())
            return None
        if self.timed_from is None or not self._timed_enough(step):
            return None
        sync(self.info.device)
        from_step, from_time = self.timed_from
        now = time.perf_counter()
        self.rate = (step - from_step) / (now - from_time)
        total = plan_total_steps(step, self.rate, self.deadline - now, self.eval_seconds, self.eval_every,
                                 total_steps)
        return broadcast_int(total, self.info)

    def _timed_enough(self, step: int) -> bool:
        from_step, from_time = self.timed_from
        if step - from_step >= CALIBRATION_STEPS:
            return True
        return self.info.world == 1 and time.perf_counter() - from_time >= 0.1 * self.minutes * 60

    def time_is_up(self) -> bool:
        """Whether a single process has passed the deadline (DDP ranks end at the planned step)."""
        return self.deadline is not None and self.info.world == 1 and time.perf_counter() > self.deadline
