"""The load plan: validation, the stage timeline, seeded prompt order and open-loop arrivals, no secrets."""

from __future__ import annotations

import json
from pathlib import Path

import numpy as np
import pytest
from hypothesis import given
from hypothesis import strategies as st

from conformance.endpoints.config import EndpointConfig
from conformance.goldens.model import Case
from conformance.load.plan import (
    LoadPlan,
    OpenLoop,
    PlanError,
    Stage,
    arrival_schedule,
    build_body,
    chat_url,
    prompt_order,
    stage_at,
)
from conformance.load.runner import load_plan, run_load

CASES = [Case(system="s", set_name="set", id=f"c{i}", messages=({"role": "user", "content": f"q{i}"},),
              params={"temperature": 0, "max_tokens": 64}) for i in range(3)]


def endpoint(**kw: object) -> EndpointConfig:
    base = {"name": "cand", "base_url": "http://127.0.0.1:9/v1", "model": "m"}
    return EndpointConfig(**{**base, **kw})  # type: ignore[arg-type]


@pytest.mark.parametrize(("raw", "problem"), [
    ({"users": 0, "duration_s": 5}, "users ≥ 1"),
    ({"users": 2}, "duration_s"),
    ({"users": 2, "duration_s": 0}, "duration_s"),
    ({"users": 2, "duration_s": 5, "rate_rps": -1}, "rate_rps"),
    ({"users": 2, "duration_s": 5, "ramp": 1}, "unknown key"),
])
def test_stage_validation_names_the_stage_and_the_problem(raw: dict[str, float], problem: str) -> None:
    with pytest.raises(PlanError, match=problem) as err:
        Stage.from_dict(raw, 3)
    assert "load.stages[3]" in str(err.value)


def test_spawn_rate_defaults_to_all_users_at_once() -> None:
    assert Stage.from_dict({"users": 8, "duration_s": 5}).spawn_rate == 8.0


@given(st.lists(st.floats(0.1, 100), min_size=1, max_size=6), st.floats(0, 700))
def test_stage_at_walks_the_timeline(durations: list[float], t: float) -> None:
    stages = [Stage(1, d) for d in durations]
    i = stage_at(stages, t)
    ends = np.cumsum(durations)
    if t >= ends[-1]:
        assert i is None
    else:
        assert i is not None and (i == 0 or t >= ends[i - 1]) and t < ends[i]


@pytest.mark.parametrize("url", [None, "", "127.0.0.1:8000/v1", "ftp://x/v1", "http:///v1"])
def test_a_load_target_must_be_explicit(url: str | None) -> None:
    with pytest.raises(PlanError):
        chat_url(url)
    assert chat_url("http://127.0.0.1:8000/v1/") == "http://127.0.0.1:8000/v1/chat/completions"


def test_body_streams_with_usage_and_ignore_eos_only_when_asked() -> None:
    req = CASES[0].request()
    body = build_body(req, "m", extra_body={"top_k": 5})
    assert body["stream"] is True and body["stream_options"] == {"include_usage": True}
    assert body["model"] == "m" and body["top_k"] == 5 and body["max_tokens"] == 64 and "ignore_eos" not in body
    fixed = build_body(req, "m", max_tokens=128, ignore_eos=True)
    assert fixed["max_tokens"] == 128 and fixed["ignore_eos"] is True


@given(st.integers(0, 50), st.integers(0, 2**32 - 1))
def test_prompt_order_is_a_seeded_permutation(n: int, seed: int) -> None:
    order = prompt_order(n, seed)
    assert sorted(order) == list(range(n)) and order == prompt_order(n, seed)


@pytest.mark.parametrize("arrival", ["poisson", "gamma"])
def test_arrivals_are_seeded_in_their_stage_and_near_the_rate(arrival: str) -> None:
    stages = [Stage(4, 20.0, rate_rps=5.0), Stage(8, 20.0, rate_rps=20.0)]
    ol = OpenLoop.from_dict({"arrival": arrival, "burstiness": 0.5})
    sched = arrival_schedule(stages, ol, seed=9)
    assert sched == arrival_schedule(stages, ol, seed=9) != arrival_schedule(stages, ol, seed=10)
    times = [t for t, _ in sched]
    assert times == sorted(times)
    assert all(stage_at(stages, t) == s for t, s in sched)
    counts = [sum(s == i for _, s in sched) for i in range(2)]
    # expected 100 and 400; bursty gamma (cv ≈ 1.4) still lands within ±40%
    assert 60 <= counts[0] <= 140 and 240 <= counts[1] <= 560


def test_gamma_burstiness_makes_gaps_more_variable() -> None:
    stages = [Stage(4, 200.0, rate_rps=10.0)]

    def cv(ol: OpenLoop) -> float:
        gaps = np.diff([t for t, _ in arrival_schedule(stages, ol, seed=1)])
        return float(gaps.std() / gaps.mean())

    assert cv(OpenLoop("poisson")) == pytest.approx(1.0, abs=0.1)
    assert cv(OpenLoop("gamma", 0.25)) > 1.6


def test_open_loop_needs_rates_and_known_arrivals() -> None:
    with pytest.raises(PlanError, match="rate_rps"):
        load_plan(CASES, endpoint(), [{"users": 2, "duration_s": 1}], Path("raw"), open_loop={})
    with pytest.raises(PlanError, match="arrival"):
        OpenLoop.from_dict({"arrival": "uniform"})


def test_open_loop_refuses_an_unknown_number_of_processes(tmp_path: Path) -> None:
    stages = [{"users": 2, "duration_s": 1, "rate_rps": 3}]
    with pytest.raises(PlanError, match="explicit process count"):
        run_load(CASES, endpoint(), stages, tmp_path, open_loop={}, processes=-1)
    assert not (tmp_path / "plan.json").exists()


def test_plan_round_trips_and_holds_no_secret(tmp_path: Path, monkeypatch: pytest.MonkeyPatch) -> None:
    monkeypatch.setenv("PLAN_TEST_KEY", "sk-very-secret")
    ep = endpoint(api_key_env="PLAN_TEST_KEY", extra_body={"top_k": 1})
    plan = load_plan(CASES, ep, [{"users": 2, "duration_s": 1, "rate_rps": 3}], tmp_path / "raw", seed=4,
                     open_loop={"arrival": "gamma", "burstiness": 2}, max_tokens=32, ignore_eos=True)
    path = plan.write(tmp_path / "plan.json")
    assert LoadPlan.read(path) == plan
    text = path.read_text()
    assert "sk-very-secret" not in text and json.loads(text)["api_key_env"] == "PLAN_TEST_KEY"
    assert [r.case_id for r in plan.requests] == ["c0", "c1", "c2"]
    assert all(r.body["max_tokens"] == 32 and r.body["ignore_eos"] for r in plan.requests)
