"""Building a discovery task's fixed plan: pool -> grades -> stage timing (contract §3.1, §6).

:func:`build_schedule` walks the candidate pool in discovery order. Candidate ``i`` is screened
at active second ``(i + 1) / screen_rate``; survivors of the pre-filter are enriched then and
queue for evaluation, which takes ``60 / evaluate_rate_per_min`` seconds each, one at a time:
``finished = max(previous finished, enriched) + evaluate_s``. Each evaluated candidate is graded
on every criterion (:func:`.grading.grade`) when the plan is built, so a task's
outcome is deterministic and known at creation (credits are charged then, see
:mod:`providers.extruct.emulator`).
"""

from __future__ import annotations

from collections.abc import Sequence

from providers.extruct.emulator.criteria import Criterion
from providers.extruct.emulator.grading import grade, qualifies, relevance, stable_fraction
from providers.extruct.emulator.models import EmulatorSettings
from providers.extruct.emulator.pool import Candidate
from providers.extruct.emulator.render import result_id
from providers.extruct.emulator.tasks import Evaluation, Schedule
from providers.sandbox.entities import CompanyEntity
from providers.sandbox.world import World

__all__ = ["build_schedule", "evaluate"]


def evaluate(
    world: World, company: CompanyEntity, criteria: Sequence[Criterion], *, task_id: str,
    draw_key: str, sources: Sequence[str], finished_at: float,
) -> Evaluation:  # fmt: skip
    """Grade ``company`` on every criterion; ``source`` is one of the task's data sources, drawn
    from ``draw_key`` (never from the task id, which is random); ``task_id`` names the result."""
    scores = {key: grade(world, key, text, company) for key, _, text in criteria}
    grades = [s.grade for s in scores.values()]
    pick = int(stable_fraction(draw_key, company.true_id, "source") * len(sources))
    return Evaluation(
        company_id=company.true_id, result_id=result_id(task_id, company.true_id),
        source=sources[pick], scores=scores, relevance=relevance(grades),
        qualified=qualifies(grades), finished_at=finished_at,
    )


def build_schedule(
    world: World, pool: Sequence[Candidate], criteria: Sequence[Criterion], *, task_id: str,
    draw_key: str, sources: Sequence[str], settings: EmulatorSettings,
) -> Schedule:  # fmt: skip
    """The stage timing and grades of a task whose discovery will find ``pool`` in order
    (``draw_key``: the task's deterministic key, see :func:`evaluate`)."""
    discover_per_s = settings.discover_rate_per_min / 60.0
    screen_per_s = min(discover_per_s, settings.enrich_rate_per_min / 60.0)
    evaluate_s = 60.0 / settings.evaluate_rate_per_min
    enriched_at: list[float] = []
    evaluations: list[Evaluation] = []
    finished = 0.0
    for position, candidate in enumerate(pool):
        if not candidate.passes:
            continue
        at = (position + 1) / screen_per_s
        enriched_at.append(at)
        finished = max(finished, at) + evaluate_s
        evaluations.append(evaluate(world, candidate.company, criteria, task_id=task_id, draw_key=draw_key,
                                    sources=sources, finished_at=finished))
    return Schedule(len(pool), discover_per_s, screen_per_s, tuple(enriched_at), tuple(evaluations))
