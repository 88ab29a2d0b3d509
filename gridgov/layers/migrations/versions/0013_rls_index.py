"""Row-level security the planner can use an index for.

The policy of ``0005_accounts`` called ``gridgov_scope_ok(ARRAY[codes…], 15)`` on every
row, and PostGIS' ``&&`` is not LEAKPROOF, so no index condition of the query may run
before the policy: a scoped account's ``bbox`` read scanned the whole table and called the
function a million times (5.2 s for one township's bbox over 1.1 M incidents). The policy
now compares each code column with the account's codes of that length
(``gridgov_scope_codes(n)``, computed once per statement: a non-inlined STABLE function),
so PostgreSQL ORs four btree index scans and checks the bbox on the rows of the area only
(0.11 s). Same rule: a code of the scope matches the row's code of its length. For ``*``
(every area; the app never binds city-wide accounts) the district codes are all districts.
``gridgov_scope_ok`` stays for the downgrade.

Revision ID: 0013_rls_index
Revises: 0012_import_speed
Create Date: 2026-11-26 22:00:00
"""

from __future__ import annotations

from alembic import op

revision: str = "0013_rls_index"
down_revision: str | None = "0012_import_speed"
branch_labels: str | None = None
depends_on: str | None = None

TABLES = ("incident", "rental_housing")

SCOPE_CODES = """
CREATE FUNCTION gridgov_scope_codes(code_length integer) RETURNS text[]
LANGUAGE plpgsql STABLE AS $fn$
DECLARE
    scope text := coalesce(current_setting('gridgov.scope', true), '');
BEGIN
    IF scope = '*' THEN  -- every area: matched through the district codes
        RETURN CASE WHEN code_length = 6 THEN ARRAY(SELECT code FROM district) ELSE '{}' END;
    END IF;
    -- '' (a bound role without a scope) and '-' (no area) match nothing
    RETURN ARRAY(SELECT c FROM unnest(string_to_array(scope, ',')) AS s(c)
                 WHERE length(c) = code_length);
END
$fn$;
"""

NEW_RULE = (
    "district_code = ANY(gridgov_scope_codes(6)) "
    "OR township_code = ANY(gridgov_scope_codes(9)) "
    "OR community_code = ANY(gridgov_scope_codes(12)) "
    "OR grid_code = ANY(gridgov_scope_codes(15))"
)
OLD_RULE = "gridgov_scope_ok(ARRAY[district_code, township_code, community_code, grid_code], 15)"


def _policies(rule: str) -> str:
    return "".join(
        f"ALTER POLICY area_scope ON {table} USING ({rule}) WITH CHECK ({rule});\n"
        for table in TABLES
    )


def upgrade() -> None:
    op.execute(SCOPE_CODES)
    op.execute(_policies(NEW_RULE))


def downgrade() -> None:
    op.execute(_policies(OLD_RULE))
    op.execute("DROP FUNCTION IF EXISTS gridgov_scope_codes(integer)")
