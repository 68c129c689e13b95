#!/usr/bin/env bash
# Everything the sidecar needs, then the sidecar: a virtual environment (the active one, else
# ./.venv, created if missing), the project installed from pyproject.toml (again only when
# pyproject.toml changed: scripts/venv.sh), `python -m proxy` with your arguments.
#   bash scripts/run.sh [--config PATH] [--host H] [--port P] [--replay CASSETTE] [--db PATH] ...
set -euo pipefail
cd "$(dirname "$0")/.."
# shellcheck source=scripts/venv.sh
. scripts/venv.sh
use_venv
exec python -m proxy "$@"
