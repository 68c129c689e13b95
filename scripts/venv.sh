# Sourced by scripts/run.sh and scripts/test.sh (from the repository root).
#
# use_venv EXTRA: use the active virtual environment, else ./.venv (created if missing), and
# install the project into it (`pip install -e .`, or `-e '.[EXTRA]'`) unless that install is
# already there. A stamp in the environment records the hash of pyproject.toml, the checkout
# and the extra it was installed with: the next run starts at once, and a changed
# pyproject.toml (a new dependency after `git pull`) installs again. Delete the stamp (or the
# environment) to force an install.

# shellcheck shell=bash

stamp_line() {  # the stamp line for this checkout and extra ("-" for none)
  printf '%s %s %s\n' \
    "$(python -c 'import hashlib; print(hashlib.sha256(open("pyproject.toml", "rb").read()).hexdigest())')" \
    "$PWD" "${1:--}"
}

mark_installed() {  # record that the project is installed with extra $1 here
  stamp_line "${1:-}" >"$VIRTUAL_ENV/.mexc-paper-installed"
}

installed() {  # is the project installed with extra $1 (or with `test`, which has it all)?
  local stamp="$VIRTUAL_ENV/.mexc-paper-installed"
  [ -f "$stamp" ] || return 1
  grep -qxF "$(stamp_line "${1:-}")" "$stamp" || grep -qxF "$(stamp_line test)" "$stamp"
}

use_venv() {
  if [ -z "${VIRTUAL_ENV:-}" ]; then
    [ -x .venv/bin/python ] || python3 -m venv .venv
    # shellcheck disable=SC1091
    . .venv/bin/activate
  fi
  installed "${1:-}" && return 0
  echo "installing mexc-paper${1:+ with its $1 extra} into $VIRTUAL_ENV"
  python -m pip install -q --disable-pip-version-check -e ".${1:+[$1]}"
  mark_installed "${1:-}"
}
