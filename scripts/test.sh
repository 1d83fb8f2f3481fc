#!/usr/bin/env bash
# Install everything and run the whole test suite twice: on SQLite with the in-process store, then on
# PostgreSQL with Redis (plus the multi-process and browser tests). Extra arguments go to pytest.
set -euo pipefail
cd "$(dirname "$0")/.."

PY="${PYTHON:-python3}"
[ -x .venv/bin/python ] || "$PY" -m venv .venv
.venv/bin/pip install -q --disable-pip-version-check -e '.[test]'
bash scripts/services.sh

run() {
  local label="$1"; shift
  echo "== $label =="
  set +e
  "$@"
  local rc=$?
  set -e
  if [ "$rc" -eq 5 ]; then
    echo "pytest collected no tests in '$label': that is a failure here" >&2
    exit 1
  elif [ "$rc" -ne 0 ]; then
    exit "$rc"
  fi
}

run "SQLite + in-process store" env TEST_DB=sqlite TEST_KV=memory .venv/bin/pytest -m "not slow and not browser" "$@"
run "PostgreSQL + Redis (all tests but the language corpus)" env TEST_DB=postgres TEST_KV=redis .venv/bin/pytest -m "not corpus" "$@"
