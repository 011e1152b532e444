"""Prototypes of the fixes PERFORMANCE.md proposes, applied by monkeypatching — for measurement only.

Nothing here changes the shipped package on disk: each prototype is a context manager that swaps one internal for
the duration of a measurement, so the benchmark can print "as shipped" and "with the change" side by side. The
libyaml prototype was removed when the fix landed in ``conformance/goldens/yamlsource.py``; the fsync one stays as
a reference point (RunStore now fsyncs at most once a second: "without fsync" shows what that still costs).
"""

from __future__ import annotations

import contextlib
import os
from collections.abc import Iterator
from typing import Any


class _NoFsyncOs:
    """``os`` as ``conformance.runstore`` sees it, minus ``fsync`` (flush per answer stays)."""

    def __getattr__(self, name: str) -> Any:
        return getattr(os, name)

    @staticmethod
    def fsync(fd: int) -> None:
        return None


@contextlib.contextmanager
def runstore_without_fsync() -> Iterator[None]:
    """RunStore.put without ``os.fsync``: every answer is still written and flushed to the OS at once (so a killed
    process loses nothing); only the wait for the disk — a crash of the *machine* — is given up."""
    import conformance.runstore as runstore

    saved = runstore.os
    runstore.os = _NoFsyncOs()  # type: ignore[assignment]
    try:
        yield
    finally:
        runstore.os = saved
