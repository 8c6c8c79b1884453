"""The garbage collector of a serving process (issue #15): set once the app is built (``main.serve_app``).

CPython frees almost everything by reference counting; its cyclic collector only finds cycles, yet with its
defaults (a young collection every 700 allocations, a full one every 100 young ones) a worker of this app
ran a full collection about every two seconds under load, each walking the ~220,000 objects of its modules,
routes and schemas (~90 ms), and spent ~6 % of its CPU collecting: ``GET /evaluations`` at 8 connections
was 463 req/s with a latency deviation of 15 ms and a maximum of 110 ms.

:func:`settle` collects once, then freezes what is alive (``gc.freeze``: those objects move to a permanent
generation that later collections do not walk), and collects the young generation every
:data:`GEN0_THRESHOLD` allocations: 526 req/s, deviation 1.5 ms, maximum 40 ms on the same machine in the
same hour (README, issue #15's "The garbage collector of a serving worker"). Cyclic garbage made after
start-up is still collected, just in larger batches; what was frozen is never freed, which for objects
built once at start-up is what they are for.

Only for a process that serves: the tests build an app per test, and freezing each would keep them all.
"""

from __future__ import annotations

import gc

GEN0_THRESHOLD = 20_000  # 5,000 and 50,000 gave within 2 % of it; Python's default is 700


def settle() -> None:
    """Collect, freeze what is alive now and widen the young generation's threshold."""
    gc.collect()
    gc.freeze()
    _, older, oldest = gc.get_threshold()
    gc.set_threshold(GEN0_THRESHOLD, older, oldest)
