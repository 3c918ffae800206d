"""The collector of `flowplane serve` and `flowplane worker` (flowplane.cli.gc_tuning)."""

from __future__ import annotations

import gc
import os
import subprocess
import sys
from collections.abc import Iterator

import pytest

from flowplane.cli.gc_tuning import tune_for_serving
from flowplane.settings import Settings


@pytest.fixture
def collector() -> Iterator[None]:
    saved = gc.get_threshold()
    yield
    gc.set_threshold(*saved)
    gc.unfreeze()


def test_tuning_freezes_the_heap_and_raises_the_young_threshold(collector: None) -> None:
    gen1, gen2 = gc.get_threshold()[1:]
    tune_for_serving(50_000)
    assert gc.get_threshold() == (50_000, gen1, gen2)
    assert gc.get_freeze_count() > 1000  # the modules and objects of this test process


def test_zero_keeps_pythons_defaults(collector: None) -> None:
    before, frozen = gc.get_threshold(), gc.get_freeze_count()
    tune_for_serving(0)
    assert gc.get_threshold() == before
    assert gc.get_freeze_count() == frozen


def test_the_setting_defaults_and_bounds() -> None:
    assert Settings().gc_threshold == 50_000
    with pytest.raises(ValueError):
        Settings(gc_threshold=-1)


def test_a_cycle_is_still_collected_after_tuning() -> None:
    # A fresh interpreter: the tuning is process-wide.
    code = (
        "import gc, weakref\n"
        "from flowplane.cli.gc_tuning import tune_for_serving\n"
        "tune_for_serving(1000)\n"
        "class Node: pass\n"
        "a = Node(); a.me = a; ref = weakref.ref(a); del a\n"
        "for _ in range(5000): [[] for _ in range(3)]\n"
        "gc.collect(0)\n"
        "print(ref() is None, gc.get_threshold()[0])\n"
    )
    out = subprocess.run(
        [sys.executable, "-c", code], capture_output=True, text=True, check=True, env=os.environ
    )
    assert out.stdout.split() == ["True", "1000"]
