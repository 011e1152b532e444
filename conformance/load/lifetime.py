"""The Locust process never outlives the process that started it, however that one ends.

Why: the Locust process runs in its own session (so the runner can stop it *and every worker it forked* with one
``killpg``). The flip side is that nothing stops it when its parent dies: a CI job cancelled with SIGTERM left
Locust running under PID 1, loading the endpoint for the rest of its stages. Two halves close that:

- **Parent side** (:func:`signals_unwind`, used by the runner while Locust runs): SIGTERM and SIGHUP unwind the
  parent's stack like Ctrl-C does (:class:`ParentSignal`), so the runner's cleanup stops the group; then the signal
  is delivered again with the handler the process had, so the parent ends exactly as it would have. SIGINT is
  already a KeyboardInterrupt. Signal handlers belong to the main thread; elsewhere only the other half applies.
- **Locust side** (:func:`bind_to_parent`, the first thing the locustfile does): the kernel sends SIGTERM when the
  parent dies (Linux ``prctl(PR_SET_PDEATHSIG)``, set again in every forked worker) — which also covers SIGKILL —
  and a watchdog thread stops the whole group when the parent pid changes (any POSIX system, and the window
  before ``prctl`` ran): SIGTERM so Locust stops its users, SIGKILL after :data:`KILL_GRACE_S`. The parent's pid
  comes in :data:`PARENT_ENV`; without it (Locust started by hand) nothing is bound.
"""

from __future__ import annotations

import _thread
import contextlib
import ctypes
import os
import signal
import sys
import threading
import time
from collections.abc import Callable, Iterator, Mapping
from types import FrameType
from typing import Any

from conformance.errors import ConformanceError

#: Environment variable holding the pid of the process that started Locust (the runner sets it).
PARENT_ENV = "CONFORMANCE_LOAD_PARENT"
#: How often the watchdog looks at the parent pid, and how long the group gets between SIGTERM and SIGKILL.
WATCH_S = 0.25
KILL_GRACE_S = 5.0
_FORWARDED = (signal.SIGTERM, signal.SIGHUP)
_PR_SET_PDEATHSIG = 1
_Handler = Callable[[int, FrameType | None], Any] | int | None


class ParentSignal(BaseException):
    """SIGTERM or SIGHUP reached the parent while Locust ran: unwinds (like KeyboardInterrupt) through the
    runner's cleanup, which stops the process group. A BaseException so that no ``except Exception`` swallows it."""

    def __init__(self, signum: int) -> None:
        super().__init__(signum)
        self.signum = signum


def parent_env() -> dict[str, str]:
    """The environment entry that binds a Locust process started from here to this process."""
    return {PARENT_ENV: str(os.getpid())}


@contextlib.contextmanager
def signals_unwind() -> Iterator[None]:
    """While the block runs, SIGTERM and SIGHUP raise :class:`ParentSignal` in the main thread (once: repeats are
    dropped while the cleanup runs); after the block has unwound, the first one is delivered again with the
    process' own handlers. A signal the process ignores stays ignored."""
    if threading.current_thread() is not threading.main_thread():
        yield
        return
    fired: list[int] = []

    def handler(signum: int, frame: FrameType | None) -> None:
        if not fired:
            fired.append(signum)
            raise ParentSignal(signum)

    previous: dict[signal.Signals, _Handler] = {}
    for sig in _FORWARDED:
        old = signal.getsignal(sig)
        if old is not signal.SIG_IGN:
            previous[sig] = old
            signal.signal(sig, handler)
    try:
        yield
    except ParentSignal as exc:
        _restore(previous)
        signal.raise_signal(exc.signum)  # the default action ends the process here
        raise ConformanceError(f"the load run was stopped by {signal.Signals(exc.signum).name}") from None
    finally:
        _restore(previous)


def _restore(previous: dict[signal.Signals, _Handler]) -> None:
    for sig, old in previous.items():
        signal.signal(sig, old if old is not None else signal.SIG_DFL)
    previous.clear()


def bind_to_parent(environ: Mapping[str, str]) -> bool:
    """In the Locust process: stop the group when the parent named in :data:`PARENT_ENV` is gone (module doc).
    Returns whether it was bound (False: no parent named)."""
    try:
        parent = int(environ.get(PARENT_ENV) or 0)
    except ValueError:
        parent = 0
    if parent <= 0:
        return False
    _bind(parent)
    forking = [os.getpid()]
    os.register_at_fork(before=lambda: forking.__setitem__(0, os.getpid()),
                        after_in_child=lambda: _bind(forking[0]))  # a worker forked by `--processes`
    return True


def _bind(parent: int) -> None:
    set_parent_death_signal(signal.SIGTERM)
    _start_thread(_watch, parent)  # also when the parent is gone already: prctl came too late to tell us


def set_parent_death_signal(sig: int) -> bool:
    """``prctl(PR_SET_PDEATHSIG, sig)``: the kernel signals this process when its parent dies. Linux only;
    False elsewhere or when the call fails."""
    if not sys.platform.startswith("linux"):
        return False
    try:
        libc = ctypes.CDLL(None, use_errno=True)
        return int(libc.prctl(_PR_SET_PDEATHSIG, int(sig), 0, 0, 0)) == 0
    except (OSError, AttributeError):
        return False


def _watch(parent: int) -> None:
    sleep = _original_sleep()
    while os.getppid() == parent:
        sleep(WATCH_S)
    stop_own_group(sleep)


def stop_own_group(sleep: Callable[[float], object] = time.sleep) -> None:
    """SIGTERM this process group (Locust stops its users and quits), SIGKILL it after :data:`KILL_GRACE_S`."""
    group = os.getpgrp()
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGTERM)
    sleep(KILL_GRACE_S)
    with contextlib.suppress(ProcessLookupError):
        os.killpg(group, signal.SIGKILL)


def _start_thread(target: Callable[[int], None], arg: int) -> None:
    """A real OS thread even under gevent's monkey-patching, so the watchdog runs while the hub is busy."""
    start: Callable[..., object] = _thread.start_new_thread
    if "gevent.monkey" in sys.modules:
        from gevent import monkey

        start = monkey.get_original("_thread", "start_new_thread")
    start(target, (arg,))


def _original_sleep() -> Callable[[float], object]:
    if "gevent.monkey" in sys.modules:
        from gevent import monkey

        sleep: Callable[[float], object] = monkey.get_original("time", "sleep")
        return sleep
    return time.sleep
