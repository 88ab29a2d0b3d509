"""The incident lifecycle of 数字化城管 practice: stages, allowed moves and deadlines.

reported (信息收集) → registered (立案) → dispatched (派遣, the clock starts) → handling (处置)
→ handled (反馈) → closed (核查结案) → evaluated (评价). A check that finds the work not done
sends a handled case back to handling (核查不通过，返回处置). Overdue: past the deadline and
not closed.
"""

from __future__ import annotations

from datetime import datetime, timedelta

STAGES = ("reported", "registered", "dispatched", "handling", "handled", "closed", "evaluated")
CLOSED = frozenset({"closed", "evaluated"})
# Hours from dispatch to the deadline, per category (a setting in a real deployment).
SLA_HOURS = {
    "dispute": 72,
    "safety_hazard": 24,
    "public_order": 24,
    "city_management": 48,
    "environment": 72,
    "livelihood": 120,
    "other": 96,
}
# The timestamp column each stage sets when it is entered.
STAGE_COLUMN = {
    "registered": "registered_at",
    "dispatched": "dispatched_at",
    "handling": "handling_at",
    "handled": "handled_at",
    "closed": "closed_at",
    "evaluated": "evaluated_at",
}
_EXTRA_MOVES = {("handled", "handling")}


def allowed(current: str, target: str) -> bool:
    """One stage forward, or a failed check sending handled work back to handling."""
    if current not in STAGES or target not in STAGES:
        return False
    if (current, target) in _EXTRA_MOVES:
        return True
    return STAGES.index(target) == STAGES.index(current) + 1


def next_stages(current: str) -> list[str]:
    return [stage for stage in STAGES if allowed(current, stage)]


def deadline(category: str, dispatched_at: datetime) -> datetime:
    return dispatched_at + timedelta(hours=SLA_HOURS.get(category, SLA_HOURS["other"]))


def is_overdue(status: str, deadline_at: datetime | None, now: datetime) -> bool:
    return deadline_at is not None and deadline_at < now and status not in CLOSED
