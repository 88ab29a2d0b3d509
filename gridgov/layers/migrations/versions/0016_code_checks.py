"""Code format checks without a regular expression.

Every admin code column (区划代码) was checked by ``code ~ '^[0-9]{n}$'``: a regular
expression match per row and column, four per incident, about 1.3 s of a million-row
import. The same rule is now ``octet_length(code) = n AND ltrim(code, '0123456789') = ''``
(exactly n bytes, every one an ASCII digit), a third of the cost. Constraint names stay,
so error messages are unchanged. Every CHECK in the database holding such a match is
rewritten, whatever table it is on (layers, plans, and layers added from a spec since);
adding a CHECK validates the stored rows again.

Revision ID: 0016_code_checks
Revises: 0015_unit_plan_edit
Create Date: 2026-11-27 10:00:00
"""

from __future__ import annotations

import re
from collections.abc import Callable

import sqlalchemy as sa
from alembic import op

revision: str = "0016_code_checks"
down_revision: str | None = "0015_unit_plan_edit"
branch_labels: str | None = None
depends_on: str | None = None

# As pg_get_constraintdef prints them.
_REGEX = re.compile(r"\((\w+) ~ '\^\[0-9\]\{(\d+)\}\$'::text\)")
# Without its own parentheses: PostgreSQL prints ``(a AND b) AND c`` as ``a AND b AND c``.
_DIGITS = re.compile(
    r"\(octet_length\((\w+)\) = (\d+)\) AND \(ltrim\(\1, '0123456789'::text\) = ''::text\)"
)


def _digits(match: re.Match[str]) -> str:
    column, length = match.group(1), match.group(2)
    return f"(octet_length({column}) = {length} AND ltrim({column}, '0123456789') = '')"


def _regex(match: re.Match[str]) -> str:
    return f"({match.group(1)} ~ '^[0-9]{{{match.group(2)}}}$')"


def _rewrite(pattern: re.Pattern[str], replace: Callable[[re.Match[str]], str]) -> None:
    """Drop and add again, per table in one ALTER, each CHECK whose text ``pattern`` finds."""
    rows = (
        op.get_bind()
        .execute(
            sa.text(
                "SELECT conrelid::regclass::text AS relation, conname, "
                "pg_get_constraintdef(oid) AS definition FROM pg_constraint "
                "WHERE contype = 'c' AND conrelid <> 0 ORDER BY 1, 2"
            )
        )
        .all()
    )
    changes: dict[str, list[str]] = {}
    for row in rows:
        definition = pattern.sub(replace, row.definition)
        if definition != row.definition:
            changes.setdefault(row.relation, []).append(
                f'DROP CONSTRAINT "{row.conname}", ADD CONSTRAINT "{row.conname}" {definition}'
            )
    for relation, actions in changes.items():
        op.execute(f"ALTER TABLE {relation} " + ", ".join(actions))


def upgrade() -> None:
    _rewrite(_REGEX, _digits)


def downgrade() -> None:
    _rewrite(_DIGITS, _regex)
