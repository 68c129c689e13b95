#!/usr/bin/env bash
# Everything the test suite needs, then the suite: a virtual environment (the active one, else
# ./.venv), the project with its test extra (scripts/venv.sh), Debian's Chromium for the
# browser tests, pytest.
#   bash scripts/test.sh [pytest args]
# Without Chromium (apt-get failed, or not root) the other tests still run and the browser
# tests skip, saying why; under CI=true they fail instead. $MEXC_PAPER_CHROMIUM names another
# Chromium than /usr/bin/chromium (tests/browser/browser_support.py reads it too).
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/venv.sh
. scripts/venv.sh
use_venv test

chromium=${MEXC_PAPER_CHROMIUM:-/usr/bin/chromium}
without="running the tests without Chromium: the browser tests skip and say why (under CI=true they fail)"
if [ ! -x "$chromium" ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian's chromium for the browser tests (apt-get)"
    log=$(mktemp)
    if apt-get install -y -qq chromium >"$log" 2>&1 \
        || { apt-get update -qq >>"$log" 2>&1 && apt-get install -y -qq chromium >>"$log" 2>&1; }; then
      echo "installed $(command -v chromium || echo chromium)"
    else
      rc=$?
      echo "scripts/test.sh: apt-get could not install chromium (exit $rc); its last lines:" >&2
      tail -n 5 "$log" | sed 's/^/    /' >&2
      echo "scripts/test.sh: $without" >&2
    fi
    rm -f "$log"
  else
    echo "scripts/test.sh: $chromium is missing and apt-get needs root here" \
      "('sudo apt-get install chromium' installs it); $without" >&2
  fi
fi

exec python -m pytest "$@"
