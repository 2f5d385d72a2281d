#!/usr/bin/env bash
# Run the suite in both model configurations (default and swapped) on SQLite, on PostgreSQL
# (127.0.0.1:5432 unless PGHOST/PGPORT say otherwise) and on MariaDB or MySQL (127.0.0.1:3306,
# user root without password, unless MYSQL_HOST/MYSQL_PORT/MYSQL_USER/MYSQL_PASSWORD say
# otherwise). Locally a server that does not answer (or, for MariaDB, a missing driver:
# pip install -e ".[mysql]") is skipped; with CI=true it must answer or the run fails.
#
# The runs go TEST_JOBS at a time (default 2; TEST_JOBS=1 runs them one after another): as a
# run ends, the next one in the queue starts. Each run writes its own log, printed in full as
# soon as the run ends, and a summary at the end gives every run's result and time. The exit
# status is 1 if any run fails or collects no tests (pytest's exit code 5).
#
# The server is DATABASE_URL's (postgres://user:password@host:port/name) when set, else the
# PG* variables'. Each PostgreSQL run has a database name of its own, so that two never share
# one: PGDATABASE (or the URL's name; default "test") with "_default" or "_swapped" appended.
# Django creates and drops the test databases, those names with "test_" in front, through the
# server's maintenance database: no database needs to exist beforehand. Two checkouts that run
# this at the same time against one server need different PGDATABASE values.
# The MariaDB runs do the same with MYSQL_DATABASE (default "test"); Django creates their test
# databases itself.
#
# The PostgreSQL and MariaDB runs with the swapped models run only the tests that need a
# server (marked "postgres" or "concurrent": concurrency, processes, migrations over rows),
# tests/test_string_course_key.py and the tests marked "every_database"; the swapped models are
# tested in full on SQLite.
# TEST_FULL_SWAPPED_POSTGRES=1 and TEST_FULL_SWAPPED_MARIADB=1 run the whole suite there too.
#
# TEST_RUNS chooses the runs and their order (default: all six, the servers first as they take
# longest). Arguments go to every pytest run. For example, what .ci/run does for Schemathesis:
#   TEST_RUNS="postgres-default sqlite-default sqlite-swapped" bash scripts/run-tests.sh \
#     -m schemathesis tests/test_api_schemathesis.py
set -uo pipefail
PY=${PY:-python}
JOBS=${TEST_JOBS:-2}
# DATABASE_URL: its parts become the PG* variables every run uses (each run its own name).
if [ -n "${DATABASE_URL:-}" ]; then
  eval "$("$PY" - <<'PYEOF'
import os, shlex
from urllib.parse import unquote, urlsplit
url = urlsplit(os.environ["DATABASE_URL"])
if url.scheme in ("postgres", "postgresql"):
    parts = {"PGHOST": url.hostname, "PGPORT": url.port, "PGUSER": url.username,
             "PGPASSWORD": url.password, "PGDATABASE": url.path.lstrip("/")}
    for key, value in parts.items():
        if value:
            print(f"export {key}={shlex.quote(unquote(str(value)))}")
    print("unset DATABASE_URL")
PYEOF
)"
fi
PG_BASE=${PGDATABASE:-test}
MYSQL_BASE=${MYSQL_DATABASE:-test}
read -r -a RUNS <<<"${TEST_RUNS:-postgres-default mariadb-default sqlite-default postgres-swapped mariadb-swapped sqlite-swapped}"
PYTEST_ARGS=("$@")

label() {
  case $1 in
    sqlite-default) echo "SQLite, default models" ;;
    sqlite-swapped) echo "SQLite, swapped models" ;;
    postgres-default) echo "PostgreSQL, default models" ;;
    postgres-swapped) echo "PostgreSQL, swapped models" ;;
    mariadb-default) echo "MariaDB, default models" ;;
    mariadb-swapped) echo "MariaDB, swapped models" ;;
    *) return 1 ;;
  esac
}

pg_database() { echo "${PG_BASE}_${1#postgres-}"; }
mysql_database() { echo "${MYSQL_BASE}_${1#mariadb-}"; }

for run in "${RUNS[@]}"; do
  label "$run" >/dev/null || {
    echo "!!! unknown run '$run' in TEST_RUNS (sqlite-default, sqlite-swapped," \
      "postgres-default, postgres-swapped, mariadb-default, mariadb-swapped)" >&2
    exit 2
  }
done
case $JOBS in '' | *[!0-9]* | 0) echo "!!! TEST_JOBS must be a number >= 1" >&2; exit 2 ;; esac

# PostgreSQL: does the server answer?
pg_databases=()
for run in "${RUNS[@]}"; do
  case $run in postgres-*) pg_databases+=("$(pg_database "$run")") ;; esac
done
if [ ${#pg_databases[@]} -gt 0 ]; then
  if "$PY" - "${pg_databases[@]}" <<'PYEOF'
import os, sys
import psycopg

params = dict(host=os.environ.get("PGHOST", "127.0.0.1"), port=os.environ.get("PGPORT", "5432"),
              user=os.environ.get("PGUSER", "postgres"), password=os.environ.get("PGPASSWORD", ""),
              connect_timeout=5, autocommit=True)
try:
    try:  # the maintenance database, as Django uses it; else the one PGDATABASE names
        conn = psycopg.connect(**params, dbname="postgres")
    except psycopg.OperationalError as exc:
        if "does not exist" not in str(exc):
            raise
        conn = psycopg.connect(**params, dbname=os.environ.get("PGDATABASE", "test"))
    conn.close()
except Exception as exc:
    print(f"PostgreSQL does not answer: {exc}", file=sys.stderr)
    sys.exit(1)
PYEOF
  then
    pg=yes
  else
    pg=no
  fi
  if [ "$pg" = no ] && [ "${CI:-}" != "true" ]; then
    echo "=== PostgreSQL skipped: no server answers at ${PGHOST:-127.0.0.1}:${PGPORT:-5432}"
    kept=()
    for run in "${RUNS[@]}"; do
      case $run in postgres-*) ;; *) kept+=("$run") ;; esac
    done
    RUNS=(${kept[@]+"${kept[@]}"})
  fi
  # Under CI=true an unreachable server makes the PostgreSQL runs fail (see tests/conftest.py).
fi

# MariaDB/MySQL: is the driver installed and does the server answer? (Django creates the test
# databases; the server needs no database of ours.)
has_mariadb=no
for run in "${RUNS[@]}"; do
  case $run in mariadb-*) has_mariadb=yes ;; esac
done
if [ "$has_mariadb" = yes ]; then
  if "$PY" - <<'PYEOF'
import os, sys

try:
    import MySQLdb
except ImportError as exc:
    print(f"The MariaDB/MySQL driver is missing (pip install -e '.[mysql]'): {exc}",
          file=sys.stderr)
    sys.exit(1)
try:
    MySQLdb.connect(host=os.environ.get("MYSQL_HOST", "127.0.0.1"),
                    port=int(os.environ.get("MYSQL_PORT", "3306")),
                    user=os.environ.get("MYSQL_USER", "root"),
                    password=os.environ.get("MYSQL_PASSWORD", ""), connect_timeout=5).close()
except Exception as exc:
    print(f"MariaDB/MySQL does not answer: {exc}", file=sys.stderr)
    sys.exit(1)
PYEOF
  then
    mariadb=yes
  else
    mariadb=no
  fi
  if [ "$mariadb" = no ] && [ "${CI:-}" != "true" ]; then
    echo "=== MariaDB skipped: no driver, or no server answers at" \
      "${MYSQL_HOST:-127.0.0.1}:${MYSQL_PORT:-3306}"
    kept=()
    for run in "${RUNS[@]}"; do
      case $run in mariadb-*) ;; *) kept+=("$run") ;; esac
    done
    RUNS=(${kept[@]+"${kept[@]}"})
  fi
  # Under CI=true the MariaDB runs then fail (see tests/conftest.py).
fi

if [ ${#RUNS[@]} -eq 0 ]; then
  echo "!!! no runs left to do" >&2
  exit 1
fi

work=$(mktemp -d "${TMPDIR:-/tmp}/liveclass-tests.XXXXXX") || exit 1
echo 0 >"$work/next"

# A lock for the queue and one for the output, portable (mkdir is atomic).
lock() { until mkdir "$work/$1.lock" 2>/dev/null; do sleep 0.1; done; }
unlock() { rmdir "$work/$1.lock"; }

run_one() {
  local run=$1 start rc secs verdict
  local log="$work/$run.log"
  local -a env=() args=(-p no:cacheprovider)
  case $run in
    sqlite-*)
      env+=(TEST_DATABASE=sqlite)
      # A test database in a file (opt-in): one file per run.
      [ -z "${SQLITE_TEST_PATH:-}" ] || env+=("SQLITE_TEST_PATH=$SQLITE_TEST_PATH.$run")
      ;;
    postgres-*) env+=(TEST_DATABASE=postgres "PGDATABASE=$(pg_database "$run")") ;;
    mariadb-*) env+=(TEST_DATABASE=mariadb "MYSQL_DATABASE=$(mysql_database "$run")") ;;
  esac
  case $run in *-swapped) args+=(--ds=tests.settings_swapped) ;; esac
  # A server with the swapped models: the tests that need a server (concurrency, real
  # processes, migrations over rows) and the string course keys, unless arguments choose
  # otherwise; everything else about the swapped models runs in full on SQLite.
  # TEST_FULL_SWAPPED_POSTGRES=1 / TEST_FULL_SWAPPED_MARIADB=1 run it all.
  if [ ${#PYTEST_ARGS[@]} -eq 0 ] && {
    { [ "$run" = postgres-swapped ] && [ "${TEST_FULL_SWAPPED_POSTGRES:-}" != 1 ]; } \
      || { [ "$run" = mariadb-swapped ] && [ "${TEST_FULL_SWAPPED_MARIADB:-}" != 1 ]; }
  }; then
    args+=(-m "postgres or concurrent or string_course_key or every_database")
  fi
  start=$SECONDS
  env "${env[@]}" "$PY" -m pytest "${args[@]}" ${PYTEST_ARGS[@]+"${PYTEST_ARGS[@]}"} \
    </dev/null >"$log" 2>&1
  rc=$?
  if [ $rc -eq 5 ]; then
    echo "!!! $(label "$run") collected no tests: treating that as a failure" >>"$log"
    rc=1
  fi
  secs=$((SECONDS - start))
  if [ $rc -eq 0 ]; then verdict=passed; else verdict="FAILED (exit $rc)"; fi
  echo "$rc $secs" >"$work/$run.rc"
  lock output
  echo
  echo "=== $(label "$run"): $verdict in ${secs}s (${env[*]})"
  cat "$log"
  unlock output
}

lane() {
  local i
  while :; do
    lock queue
    i=$(cat "$work/next")
    echo $((i + 1)) >"$work/next"
    unlock queue
    [ "$i" -lt ${#RUNS[@]} ] || return 0
    run_one "${RUNS[$i]}"
  done
}

# Each lane is a job of its own (its own process group), so that an interrupt can stop it
# with its pytest and that pytest's subprocesses.
lanes=()
# shellcheck disable=SC2317  # called by the trap
stop() {
  trap - INT TERM
  echo "!!! interrupted: stopping the runs" >&2
  for pid in "${lanes[@]}"; do kill -TERM -- "-$pid" 2>/dev/null; done
  { wait; } 2>/dev/null
  rm -rf "$work"
  exit 130
}
trap stop INT TERM

[ "$JOBS" -le ${#RUNS[@]} ] || JOBS=${#RUNS[@]}
echo "=== ${#RUNS[@]} runs, $JOBS at a time: ${RUNS[*]}"
set -m
for ((j = 0; j < JOBS; j++)); do
  lane &
  lanes+=($!)
done
wait
set +m

status=0
echo
echo "=== summary"
for run in "${RUNS[@]}"; do
  if [ -f "$work/$run.rc" ]; then
    read -r rc secs <"$work/$run.rc"
  else
    rc=missing secs="?"
  fi
  if [ "$rc" = 0 ]; then verdict=passed; else verdict="FAILED ($rc)"; status=1; fi
  printf '  %-28s %-12s %ss\n' "$(label "$run")" "$verdict" "$secs"
done
rm -rf "$work"
exit $status
