"""Locust never outlives the process that started it: `conformance load` or pytest `--load` ended by SIGTERM (a CI
cancel), SIGINT, SIGHUP or SIGKILL takes the whole Locust process group with it.

Every wait is on a condition with a bound: the Locust child in the process table, its first records on disk, the
parent's exit, the group's last live process."""

from __future__ import annotations

import contextlib
import os
import signal
import subprocess
import sys
import time
from collections.abc import Callable, Iterator
from pathlib import Path

import pytest

from conformance.load.lifetime import PARENT_ENV, bind_to_parent, signals_unwind
from conformance.testing.faultserver import Behaviour, FaultServer
from tests.load.test_runner_faults import group_alive
from tests.plugin.conftest import make_suite_repo, two_endpoints

#: One long stage: whatever the test does not stop keeps loading the endpoint for two minutes.
SUITE = "system: demo\nload:\n  max_tokens: 8\n  stages: [{users: 1, spawn_rate: 1, duration_s: 120}]\n"
SIGNALS = [signal.SIGTERM, signal.SIGINT, signal.SIGHUP, signal.SIGKILL]
needs_proc = pytest.mark.skipif(not Path("/proc/self/stat").is_file(), reason="finds Locust in /proc (Linux)")


def wait_for(condition: Callable[[], object], timeout: float, what: str) -> None:
    deadline = time.monotonic() + timeout
    while not condition():
        if time.monotonic() > deadline:
            raise AssertionError(f"timed out after {timeout:g} s waiting for {what}")
        time.sleep(0.05)


def locust_children(parent: int) -> list[int]:
    """Live processes whose parent is ``parent`` and whose command line runs Locust (Linux /proc)."""
    found = []
    for stat in Path("/proc").glob("[0-9]*/stat"):
        try:
            fields = stat.read_text().rsplit(")", 1)[1].split()
            cmdline = (stat.parent / "cmdline").read_bytes()
        except (OSError, IndexError):
            continue
        if int(fields[1]) == parent and fields[0] != "Z" and b"locust" in cmdline:
            found.append(int(stat.parent.name))
    return found


def records_written(root: Path) -> bool:
    return any(p.stat().st_size > 0 for p in root.rglob("records-*.jsonl"))


@contextlib.contextmanager
def load_parent(cmd: list[str], cwd: Path) -> Iterator[tuple[subprocess.Popen[bytes], int]]:
    """Start the parent, wait until its Locust child is loading; yields (parent, Locust group). Afterwards nothing
    of either is left running, whatever the test asserted."""
    parent = subprocess.Popen(cmd, cwd=cwd, stdout=subprocess.DEVNULL, stderr=subprocess.PIPE,
                              stdin=subprocess.DEVNULL, start_new_session=True)
    group = 0
    try:
        wait_for(lambda: locust_children(parent.pid) or parent.poll() is not None, 120, "the Locust process")
        assert parent.poll() is None, parent.stderr.read().decode() if parent.stderr else ""
        group = locust_children(parent.pid)[0]
        assert os.getpgid(group) == group  # its own session: the group the runner (and we) can stop
        wait_for(lambda: records_written(cwd), 60, "the first load records")
        yield parent, group
    finally:
        for pid, kill in ((parent.pid, os.kill), (group, os.killpg)):
            if pid:
                with contextlib.suppress(ProcessLookupError):
                    kill(pid, signal.SIGKILL)
        parent.communicate()


def _expected_exit(sig: signal.Signals, interrupted: int) -> int:
    return interrupted if sig == signal.SIGINT else -sig


@needs_proc
@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_conformance_load_takes_locust_with_it(tmp_path: Path, sig: signal.Signals) -> None:
    with FaultServer(Behaviour(ttft_ms=20), models=["m"]) as old, FaultServer(models=["m"]) as new:
        repo = make_suite_repo(tmp_path, two_endpoints(old, new))
        (repo / "suites" / "demo" / "suite.yaml").write_text(SUITE)
        cmd = [sys.executable, "-m", "conformance.cli", "load", "--system", "demo", "--out", str(repo / "out"),
               "--quiet", "--no-local-start"]
        with load_parent(cmd, repo) as (parent, group):
            parent.send_signal(sig)
            assert parent.wait(timeout=60) == _expected_exit(sig, 130)  # Ctrl-C: the CLI's "interrupted"
            wait_for(lambda: not group_alive(group), 30, "the Locust group to end")


@needs_proc
@pytest.mark.parametrize("sig", SIGNALS, ids=lambda s: s.name)
def test_pytest_load_takes_locust_with_it(pytester: pytest.Pytester, sig: signal.Signals) -> None:
    with FaultServer(Behaviour(ttft_ms=20), models=["m"]) as old, FaultServer(models=["m"]) as new:
        repo = make_suite_repo(pytester.path, two_endpoints(old, new))
        (repo / "suites" / "demo" / "suite.yaml").write_text(SUITE)
        cmd = [sys.executable, "-m", "pytest", "suites/demo", "--load", "-k", "load", "-p", "no:cacheprovider"]
        with load_parent(cmd, repo) as (parent, group):
            parent.send_signal(sig)
            assert parent.wait(timeout=60) == _expected_exit(sig, pytest.ExitCode.INTERRUPTED)
            wait_for(lambda: not group_alive(group), 30, "the Locust group to end")


_GRANDCHILD = """
import os, time
from conformance.load import lifetime
lifetime.set_parent_death_signal = lambda sig: False  # the watchdog alone, as where prctl does not exist
assert lifetime.bind_to_parent(os.environ)
print(os.getpid(), flush=True)
time.sleep(120)
"""


@needs_proc
def test_a_process_bound_to_a_killed_parent_stops_even_without_prctl() -> None:
    """The middle process is SIGKILLed; its child, bound to it, notices the new parent pid and stops its group."""
    middle_code = ("import os, subprocess, sys; "
                   f"p = subprocess.Popen([sys.executable, '-c', {_GRANDCHILD!r}], start_new_session=True, "
                   f"env={{**os.environ, '{PARENT_ENV}': str(os.getpid())}}); p.wait()")
    middle = subprocess.Popen([sys.executable, "-c", middle_code], stdout=subprocess.PIPE)
    child = 0
    try:
        assert middle.stdout is not None
        child = int(middle.stdout.readline())
        assert group_alive(child)
        middle.kill()
        middle.wait(timeout=30)
        wait_for(lambda: not group_alive(child), 30, "the orphaned child to stop its group")
    finally:
        if child:
            with contextlib.suppress(ProcessLookupError):
                os.killpg(child, signal.SIGKILL)
        middle.kill()
        middle.communicate()


def test_nothing_is_bound_without_a_parent_named() -> None:
    assert bind_to_parent({}) is False and bind_to_parent({PARENT_ENV: "not-a-pid"}) is False


@pytest.mark.skipif(not sys.platform.startswith("linux"), reason="prctl is Linux only")
def test_the_parent_death_signal_can_be_set() -> None:
    code = ("import signal; from conformance.load.lifetime import set_parent_death_signal as s; "
            "print(s(signal.SIGTERM))")
    assert subprocess.run([sys.executable, "-c", code], capture_output=True, text=True, timeout=60).stdout == "True\n"


def test_signals_unwind_restores_the_handlers_it_found() -> None:
    before = {s: signal.getsignal(s) for s in (signal.SIGTERM, signal.SIGHUP)}
    with signals_unwind():
        assert all(signal.getsignal(s) is not before[s] for s in before)
    assert {s: signal.getsignal(s) for s in before} == before
