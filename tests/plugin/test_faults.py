"""Runs against fault-injecting servers: retired baselines, failing candidates, interrupted runs."""

from __future__ import annotations

import json
import signal
import subprocess
import sys
import threading
import time

import pytest

from conformance.cli import main as cli
from conformance.testing.faultserver import Behaviour, FaultServer
from tests.plugin.conftest import make_suite_repo, two_endpoints

INFRASTRUCTURE = 75


def endpoints(old: FaultServer, new: FaultServer, **extra: str) -> str:
    return two_endpoints(old, new, **{"max_retries": "1", "backoff_s": "0.01", **extra})


def test_retired_baseline_falls_back_to_recordings(pytester: pytest.Pytester) -> None:
    with FaultServer(Behaviour(text="old answer"), models=["m"]) as old, FaultServer(models=["m"]) as new:
        repo = make_suite_repo(pytester.path, endpoints(old, new))
        assert cli(["--root", str(repo), "record", "--system", "demo", "--endpoint", "old", "--quiet"]) == 0
    with FaultServer(models_behaviour=Behaviour(status=503)) as retired, FaultServer(models=["m"]) as new:
        (repo / "endpoints.yaml").write_text(endpoints(retired, new))
        result = pytester.runpytest_subprocess("suites/demo")
        result.assert_outcomes(passed=4)
        result.stdout.fnmatch_lines(["*baseline 'old' is retired*answers 503*falling back to its recordings*"])
        assert not [r for r in retired.requests if r.path.endswith("/chat/completions")]
        # without recordings: stop before any test, and say how to record
        (repo / "goldens" / "demo" / "recordings" / "old.jsonl").unlink()
        result = pytester.runpytest_subprocess("suites/demo")
        assert result.ret == INFRASTRUCTURE
        result.stdout.fnmatch_lines(["*infrastructure: endpoint 'old': *answers 503*no recordings exist for demo*"
                                     "conformance record --system demo --endpoint old*"])


def test_recording_with_other_sampling_params_is_refused(pytester: pytest.Pytester) -> None:
    with FaultServer(models=["m"]) as old, FaultServer(models=["m"]) as new:
        repo = make_suite_repo(pytester.path, endpoints(old, new))
        assert cli(["--root", str(repo), "record", "--system", "demo", "--endpoint", "old", "--quiet"]) == 0
        golden = repo / "goldens" / "demo" / "smoke.yaml"
        golden.write_text(golden.read_text().replace("max_tokens: 6", "max_tokens: 6, temperature: 0.7"))
        result = pytester.runpytest_subprocess("suites/demo", "--baseline", "recorded", "-rsx")
        # nothing could be compared: never the candidate's regression — skipped cases, an infrastructure outcome
        result.assert_outcomes(passed=0, skipped=3, xfailed=1)
        assert result.ret == INFRASTRUCTURE
        result.stdout.fnmatch_lines(["*≈ demo.availability.baseline_error_rate 1 <= 0 (n=3*BASELINE_FAILS*baseline "
                                     "failed 3/3: recording_params×3 (alpha, beta, gamma)*"])
        result.stdout.fnmatch_lines(["*recording_params*made with sampling params*temperature*0.7*refusing*"])


def test_failing_candidate_is_reported_per_case_and_gated(pytester: pytest.Pytester) -> None:
    def flaky(req: dict, n: int) -> Behaviour:  # type: ignore[type-arg]
        text = req["messages"][-1]["content"]
        if "colour" in text:
            return Behaviour(status=500)
        if "three" in text:
            return Behaviour(truncate_after_chunks=2)
        return Behaviour()

    with FaultServer(models=["m"]) as old, FaultServer(flaky, models=["m"]) as new:
        make_suite_repo(pytester.path, endpoints(old, new))
        result = pytester.runpytest_subprocess("suites/demo")
    result.assert_outcomes(passed=1, failed=3)
    result.stdout.fnmatch_lines([
        "*candidate new: server_error after 2 attempts: HTTP 500*",
        "*candidate new: truncated_stream after 2 attempts*",
        "*✗ demo.availability.error_rate 0.6667 <= 0 (n=3, 95% CI*candidate failed 2/3: server_error×1, "
        "truncated_stream×1 (beta, gamma); infrastructure faults only*",
        "*demo: INFRASTRUCTURE*missing answers: candidate:server_error×1, candidate:truncated_stream×1*",
        "*outcome: infrastructure (exit code 75)*",
    ])
    # an outage is not "the candidate regressed": the exit code says retry, not block
    assert result.ret == INFRASTRUCTURE


GOLDEN_10 = "set: slow\nowner: '@t'\ncases:\n" + "".join(f"  - {{id: c{i:02d}, prompt: 'q{i}'}}\n" for i in range(10))


@pytest.mark.parametrize("sig", [signal.SIGINT, signal.SIGKILL], ids=["ctrl-c", "sigkill"])
def test_interrupted_run_keeps_responses_and_resumes(pytester: pytest.Pytester, sig: signal.Signals) -> None:
    # The baseline answers three cases, then holds every later answer until the interrupted run has exited: the
    # interrupt provably lands with answers in flight, however fast or slow the machine is.
    released = threading.Event()

    def three_then_held(req: dict, n: int) -> Behaviour:  # type: ignore[type-arg]
        return Behaviour() if n < 3 else Behaviour(hold=released)

    with FaultServer(three_then_held, models=["m"]) as old, FaultServer(models=["m"]) as new:
        repo = make_suite_repo(pytester.path, endpoints(old, new, max_concurrency="1"), golden=GOLDEN_10)
        cmd = [sys.executable, "-m", "pytest", "suites/demo", "--conformance-run-id", "r1", "-p", "no:cacheprovider"]
        proc = subprocess.Popen(cmd, cwd=repo, stdout=subprocess.PIPE, stderr=subprocess.STDOUT)
        responses = repo / "reports" / "r1" / "responses" / "old.main.jsonl"

        def chats() -> int:
            return sum(r.path.endswith("/chat/completions") for r in old.requests)

        def three_kept_and_one_held() -> bool:
            return chats() >= 4 and responses.exists() and len(responses.read_text().splitlines()) >= 3

        try:
            deadline = time.monotonic() + 60
            while not three_kept_and_one_held() and time.monotonic() < deadline:
                time.sleep(0.05)
            assert three_kept_and_one_held()
            proc.send_signal(sig)  # Ctrl-C, or a kill that leaves no chance to clean up
            proc.communicate(timeout=60)
        finally:
            released.set()
            if proc.poll() is None:
                proc.kill()
                proc.communicate()
        kept = [json.loads(line) for line in responses.read_text().splitlines()]
        assert len(kept) == 3 and all(r["fault"] is None for r in kept)  # the held answers never arrived
        asked_before = chats()
        result = pytester.runpytest_subprocess("suites/demo", "--resume", "r1")
        result.assert_outcomes(passed=11)
        # the resumed run asked the baseline only for what the interrupted one had not received
        assert chats() - asked_before == 10 - len(kept)


def test_a_gateway_listing_the_model_but_503ing_chat_is_retired_at_preflight(pytester: pytest.Pytester) -> None:
    """Finding 6 of the verdict-trust issue: retirement was only detected through GET /v1/models, so a gateway
    that still listed the model gave 503 faults and label "flips" from <invalid> instead of the recordings."""
    with FaultServer(Behaviour(text="old answer"), models=["m"]) as old, FaultServer(models=["m"]) as new:
        repo = make_suite_repo(pytester.path, endpoints(old, new))
        assert cli(["--root", str(repo), "record", "--system", "demo", "--endpoint", "old", "--quiet"]) == 0
    with FaultServer(Behaviour(status=503), models=["m"]) as gateway, FaultServer(models=["m"]) as new:
        (repo / "endpoints.yaml").write_text(endpoints(gateway, new))
        result = pytester.runpytest_subprocess("suites/demo")
        asked = [r for r in gateway.requests if r.path.endswith("/chat/completions")]
    result.assert_outcomes(passed=4)
    result.stdout.fnmatch_lines(["*baseline 'old' is retired*503 on a one-token chat request*"
                                 "falling back to its recordings*"])
    assert asked == []  # the probe told: no case was sent to the retired baseline


def test_a_baseline_retired_mid_run_falls_back_to_recordings(pytester: pytest.Pytester) -> None:
    """The probe still answered at preflight; then every chat request of the suite got 503."""
    with FaultServer(Behaviour(text="old answer"), models=["m"]) as old, FaultServer(models=["m"]) as new:
        repo = make_suite_repo(pytester.path, endpoints(old, new))
        assert cli(["--root", str(repo), "record", "--system", "demo", "--endpoint", "old", "--quiet"]) == 0
    with FaultServer(Behaviour(status=503), models=["m"], probe_behaviour=Behaviour()) as retiring, \
            FaultServer(models=["m"]) as new:
        (repo / "endpoints.yaml").write_text(endpoints(retiring, new))
        result = pytester.runpytest_subprocess("suites/demo", "-rA")
    result.assert_outcomes(passed=4)
    assert result.ret == 0
    result.stdout.fnmatch_lines(["*note: baseline 'old' answered 503 to every case of demo: retired since preflight"
                                 " — compared with its recordings (old.jsonl) instead*"])
    # without recordings the 503s are what they are: an infrastructure outcome, never a regression
    (repo / "goldens" / "demo" / "recordings" / "old.jsonl").unlink()
    with FaultServer(Behaviour(status=503), models=["m"], probe_behaviour=Behaviour()) as retiring, \
            FaultServer(models=["m"]) as new:
        (repo / "endpoints.yaml").write_text(endpoints(retiring, new))
        result = pytester.runpytest_subprocess("suites/demo")
    assert result.ret == INFRASTRUCTURE
    result.stdout.fnmatch_lines(["*it looks retired, and there are no recordings*"])
