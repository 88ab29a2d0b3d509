#!/usr/bin/env bash
# Set-up shared by `make serve` and `make test`; every step is skipped when already done.
#
#   scripts/bootstrap.sh serve   venv, PostGIS, the working database `gridgov`, migrated
#   scripts/bootstrap.sh test    venv, PostGIS, the test database `gridgov_test`, Chromium
#   scripts/bootstrap.sh bench   venv, PostGIS, the benchmark database `gridgov_bench`
#
# With DATABASE_URL set, no local server is installed or started: that PostGIS is used.
# Without it, a PostgreSQL cluster owned by this checkout is created in .gridgov/pgdata
# (port GRIDGOV_PGPORT, default 55432, listening on 127.0.0.1 only). Nothing here drops
# or alters any database other than gridgov's own.
set -euo pipefail

MODE=${1:-serve}
ROOT=$(cd "$(dirname "${BASH_SOURCE[0]}")/.." && pwd)
STATE="$ROOT/.gridgov"
VENV="$ROOT/.venv"
PYTHON=${PYTHON:-python3}
PGPORT=${GRIDGOV_PGPORT:-55432}
APP_ROLE=gridgov

say() { printf '\033[1;34m[gridgov]\033[0m %s\n' "$*"; }
die() { printf '\033[1;31m[gridgov] 错误 error:\033[0m %s\n' "$*" >&2; exit 1; }

as_root() {
    if [ "$(id -u)" -eq 0 ]; then "$@"
    elif command -v sudo >/dev/null && sudo -n true 2>/dev/null; then sudo "$@"
    else return 1; fi
}

apt_install() {
    # apt_install PKG...: install Debian/Ubuntu packages, refreshing the lists once if needed.
    local pkgs=("$@")
    say "installing ${pkgs[*]} (apt-get)"
    command -v apt-get >/dev/null || return 1
    export DEBIAN_FRONTEND=noninteractive
    as_root apt-get install -y -qq --no-install-recommends "${pkgs[@]}" \
        || { as_root apt-get update -qq && as_root apt-get install -y -qq --no-install-recommends "${pkgs[@]}"; }
}

ensure_venv() {
    "$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
        || die "Python 3.11+ is needed ($PYTHON is $("$PYTHON" -V 2>&1)); set PYTHON=python3.11"
    if [ ! -x "$VENV/bin/python" ]; then
        say "creating $VENV"
        "$PYTHON" -m venv "$VENV" 2>/dev/null || {
            apt_install python3-venv || die "cannot create a venv: install the package python3-venv"
            "$PYTHON" -m venv "$VENV"
        }
    fi
    local stamp
    stamp=$(sha256sum "$ROOT/pyproject.toml" | cut -c1-16)
    if [ "$(cat "$VENV/.gridgov-installed" 2>/dev/null)" != "$stamp" ]; then
        say "installing gridgov and its pinned dependencies into .venv"
        "$VENV/bin/pip" install -q --upgrade pip
        "$VENV/bin/pip" install -q -e "$ROOT[dev]"
        echo "$stamp" > "$VENV/.gridgov-installed"
    fi
}

pg_bindir() {
    # The newest installed PostgreSQL server that has PostGIS, else the newest at all.
    local v best=""
    for v in $(ls /usr/lib/postgresql 2>/dev/null | sort -rn); do
        [ -x "/usr/lib/postgresql/$v/bin/postgres" ] || continue
        if [ -f "/usr/share/postgresql/$v/extension/postgis.control" ]; then
            echo "$v"; return 0
        fi
        [ -n "$best" ] || best=$v
    done
    [ -n "$best" ] && echo "$best"
}

ensure_postgis_packages() {
    local v pkgs
    v=$(pg_bindir || true)
    if [ -z "$v" ]; then
        pkgs=(postgresql postgresql-postgis)
    elif [ ! -f "/usr/share/postgresql/$v/extension/postgis.control" ]; then
        pkgs=("postgresql-$v-postgis-3")
    else
        PGVERSION=$v; return 0
    fi
    apt_install "${pkgs[@]}" || die "PostgreSQL/PostGIS are missing and could not be installed.
    Install them as root, then run this again:
        apt-get install ${pkgs[*]}
    or point DATABASE_URL at an existing PostGIS."
    PGVERSION=$(pg_bindir) || die "PostgreSQL was installed but no server was found in /usr/lib/postgresql"
    [ -f "/usr/share/postgresql/$PGVERSION/extension/postgis.control" ] \
        || die "PostGIS for PostgreSQL $PGVERSION is still missing: apt-get install postgresql-$PGVERSION-postgis-3"
}

# The OS user that runs the server: PostgreSQL refuses to run as root.
db_os_user() { if [ "$(id -u)" -eq 0 ]; then echo postgres; else id -un; fi; }
as_db_user() {
    if [ "$(id -u)" -eq 0 ]; then runuser -u postgres -- "$@"; else "$@"; fi
}

ensure_cluster() {
    local bin="/usr/lib/postgresql/$PGVERSION/bin" osuser
    osuser=$(db_os_user)
    id "$osuser" >/dev/null 2>&1 || die "the OS user $osuser does not exist (it comes with the postgresql package)"
    mkdir -p "$STATE"; chmod 700 "$STATE"
    PGDATA="$STATE/pgdata"
    # The server's OS user must be able to reach the data directory.
    if ! as_db_user test -x "$ROOT" 2>/dev/null; then
        PGDATA="/var/tmp/gridgov-$(printf '%s' "$ROOT" | sha256sum | cut -c1-12)/pgdata"
    fi
    SOCKDIR="/tmp/gridgov-$(id -u)-$PGPORT"
    if [ ! -f "$PGDATA/PG_VERSION" ]; then
        say "creating a PostgreSQL $PGVERSION cluster in $PGDATA"
        mkdir -p "$PGDATA"; chmod 700 "$PGDATA"
        [ "$(id -u)" -eq 0 ] && { chown "$osuser" "$PGDATA"; chmod 711 "$STATE"; }
        # Local socket: trust, but the socket directory is private (0700) to the server's user.
        as_db_user "$bin/initdb" -D "$PGDATA" -U postgres -E UTF8 --locale=C.UTF-8 \
            --auth-local=trust --auth-host=scram-sha-256 >/dev/null
        cat >> "$PGDATA/postgresql.conf" <<CONF
# gridgov: a private cluster for this checkout
listen_addresses = '127.0.0.1'
port = $PGPORT
unix_socket_directories = '$SOCKDIR'
unix_socket_permissions = 0700
timezone = 'UTC'
CONF
    fi
    [ "$(id -u)" -eq 0 ] && chmod 711 "$STATE"
    mkdir -p "$SOCKDIR"; chmod 700 "$SOCKDIR"
    [ "$(id -u)" -eq 0 ] && chown "$osuser" "$SOCKDIR"
    if ! as_db_user "$bin/pg_ctl" -D "$PGDATA" status >/dev/null 2>&1; then
        if (exec 3<>"/dev/tcp/127.0.0.1/$PGPORT") 2>/dev/null; then
            die "port $PGPORT on 127.0.0.1 is taken by another program: set GRIDGOV_PGPORT to a free port"
        fi
        say "starting PostgreSQL on 127.0.0.1:$PGPORT"
        as_db_user "$bin/pg_ctl" -D "$PGDATA" -l "$PGDATA/server.log" -w -t 60 start >/dev/null \
            || die "PostgreSQL did not start; see $PGDATA/server.log"
    fi
    PSQL=(as_db_user "$bin/psql" -X -q -v ON_ERROR_STOP=1 -h "$SOCKDIR" -p "$PGPORT" -U postgres)
}

ensure_local_database() {
    # ensure_local_database NAME: the app role owns it; PostGIS is created by the superuser.
    local db=$1 pwfile="$STATE/db-password"
    [ -s "$pwfile" ] || (umask 077; "$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(24))' > "$pwfile")
    local pw; pw=$(cat "$pwfile")
    "${PSQL[@]}" -d postgres -v pw="$pw" -v role="$APP_ROLE" <<'SQL'
SELECT format('CREATE ROLE %I LOGIN', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = :'role') \gexec
SELECT format('ALTER ROLE %I LOGIN PASSWORD %L', :'role', :'pw') \gexec
SELECT 'CREATE ROLE gridgov_api NOLOGIN'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'gridgov_api') \gexec
SELECT format('GRANT gridgov_api TO %I', :'role') \gexec
SQL
    "${PSQL[@]}" -d postgres -v db="$db" -v role="$APP_ROLE" <<'SQL'
SELECT format('CREATE DATABASE %I OWNER %I ENCODING ''UTF8''', :'db', :'role')
 WHERE NOT EXISTS (SELECT FROM pg_database WHERE datname = :'db') \gexec
SQL
    "${PSQL[@]}" -d "$db" -c 'SET client_min_messages = warning' -c 'CREATE EXTENSION IF NOT EXISTS postgis' \
                          -c 'CREATE EXTENSION IF NOT EXISTS btree_gist'
}

write_local_env() {
    local pw; pw=$(cat "$STATE/db-password")
    (umask 077; cat > "$STATE/local.env" <<ENV
# Written by scripts/bootstrap.sh for the local PostGIS of this checkout; real environment
# variables take precedence. Do not commit.
DATABASE_URL=postgresql+psycopg://$APP_ROLE:$pw@127.0.0.1:$PGPORT/gridgov
GRIDGOV_TEST_DATABASE_URL=postgresql+psycopg://$APP_ROLE:$pw@127.0.0.1:$PGPORT/gridgov_test
GRIDGOV_BENCH_DATABASE_URL=postgresql+psycopg://$APP_ROLE:$pw@127.0.0.1:$PGPORT/gridgov_bench
ENV
)
}

ensure_keys() {
    # The token signing key and the personal-data key, unless the environment gives them.
    # Generated once per checkout and kept (back them up: without the data key, the
    # encrypted personal data cannot be read again).
    if [ -z "${GRIDGOV_SECRET_KEY:-}" ] && [ ! -s "$STATE/secret-key" ]; then
        (umask 077; "$PYTHON" -c 'import secrets; print(secrets.token_urlsafe(48))' > "$STATE/secret-key")
        say "generated the token signing key in .gridgov/secret-key"
    fi
    if [ -z "${GRIDGOV_DATA_KEY:-}" ] && [ ! -s "$STATE/data-key" ]; then
        (umask 077; "$PYTHON" -c 'import base64, os; print(base64.b64encode(os.urandom(32)).decode())' > "$STATE/data-key")
        say "generated the personal-data key in .gridgov/data-key (back it up)"
    fi
}

grant_api_role() {
    # grant_api_role DB: the tables to the row-level-security role the API reads as (a
    # database migrated before the role existed did not grant them; see README, RLS).
    "${PSQL[@]}" -d "$1" <<'SQL'
SET client_min_messages = warning;
GRANT SELECT, INSERT, UPDATE, DELETE ON ALL TABLES IN SCHEMA public TO gridgov_api;
REVOKE UPDATE, DELETE ON audit_log FROM gridgov_api;
GRANT USAGE, SELECT ON ALL SEQUENCES IN SCHEMA public TO gridgov_api;
SQL
}

protect_audit_log() {
    # protect_audit_log DB: hand audit_log to a role nobody logs in as, so that the app role
    # may only read and append (no UPDATE, DELETE, TRUNCATE, ALTER or DISABLE TRIGGER).
    local db=$1
    "${PSQL[@]}" -d "$db" -v app="$APP_ROLE" <<'SQL'
SET client_min_messages = warning;
SELECT 'CREATE ROLE gridgov_audit NOLOGIN'
 WHERE NOT EXISTS (SELECT FROM pg_roles WHERE rolname = 'gridgov_audit') \gexec
SELECT 'ALTER TABLE audit_log OWNER TO gridgov_audit'
 WHERE (SELECT tableowner FROM pg_tables WHERE tablename = 'audit_log') <> 'gridgov_audit' \gexec
ALTER FUNCTION gridgov_audit_guard() OWNER TO gridgov_audit;
ALTER FUNCTION gridgov_audit_stamp() OWNER TO gridgov_audit;
GRANT SELECT, INSERT ON audit_log TO :"app";
GRANT USAGE ON SEQUENCE audit_log_id_seq TO :"app";
-- The app role owns the schema, and a schema's owner may drop what is in it: an event
-- trigger (only a superuser can make or remove one; its function in a schema of the
-- superuser's) refuses that for the audit log, also through DROP SCHEMA … CASCADE.
CREATE SCHEMA IF NOT EXISTS gridgov_guard;
REVOKE ALL ON SCHEMA gridgov_guard FROM PUBLIC;
CREATE OR REPLACE FUNCTION gridgov_guard.audit_keep() RETURNS event_trigger
LANGUAGE plpgsql AS $fn$
DECLARE
    gone record;
BEGIN
    IF (SELECT rolsuper FROM pg_roles WHERE rolname = current_user) THEN
        RETURN;  -- the DBA may still archive and drop
    END IF;
    FOR gone IN SELECT * FROM pg_event_trigger_dropped_objects() LOOP
        IF gone.object_identity = 'public.audit_log'
           OR gone.object_identity LIKE '% on public.audit_log' THEN
            RAISE EXCEPTION '审计日志不能删除 (audit_log cannot be dropped)'
                USING ERRCODE = 'insufficient_privilege';
        END IF;
    END LOOP;
END
$fn$;
SELECT 'CREATE EVENT TRIGGER gridgov_audit_keep ON sql_drop '
       'EXECUTE FUNCTION gridgov_guard.audit_keep()'
 WHERE NOT EXISTS (SELECT FROM pg_event_trigger WHERE evtname = 'gridgov_audit_keep') \gexec
SQL
}

ensure_chromium() {
    # Page tests drive Debian's Chromium through Playwright (no browser download).
    local missing=()
    [ -x /usr/bin/chromium ] || missing+=(chromium)
    # Chinese labels must render as Chinese in screenshots, not as empty boxes.
    fc-list :lang=zh 2>/dev/null | grep -q . || missing+=(fonts-noto-cjk)
    [ ${#missing[@]} -eq 0 ] && return 0
    apt_install "${missing[@]}" || die "page tests need Chromium and CJK fonts: apt-get install ${missing[*]}"
}

main() {
    ensure_venv
    if [ -n "${DATABASE_URL:-}${GRIDGOV_DATABASE_URL:-}" ]; then
        say "using the PostGIS at DATABASE_URL; no local server is started"
        case "$MODE" in
            test) "$VENV/bin/gridgov" db create --test ;;
            bench) "$VENV/bin/gridgov" db create --bench ;;
            *) "$VENV/bin/gridgov" db create ;;
        esac
    else
        ensure_postgis_packages
        ensure_cluster
        ensure_local_database gridgov
        if [ "$MODE" = test ]; then ensure_local_database gridgov_test; fi
        if [ "$MODE" = bench ]; then ensure_local_database gridgov_bench; fi
        write_local_env
    fi
    ensure_keys
    case "$MODE" in
        serve)
            "$VENV/bin/gridgov" db migrate
            # Only with the local cluster is a superuser at hand (see README, Audit).
            if [ -z "${DATABASE_URL:-}${GRIDGOV_DATABASE_URL:-}" ]; then
                grant_api_role gridgov
                protect_audit_log gridgov
            fi
            "$VENV/bin/gridgov" user ensure-admin ;;
        test) ensure_chromium ;;
        bench)
            "$VENV/bin/pip" install -q -e "$ROOT[dev,bench]"
            "$VENV/bin/gridgov" db migrate --bench ;;
        *) die "unknown mode $MODE (serve, test or bench)" ;;
    esac
}

main
