"""Accounts, sessions, the append-only audit log and the personal-data vault.

``audit_log`` is append-only for the role that runs gridgov: UPDATE, DELETE and TRUNCATE
are revoked from it, and triggers refuse any update, any truncate and the deletion of a row
younger than six months (``at`` is stamped by the database, so it cannot be back-dated).
``personal_vault`` holds personal data encrypted (AES-256-GCM) beside the layer tables,
whose personal columns keep only the masked value.

Revision ID: 0005_accounts
Revises: 0004_incident_bulk
Create Date: 2026-11-26 11:00:00
"""

from __future__ import annotations

from alembic import op

revision: str = "0005_accounts"
down_revision: str | None = "0004_incident_bulk"
branch_labels: str | None = None
depends_on: str | None = None

ROLES = ("admin", "supervisor", "planner", "police", "grid_worker", "viewer")

UPGRADE = f"""
CREATE TABLE app_user (
    id bigserial PRIMARY KEY,
    username text NOT NULL UNIQUE CHECK (username ~ '^[A-Za-z0-9_.@-]{{2,64}}$'),
    display_name text,
    password_hash text NOT NULL,
    role text NOT NULL CHECK (role IN ({", ".join(f"'{r}'" for r in ROLES)})),
    area_codes text[] NOT NULL DEFAULT '{{}}' CHECK (
        array_to_string(area_codes, ',') ~ '^(([0-9]{{6}}|[0-9]{{9}}|[0-9]{{12}}|[0-9]{{15}})(,|$))*$'
    ),
    grants text[] NOT NULL DEFAULT '{{}}' CHECK (grants <@ ARRAY['personal_data']::text[]),
    disabled boolean NOT NULL DEFAULT false,
    failed_logins integer NOT NULL DEFAULT 0 CHECK (failed_logins >= 0),
    locked_until timestamptz,
    last_login_at timestamptz,
    password_changed_at timestamptz NOT NULL DEFAULT now(),
    created_at timestamptz NOT NULL DEFAULT now(),
    updated_at timestamptz NOT NULL DEFAULT now()
);

CREATE TABLE user_session (
    id text PRIMARY KEY CHECK (length(id) >= 32),
    user_id bigint NOT NULL REFERENCES app_user (id) ON DELETE CASCADE,
    ip text,
    created_at timestamptz NOT NULL DEFAULT now(),
    last_seen_at timestamptz NOT NULL DEFAULT now(),
    expires_at timestamptz NOT NULL,
    revoked_at timestamptz
);
CREATE INDEX ix_user_session_user ON user_session (user_id);

CREATE TABLE audit_log (
    id bigserial PRIMARY KEY,
    at timestamptz NOT NULL DEFAULT clock_timestamp(),
    user_id bigint,
    username text,
    role text,
    ip text,
    action text NOT NULL,
    target text,
    outcome text NOT NULL CHECK (outcome IN ('ok', 'refused', 'failed')),
    status integer,
    detail jsonb NOT NULL DEFAULT '{{}}'::jsonb
);
CREATE INDEX ix_audit_log_at ON audit_log (at);
CREATE INDEX ix_audit_log_user_at ON audit_log (username, at);
CREATE INDEX ix_audit_log_action_at ON audit_log (action, at);

CREATE FUNCTION gridgov_audit_stamp() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    NEW.at := clock_timestamp();  -- never back-dated, so the retention rule holds
    RETURN NEW;
END
$fn$;

CREATE FUNCTION gridgov_audit_guard() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    IF TG_OP = 'DELETE' THEN
        IF OLD.at > now() - interval '6 months' THEN
            RAISE EXCEPTION '审计日志至少保存 6 个月 (audit_log rows are kept for 6 months)'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
        RETURN OLD;
    END IF;
    RAISE EXCEPTION '审计日志只能追加 (audit_log is append-only: % refused)', TG_OP
        USING ERRCODE = 'insufficient_privilege';
END
$fn$;

CREATE TRIGGER audit_log_stamp BEFORE INSERT ON audit_log
    FOR EACH ROW EXECUTE FUNCTION gridgov_audit_stamp();
CREATE TRIGGER audit_log_no_update BEFORE UPDATE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION gridgov_audit_guard();
CREATE TRIGGER audit_log_retention BEFORE DELETE ON audit_log
    FOR EACH ROW EXECUTE FUNCTION gridgov_audit_guard();
CREATE TRIGGER audit_log_no_truncate BEFORE TRUNCATE ON audit_log
    FOR EACH STATEMENT EXECUTE FUNCTION gridgov_audit_guard();

REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM PUBLIC;
REVOKE UPDATE, DELETE, TRUNCATE ON audit_log FROM CURRENT_USER;

CREATE TABLE personal_vault (
    layer text NOT NULL,
    row_id bigint NOT NULL,
    column_name text NOT NULL,
    masked text NOT NULL,
    ciphertext bytea NOT NULL CHECK (length(ciphertext) > 28),
    PRIMARY KEY (layer, row_id, column_name)
);

CREATE FUNCTION gridgov_vault_forget() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    DELETE FROM personal_vault v USING old_rows o
    WHERE v.layer = TG_TABLE_NAME AND v.row_id = o.id;
    RETURN NULL;
END
$fn$;
CREATE TRIGGER rental_housing_vault_forget AFTER DELETE ON rental_housing
    REFERENCING OLD TABLE AS old_rows FOR EACH STATEMENT EXECUTE FUNCTION gridgov_vault_forget();

CREATE FUNCTION gridgov_vault_truncate() RETURNS trigger LANGUAGE plpgsql AS $fn$
BEGIN
    DELETE FROM personal_vault WHERE layer = TG_TABLE_NAME;
    RETURN NULL;
END
$fn$;
CREATE TRIGGER rental_housing_vault_truncate AFTER TRUNCATE ON rental_housing
    FOR EACH STATEMENT EXECUTE FUNCTION gridgov_vault_truncate();
"""

# Row-level security, the second line behind the scope predicate of ``gridgov.layers.scope``.
# It binds a non-owner role ``gridgov_api`` (made by a superuser: ``scripts/bootstrap.sh``)
# that the API switches to for reads (``SET LOCAL ROLE``), with the account's codes in the
# transaction-local setting ``gridgov.scope``. The owner (migrations, loaders, imports, the
# CLI) is not bound (no FORCE), so COPY and the bulk paths are unchanged.
RLS_TABLES = {"incident": 15, "rental_housing": 15}  # table: length of its finest code

RLS = (
    """
CREATE FUNCTION gridgov_scope_ok(codes text[], finest integer) RETURNS boolean
LANGUAGE sql STABLE AS $fn$
    SELECT CASE coalesce(current_setting('gridgov.scope', true), '')
        WHEN '*' THEN true
        WHEN '' THEN false  -- a bound role without a scope sees nothing
        ELSE EXISTS (
            SELECT 1 FROM unnest(string_to_array(current_setting('gridgov.scope', true), ','))
                AS s(code)
            WHERE (length(s.code) <= finest AND s.code = ANY(codes))
               OR (length(s.code) > finest AND left(s.code, finest) = ANY(codes)))
    END
$fn$;
"""
    + "".join(
        f"""
ALTER TABLE {table} ENABLE ROW LEVEL SECURITY;
CREATE POLICY area_scope ON {table}
    USING (gridgov_scope_ok(ARRAY[district_code, township_code, community_code, grid_code], {n}))
    WITH CHECK (
        gridgov_scope_ok(ARRAY[district_code, township_code, community_code, grid_code], {n}));
"""
        for table, n in RLS_TABLES.items()
    )
    + """
DO $do$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'gridgov_api') THEN
        GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO gridgov_api;
        REVOKE UPDATE, DELETE ON audit_log FROM gridgov_api;
        GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO gridgov_api;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public
            GRANT SELECT, INSERT, UPDATE, DELETE ON TABLES TO gridgov_api;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public GRANT USAGE, SELECT ON SEQUENCES TO gridgov_api;
    END IF;
END
$do$;
"""
)

RLS_DOWN = (
    "".join(
        f"""
DROP POLICY IF EXISTS area_scope ON {table};
ALTER TABLE {table} DISABLE ROW LEVEL SECURITY;
"""
        for table in RLS_TABLES
    )
    + """
DO $do$
BEGIN
    IF EXISTS (SELECT FROM pg_roles WHERE rolname = 'gridgov_api') THEN
        ALTER DEFAULT PRIVILEGES IN SCHEMA public
            REVOKE SELECT, INSERT, UPDATE, DELETE ON TABLES FROM gridgov_api;
        ALTER DEFAULT PRIVILEGES IN SCHEMA public REVOKE USAGE, SELECT ON SEQUENCES FROM gridgov_api;
        REVOKE ALL ON ALL TABLES IN SCHEMA public FROM gridgov_api;
        REVOKE ALL ON ALL SEQUENCES IN SCHEMA public FROM gridgov_api;
    END IF;
END
$do$;
DROP FUNCTION IF EXISTS gridgov_scope_ok(text[], integer);
"""
)

DOWNGRADE = """
DROP TRIGGER IF EXISTS rental_housing_vault_truncate ON rental_housing;
DROP TRIGGER IF EXISTS rental_housing_vault_forget ON rental_housing;
DROP FUNCTION IF EXISTS gridgov_vault_truncate();
DROP FUNCTION IF EXISTS gridgov_vault_forget();
DROP TABLE IF EXISTS personal_vault;
DROP TABLE IF EXISTS audit_log;
DROP FUNCTION IF EXISTS gridgov_audit_guard();
DROP FUNCTION IF EXISTS gridgov_audit_stamp();
DROP TABLE IF EXISTS user_session;
DROP TABLE IF EXISTS app_user;
"""


def upgrade() -> None:
    op.execute(UPGRADE)
    op.execute(RLS)


def downgrade() -> None:
    op.execute(RLS_DOWN)
    op.execute(DOWNGRADE)
