#!/usr/bin/env bash
# Creates the project's virtual environment and installs the project into it.
# Idempotent: pip skips what is already there, so a second run is fast.
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"
cd "$CARBON_ROOT"
PYTHON="${PYTHON:-python3}"
"$PYTHON" -c 'import sys; sys.exit(sys.version_info < (3, 11))' \
  || die "Python 3.11+ is needed ($PYTHON is $("$PYTHON" --version 2>&1))"
[[ -x .venv/bin/python ]] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip >/dev/null
log "installing the project and its dependencies into .venv"
.venv/bin/python -m pip install -q --disable-pip-version-check -c constraints.txt -e '.[dev,bench]' \
  -e 'sdk/python[httpx]'  # the partner SDK: its tests and the example subscriber use it
