#!/usr/bin/env bash
# Everything the test suite needs, then the suite: a virtual environment (unless one is
# active), the project with its test extra, Debian's Chromium for the browser tests, pytest.
#   bash scripts/test.sh [pytest args]
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${VIRTUAL_ENV:-}" ]; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  # shellcheck disable=SC1091
  . .venv/bin/activate
fi
python -m pip install -q --disable-pip-version-check -e '.[test]'

if [ ! -x /usr/bin/chromium ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null; then
    echo "installing Debian's chromium for the browser tests"
    apt-get install -y -qq chromium chromium-driver >/dev/null 2>&1 \
      || { apt-get update -qq >/dev/null 2>&1; apt-get install -y -qq chromium chromium-driver >/dev/null; }
  else
    echo "warning: /usr/bin/chromium missing; run 'sudo apt-get install chromium' for the browser tests" >&2
  fi
fi

exec python -m pytest "$@"
