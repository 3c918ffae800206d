"""The garbage collector of a long-running ``flowplane serve`` or ``flowplane worker``.

CPython collects its youngest generation every 700 allocations of container objects, and
each collection walks every young object still alive. A server allocates a few hundred
objects per request or node run (dicts, lists, coroutine frames) that reference counting
frees almost all of: under load the collector ran ~50 times a second and took ~5-7 % of
the process's CPU (``bench/e2e.py``, issue 19), and an occasional full collection walked
the whole start-up heap (modules, routes, models), a pause of tens of milliseconds.

:func:`tune_for_serving`, once the process has started: collect what start-up left, move
every surviving object out of the collector's reach (``gc.freeze``: they live as long as
the process anyway), and collect generation 0 after ``threshold`` allocations. Cycles are
still found and freed, later and in fewer passes; ``threshold=0`` keeps Python's defaults.
"""

from __future__ import annotations

import gc

__all__ = ["tune_for_serving"]


def tune_for_serving(threshold: int) -> None:
    """Freeze the start-up heap and collect young objects every ``threshold`` allocations
    (0: leave the collector as Python configured it)."""
    if threshold <= 0:
        return
    gc.collect()
    gc.freeze()
    _, gen1, gen2 = gc.get_threshold()
    gc.set_threshold(threshold, gen1, gen2)
