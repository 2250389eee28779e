"""Fix forward or roll back? The decision tree of docs/golive.md ("Fix forward or roll back?"),
as data, with what the workspace shows now beside each question: the promoted cohorts a
rollback would apply to, the recorded cutover, and the latest reconciliation's causes, sorted
by the question they answer."""

from __future__ import annotations

from dataclasses import dataclass, field

from ..store import Store
from ..store.cohorts import cutover_applied_at
from .cohorts import list_cohorts
from .reconciliation_results import latest

# the latest reconciliation's causes, by the question they bear on
CONFIGURATION_CAUSES = ("currency", "aggregation", "tier_model", "override", "tax_rate", "tax_rounding",
                        "period_boundary", "discount", "cap", "rounding")
PIPELINE_CAUSES = ("missing_in_ratecard", "missing_in_legacy", "duplicate_in_legacy")
UNDERSTOOD_NOT = ("unexplained",)


@dataclass(frozen=True)
class Answer:
    answer: str  # yes | no
    leads_to: str  # what to do, or the next question
    commands: tuple[str, ...] = ()
    next_step: int | None = None  # the question to go on to


@dataclass
class Step:
    number: int
    question: str
    answers: tuple[Answer, ...]
    facts: list[str] = field(default_factory=list)  # the current state that bears on the question


@dataclass
class RollbackGuide:
    steps: list[Step]
    live_cohorts: list[str]  # what a rollback applies to
    cutover_recorded_at: int | None  # µs


def _cause_counts(by_cause: dict, causes: tuple[str, ...]) -> list[str]:
    return [f"{by_cause[cause]['count']} difference(s) of cause {cause}" for cause in causes if cause in by_cause]


def rollback_guide(store: Store, environment: str = "live") -> RollbackGuide:
    live = [status.cohort.name for status in list_cohorts(store, environment) if status.state == "live"]
    cutover = cutover_applied_at(store, environment)
    reconciliation = latest(store, environment)
    by_cause = reconciliation.summary.get("by_cause", {}) if reconciliation else {}
    no_reconciliation = ["no reconciliation uploaded yet: upload the legacy export to see the causes"]
    steps = [
        Step(1, "Is money going out wrong right now (wrong amounts on invoices about to be finalized or sent, for "
                "many customers)?",
             (Answer("yes", "Put the affected drafts on hold at once, then answer question 2.",
                     ("ratecard invoices hold INVOICE",), 2),
              Answer("no", "Go on to question 2.", (), 2)),
             [f"{reconciliation.summary.get('differences', 0)} difference(s) in the latest reconciliation"]
             if reconciliation else list(no_reconciliation)),
        Step(2, "Is the cause in configuration (a price, a tier, an override, a tax rate, a meter's aggregation) "
                "and can it be fixed before the next `finalize --due`?",
             (Answer("yes", "Fix forward: apply the corrected catalog, generate invoices (every draft is refreshed), "
                            "release the holds. Final invoices already wrong get corrections (credit note + new "
                            "invoice), never edits.",
                     ("ratecard catalog apply FILE", "ratecard invoices generate --until DATE")),
              Answer("no", "Go on to question 3.", (), 3)),
             _cause_counts(by_cause, CONFIGURATION_CAUSES) if reconciliation else list(no_reconciliation)),
        Step(3, "Is the cause in the pipeline (events missing, late or duplicated upstream)?",
             (Answer("yes", "Fix forward if the events can be replayed (idempotent ids) or backfilled before the "
                            "grace period ends; otherwise hold.",
                     ("ratecard events import FILE", "ratecard backfill create --from DATE --to DATE")),
              Answer("no", "Go on to question 4.", (), 4)),
             _cause_counts(by_cause, PIPELINE_CAUSES) if reconciliation else list(no_reconciliation)),
        Step(4, "Is the cause not understood, or in ratecard itself, or will it take longer than a billing cycle "
                "to fix?",
             (Answer("yes", "Roll back the cohort: the legacy system bills it again from its next cycle; credit what "
                            "ratecard already issued for periods the legacy system will bill; run parallel cycles "
                            "again until two are clean; promote again.",
                     ("ratecard rollback --cohort NAME",)),
              Answer("no", "Fix forward (question 2 or 3)", (), 2)),
             (_cause_counts(by_cause, UNDERSTOOD_NOT) if reconciliation else list(no_reconciliation))
             + ([f"promoted cohort(s) a rollback applies to: {', '.join(live)}"] if live
                else ["no cohort is promoted: there is no cohort to roll back"])),
        Step(5, "Was the move a full cutover rather than a cohort?",
             (Answer("yes", "Roll it back the same way, cohort by cohort: put the customers in a cohort and they are "
                            "back in shadow from the next invoice run.",
                     ("ratecard cohort create NAME", "ratecard cohort add NAME CUSTOMER…")),
              Answer("no", "Nothing more: the cohort questions above apply.")),
             ["a full cutover is recorded" if cutover is not None else "no full cutover is recorded"]),
    ]
    return RollbackGuide(steps, live, cutover)
