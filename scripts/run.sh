#!/usr/bin/env bash
# Everything the sidecar needs, then the sidecar: a virtual environment (unless one is
# active), the project installed from pyproject.toml, `python -m proxy` with your arguments.
#   bash scripts/run.sh [--config PATH] [--host H] [--port P] [--replay CASSETTE] ...
set -euo pipefail
cd "$(dirname "$0")/.."

if [ -z "${VIRTUAL_ENV:-}" ]; then
  [ -x .venv/bin/python ] || python3 -m venv .venv
  # shellcheck disable=SC1091
  . .venv/bin/activate
fi
python -m pip install -q --disable-pip-version-check -e .
exec python -m proxy "$@"
