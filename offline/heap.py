"""Keep Python's full garbage collections out of request latency.

A full (generation 2) collection walks every tracked object in the process and
holds the GIL while it does: in the runtime and in moto, whose heaps hold
botocore's service models, moto's backends and the app's modules, one took
30-70 ms and stalled every request in flight (measured with ``gc.callbacks``
during ``python -m bench reference``). On AWS nothing of the kind happens:
each Lambda instance is its own small process and DynamoDB/SQS are not Python.

``gc.freeze()`` moves every object tracked so far into a permanent generation
that later collections skip, so a full collection only walks what was created
since. The long-lived heap is built while the process warms up (imports,
clients, the emulator's backends on their first requests), so it is frozen a
few times during the first minute and then left alone. ``freeze()`` does not
collect; cyclic garbage frozen with the rest is kept, which during warm-up is
a few kilobytes at most.
"""

from __future__ import annotations

import gc
import threading
import time

__all__ = ["WARMUP_FREEZES_S", "freeze_during_warmup"]

WARMUP_FREEZES_S = (0.0, 5.0, 15.0, 30.0, 60.0)


def freeze_during_warmup(delays_s: tuple[float, ...] = WARMUP_FREEZES_S) -> threading.Thread:
    """Freeze the heap now and at each of `delays_s` (seconds from now), from a daemon thread."""

    def run() -> None:
        elapsed = 0.0
        for delay in sorted(delays_s):
            time.sleep(max(0.0, delay - elapsed))
            elapsed = delay
            gc.freeze()

    thread = threading.Thread(target=run, name="offline-heap-freeze", daemon=True)
    thread.start()
    return thread
