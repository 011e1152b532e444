"""Quality under load: answers received during each load stage go through the replay's per-case checks.

Why: a quantized model under batch pressure can answer differently from the same model at rest (other batch
shapes, prefix-cache hits, preemption and recompute). Latency alone would not show it. So from every stage a
seeded sample of the answers is checked exactly like the replay checks a candidate answer — against the
baseline's *at-rest* answer of the same case, with the suite's glossary, schemas, labels and tool definitions —
and the result is set next to the same checks on the same endpoint's at-rest answer of the same cases:

- ``conforming``: sampled answers that pass every check that applies to their case;
- ``conforming_at_rest``: the same cases' replay answers of the same endpoint that do;
- ``drop = (conforming_at_rest − conforming) / checked``: what load cost; the gate ``max_drop`` judges the
  candidate's (the baseline's is reported as the yardstick: the old deployment under the same load);
- ``same_as_rest``: answers whose text equals the at-rest text (a prefix, when either was cut at max_tokens) —
  with greedy decoding anything else is load-dependent numerics, even when the checks still pass.

Comparability: load requests use the load section's ``max_tokens`` (and maybe ``ignore_eos``) so throughput is
comparable; an answer cut by a lower cap than the replay's, or generated past EOS, is not the answer the replay
judged. Such answers are counted as ``cut`` and only compared for ``same_as_rest``; when every sampled answer is
cut, the gate says "insufficient" and names the setting to change, instead of judging prefixes as answers.

Pure: takes load records (as :func:`conformance.load.stats.read_records` returns them), the replay's responses
and the suite data; returns results. No I/O.
"""

from __future__ import annotations

from collections.abc import Mapping, Sequence
from dataclasses import dataclass, field
from typing import Any

import numpy as np

from conformance.checks.result import CheckResult
from conformance.checks.stats import mover_difference, paired_difference_interval
from conformance.evaluate import SuiteEvaluation, not_comparable
from conformance.gates import GateResult, compare
from conformance.goldens.model import Case
from conformance.registry import CheckSpec, applicable
from conformance.response import Response
from conformance.suitedata import CaseView, SuiteData

#: Keys of ``load.quality`` in suite.yaml.
QUALITY_KEYS = frozenset({"sample", "seed", "max_drop"})
#: Answers sampled per stage and endpoint when ``load.quality.sample`` is not given.
DEFAULT_SAMPLE = 8



def quality_checks(data: SuiteData, case: Case) -> list[CheckSpec]:
    """The per-case checks that judge an answer's content (every applicable one but ``answered``)."""
    return [c for c in applicable(data, case) if c.name != "answered"]


@dataclass(frozen=True)
class QualityConfig:
    """``load.quality: {sample, seed, max_drop}``; ``sample: 0`` switches quality under load off."""

    sample: int = DEFAULT_SAMPLE
    seed: int = 0
    max_drop: float | None = None

    @classmethod
    def from_dict(cls, data: Mapping[str, Any] | None, *, where: str = "load.quality") -> QualityConfig:
        data = dict(data or {})
        unknown = set(data) - QUALITY_KEYS
        if unknown:
            raise ValueError(f"{where}: unknown key(s) {sorted(unknown)}; known: {sorted(QUALITY_KEYS)}")
        sample = data.get("sample", DEFAULT_SAMPLE)
        if not isinstance(sample, int) or isinstance(sample, bool) or sample < 0:
            raise ValueError(f"{where}.sample must be a whole number ≥ 0 (answers per stage), got {sample!r}")
        max_drop = data.get("max_drop")
        if max_drop is not None and (isinstance(max_drop, bool) or not isinstance(max_drop, int | float)
                                     or not 0 <= max_drop <= 1):
            raise ValueError(f"{where}.max_drop must be a share between 0 and 1, got {max_drop!r}")
        return cls(sample=sample, seed=int(data.get("seed", 0)),
                   max_drop=None if max_drop is None else float(max_drop))


@dataclass(frozen=True)
class SampleVerdict:
    """One sampled answer: which checks applied, which failed, and whether it equals the at-rest answer.

    ``unchecked`` says why no check verdict exists: ``cut`` (not the answer the replay judged, see module doc),
    ``no_reference`` (no at-rest answer of this case to compare with) or ``no_check`` (no per-case check applies
    to this case — a vacuous pass would inflate conformance)."""

    case_id: str
    same_as_rest: bool | None
    passed: bool | None
    passed_at_rest: bool | None
    failed_checks: tuple[str, ...] = ()
    explanation: str = ""
    unchecked: str | None = None

    def to_dict(self) -> dict[str, Any]:
        return {"case_id": self.case_id, "unchecked": self.unchecked, "same_as_rest": self.same_as_rest,
                "passed": self.passed, "passed_at_rest": self.passed_at_rest,
                "failed_checks": list(self.failed_checks), "explanation": self.explanation}


@dataclass(frozen=True)
class StageQuality:
    """Quality of one endpoint's sampled answers in one stage."""

    role: str
    label: str
    index: int
    answered: int
    verdicts: tuple[SampleVerdict, ...] = field(default=())

    @property
    def name(self) -> str:
        return f"stage{self.index + 1}"

    @property
    def sampled(self) -> int:
        return len(self.verdicts)

    @property
    def checked(self) -> list[SampleVerdict]:
        return [v for v in self.verdicts if v.passed is not None]

    def unchecked(self, reason: str) -> int:
        return sum(v.unchecked == reason for v in self.verdicts)

    @property
    def cut(self) -> int:
        return self.unchecked("cut")

    @property
    def conforming(self) -> int:
        return sum(bool(v.passed) for v in self.checked)

    @property
    def conforming_at_rest(self) -> int:
        return sum(bool(v.passed_at_rest) for v in self.checked)

    @property
    def same_as_rest(self) -> int:
        return sum(bool(v.same_as_rest) for v in self.verdicts)

    @property
    def compared(self) -> int:
        return sum(v.same_as_rest is not None for v in self.verdicts)

    @property
    def drop(self) -> float | None:
        n = len(self.checked)
        return (self.conforming_at_rest - self.conforming) / n if n else None

    def line(self) -> str:
        """``quality stage1 (candidate): 8 of 31 answers sampled · 6/8 conform (at rest 7/8) · 7/8 same text``."""
        parts = [f"quality {self.name} ({self.role}): {self.sampled} of {self.answered} answers sampled"]
        n = len(self.checked)
        if n:
            parts.append(f"{self.conforming}/{n} conform (at rest {self.conforming_at_rest}/{n})")
        if self.cut:
            parts.append(f"{self.cut} cut at the load max_tokens (not checked)")
        for reason, says in (("no_check", "no per-case check applies"), ("no_reference", "no at-rest answer")):
            if self.unchecked(reason):
                parts.append(f"{self.unchecked(reason)} not checked: {says}")
        if self.compared:
            parts.append(f"{self.same_as_rest}/{self.compared} same text as at rest")
        failed = [v for v in self.checked if not v.passed]
        if failed:
            parts.append("failing: " + ", ".join(f"{v.case_id} ({'/'.join(v.failed_checks)})" for v in failed[:5])
                         + (" …" if len(failed) > 5 else ""))
        return " · ".join(parts)

    def to_dict(self) -> dict[str, Any]:
        return {"role": self.role, "label": self.label, "stage": self.name, "answered": self.answered,
                "sampled": self.sampled, "checked": len(self.checked), "conforming": self.conforming,
                "conforming_at_rest": self.conforming_at_rest, "cut": self.cut, "same_as_rest": self.same_as_rest,
                "compared": self.compared, "drop": self.drop, "samples": [v.to_dict() for v in self.verdicts]}


def sample_by_stage(records: Sequence[Mapping[str, Any]], n: int, seed: int = 0) -> dict[int, list[Mapping[str, Any]]]:
    """Up to ``n`` answered records per stage, drawn without replacement with ``seed``.

    Records are put in a stable order first (worker, sequence number), so the same raw files give the same sample
    whatever order the processes wrote them in; each stage draws with its own stream derived from ``seed``.
    """
    return _draw(_answered_by_stage(records), n, seed)


def _answered_by_stage(records: Sequence[Mapping[str, Any]]) -> dict[int, list[Mapping[str, Any]]]:
    """The answered records of each stage, in (worker, sequence number) order."""
    by_stage: dict[int, list[Mapping[str, Any]]] = {}
    for rec in records:
        if rec.get("fault") is None and isinstance(rec.get("stage"), int):
            by_stage.setdefault(int(rec["stage"]), []).append(rec)
    for recs in by_stage.values():
        recs.sort(key=lambda r: (str(r.get("worker")), int(r.get("seq") or 0)))
    return by_stage


def _draw(by_stage: Mapping[int, Sequence[Mapping[str, Any]]], n: int, seed: int) -> dict[int, list[Mapping[str, Any]]]:
    out: dict[int, list[Mapping[str, Any]]] = {}
    for stage, recs in sorted(by_stage.items()):
        k = min(max(n, 0), len(recs))
        pick = np.random.default_rng([seed, stage]).choice(len(recs), size=k, replace=False)
        out[stage] = [recs[int(i)] for i in sorted(pick)]
    return out


def record_response(rec: Mapping[str, Any], case: Case, label: str) -> Response:
    """A load record as the :class:`Response` the per-case checks take."""
    tool_calls = rec.get("tool_calls") or []
    return Response(endpoint=label, system=case.system, case_id=case.id, fingerprint=case.fingerprint,
                    prompt_fingerprint=case.prompt_fingerprint, text=rec.get("text"), reasoning=rec.get("reasoning"),
                    tool_calls=list(tool_calls), finish_reason=rec.get("finish_reason"), usage=rec.get("usage"),
                    ttft_ms=rec.get("ttft_ms"), e2e_ms=rec.get("e2el_ms"), source="load")


def is_cut(rec: Mapping[str, Any], case: Case, load_max_tokens: int | None, ignore_eos: bool) -> bool:
    """The load answer is not the answer the replay judged: generated past EOS, or stopped by a lower cap."""
    if ignore_eos:
        return True
    if rec.get("finish_reason") != "length" or load_max_tokens is None:
        return False
    case_max = case.params.get("max_tokens")
    return case_max is None or int(load_max_tokens) < int(case_max)


def same_text(load: Response, rest: Response | None) -> bool | None:
    """Equal texts (and tool calls); when either was cut at max_tokens, one text a prefix of the other."""
    if rest is None or not rest.ok:
        return None
    a, b = load.text or "", rest.text or ""
    if "length" in (load.finish_reason, rest.finish_reason):
        return a.startswith(b) or b.startswith(a)
    return a == b and _calls(load) == _calls(rest)


def _calls(r: Response) -> list[tuple[str, str]]:
    return [(str((c.get("function") or {}).get("name")), str((c.get("function") or {}).get("arguments")))
            for c in r.tool_calls]


def _run_checks(data: SuiteData, view: CaseView) -> list[CheckResult]:
    return [spec.run(data, view) for spec in quality_checks(data, view.case)]


def _passed_at_rest(data: SuiteData, role: str, view: CaseView, at_rest: SuiteEvaluation | None) -> bool:
    """The at-rest verdict of the same endpoint on the same case: the replay's own results for the candidate
    (computed once, never again), the checks of the baseline's answer against itself for the baseline."""
    if role == "candidate" and at_rest is not None and at_rest.view(view.case.id) is not None:
        names = [c.name for c in quality_checks(data, view.case)]
        got = [at_rest.results.get((view.case.id, n)) for n in names]
        if all(r is not None for r in got):
            return all(r.passed for r in got if r is not None)
    return all(r.passed for r in _run_checks(data, view))


def assess_stage(data: SuiteData, role: str, label: str, index: int, answered: int,
                 sampled: Sequence[Mapping[str, Any]], rest: Mapping[str, Mapping[str, Response]], *,
                 load_max_tokens: int | None = None, ignore_eos: bool = False,
                 at_rest: SuiteEvaluation | None = None) -> StageQuality:
    """Check one stage's sampled answers of endpoint ``role`` (``baseline``/``candidate``).

    ``rest`` is the replay's ``{"baseline": {case_id: Response}, role: {…}}``: the baseline's at-rest answer is
    the reference every check compares with (as in the replay), ``rest[role]`` the same endpoint at rest.
    ``at_rest``: the replay's evaluation, whose candidate verdicts are reused rather than computed again.
    """
    cases = {c.id: c for c in data.suite.cases}
    verdicts = []
    for rec in sampled:
        case = cases.get(str(rec.get("case_id")))
        if case is None:
            continue  # a case deselected since the load plan was written: nothing to compare with
        load = record_response(rec, case, label)
        rest_same, rest_base = rest.get(role, {}).get(case.id), rest.get("baseline", {}).get(case.id)
        same = same_text(load, rest_same)
        if is_cut(rec, case, load_max_tokens, ignore_eos):
            verdicts.append(SampleVerdict(case.id, same, None, None, unchecked="cut"))
            continue
        if rest_base is None or rest_same is None:
            verdicts.append(SampleVerdict(case.id, same, None, None, unchecked="no_reference"))
            continue
        if not_comparable(CaseView(case, rest_base, rest_same)) is not None:
            verdicts.append(SampleVerdict(case.id, same, None, None, unchecked="no_reference"))
            continue
        now = _run_checks(data, CaseView(case, rest_base, load))
        if not now:
            verdicts.append(SampleVerdict(case.id, same, None, None, unchecked="no_check"))
            continue
        before = _passed_at_rest(data, role, CaseView(case, rest_base, rest_same), at_rest)
        failed = tuple(r.check for r in now if not r.passed)
        verdicts.append(SampleVerdict(
            case.id, same, passed=not failed, passed_at_rest=before, failed_checks=failed,
            explanation="; ".join(r.explanation for r in now if not r.passed)[:500]))
    return StageQuality(role, label, index, answered, tuple(verdicts))


def assess_run(data: SuiteData, role: str, label: str, records: Sequence[Mapping[str, Any]], n_stages: int,
               rest: Mapping[str, Mapping[str, Response]], cfg: QualityConfig, *, load_max_tokens: int | None = None,
               ignore_eos: bool = False, at_rest: SuiteEvaluation | None = None) -> list[StageQuality]:
    """Every stage of one endpoint's load run (stages with no answer included, so none goes missing)."""
    answered = _answered_by_stage(records)
    picked = _draw(answered, cfg.sample, cfg.seed)
    return [assess_stage(data, role, label, i, len(answered.get(i, ())), picked.get(i, []), rest,
                         load_max_tokens=load_max_tokens, ignore_eos=ignore_eos, at_rest=at_rest)
            for i in range(n_stages)]


def drop_interval(q: StageQuality) -> tuple[float, tuple[float, float]] | None:
    """The stage's drop (conforming at rest − under load, per checked case) with its paired Newcombe interval."""
    checked = q.checked
    if not checked:
        return None
    both = sum(1 for v in checked if v.passed and v.passed_at_rest)
    rest_only = sum(1 for v in checked if v.passed_at_rest and not v.passed)
    load_only = sum(1 for v in checked if v.passed and not v.passed_at_rest)
    n = len(checked)
    return (rest_only - load_only) / n, paired_difference_interval(both, rest_only, load_only,
                                                                   n - both - rest_only - load_only)


def quality_gates(suite: str, candidate: Sequence[StageQuality], baseline: Sequence[StageQuality] | None,
                  cfg: QualityConfig, *, load_max_tokens: int | None = None) -> list[GateResult]:
    """``load.stageN.quality_drop`` per stage when ``max_drop`` is set: the candidate's drop *beyond the
    baseline's* under the same load (a batching server answers differently under load whatever the model — the
    baseline's drop is the yardstick, not a footnote), with a MOVER interval combining both paired intervals;
    at most ``max_drop``. Without a baseline load run (recorded baseline), the candidate's own drop is judged."""
    if cfg.max_drop is None:
        return []
    base = {q.index: q for q in baseline or ()}
    out = []
    for q in candidate:
        n = len(q.checked)
        msg = (f"{q.conforming}/{n} sampled answers conform under load, {q.conforming_at_rest}/{n} of the same "
               f"cases at rest; {q.same_as_rest}/{q.compared} same text as at rest")
        b = base.get(q.index)
        cand_drop = drop_interval(q)
        base_drop = drop_interval(b) if b is not None else None
        if b is not None and b.drop is not None:
            msg += (f"; baseline under the same load: drop {b.drop:.3f} ({b.conforming}/{len(b.checked)} conform, "
                    f"{b.same_as_rest}/{b.compared} same text as at rest)")
        if not n:
            if not q.sampled:
                why = "no answer was received in this stage"
            elif q.cut:
                why = (f"{q.cut} of {q.sampled} sampled answers were cut at load.max_tokens={load_max_tokens} (or "
                       "generated with ignore_eos): raise load.max_tokens to the goldens' cap to check them")
            else:
                why = "no per-case check applies to the sampled cases (or no at-rest answer to compare with)"
            out.append(compare(suite, f"load.{q.name}.quality_drop", None, cfg.max_drop, "<=", 0,
                               message=f"insufficient: {why}"))
            continue
        assert cand_drop is not None
        if base_drop is not None:
            stat = cand_drop[0] - base_drop[0]
            interval = mover_difference(cand_drop[0], cand_drop[1], base_drop[0], base_drop[1])
            msg = f"candidate drop {cand_drop[0]:.3f} − baseline drop {base_drop[0]:.3f}; " + msg
        else:
            stat, interval = cand_drop
            msg = "no baseline load run to compare with: the candidate's own drop; " + msg
        out.append(compare(suite, f"load.{q.name}.quality_drop", stat, cfg.max_drop, "<=", n, interval=interval,
                           message=msg, baseline=base_drop[0] if base_drop else None, zero_tolerance=False))
    return out


__all__ = [
    "DEFAULT_SAMPLE",
    "QualityConfig",
    "SampleVerdict",
    "StageQuality",
    "assess_run",
    "assess_stage",
    "is_cut",
    "quality_gates",
    "record_response",
    "same_text",
    "sample_by_stage",
]
