"""Pause Python's cyclic garbage collector while the report reads and writes a run's files.

Why: decoding 100,000 result rows and 100,000 answers allocates millions of dicts and lists that all stay alive
until the report is written. CPython starts a collection every few hundred new containers, and every so often a
full one that walks *every* live object — so the collector spends ever longer re-proving that nothing read so far is
garbage: 35–40 % of the time of ``json`` decoding here (2.3 → 1.4 s for ``responses/`` at 100,000 answers, on the
2-core benchmark machine). Nothing the report builds forms reference cycles that need the collector; reference
counting frees it as usual, and any cycle is collected once the collector runs again after the pause.

``gc.disable``/``gc.enable`` rather than ``gc.freeze``: freezing is process-wide and permanent until
``gc.unfreeze``, which would also thaw what the pytest plugin froze on purpose.
"""

from __future__ import annotations

import gc
from collections.abc import Iterator
from contextlib import contextmanager


@contextmanager
def gc_paused() -> Iterator[None]:
    """``with gc_paused(): ...`` — the collector is off inside (if it was on) and back on afterwards, even on error.
    Nested uses are fine: only the outermost one turns it back on."""
    was_enabled = gc.isenabled()
    gc.disable()
    try:
        yield
    finally:
        if was_enabled:
            gc.enable()
