#!/usr/bin/env bash
# The ecosystem's own validators and generators for the contract documents, pinned and
# installed under .run/tools (nothing global):
#   contract-tools.sh install            the AsyncAPI parser (npm, from the lock file
#                                         beside this script) and openapi-python-client
#                                         (PyPI, in its own venv: it pins an older typer)
#   contract-tools.sh asyncapi FILE...   the official parser over AsyncAPI documents;
#                                         fails on any error or warning
#   contract-tools.sh openapi-client ARGS  openapi-python-client
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

TOOLS="${CARBON_TOOLS_DIR:-$CARBON_ROOT/.run/tools}"
ASYNCAPI="$TOOLS/asyncapi"
CLIENTGEN="$TOOLS/openapi-python-client"
HERE="$CARBON_ROOT/deploy/local/asyncapi"
OPENAPI_PYTHON_CLIENT_VERSION=0.29.1

install_asyncapi() {
  mkdir -p "$ASYNCAPI"
  cp "$HERE/validate.mjs" "$ASYNCAPI/"
  if [[ -d "$ASYNCAPI/node_modules/@asyncapi/parser" ]] \
    && cmp -s "$HERE/package-lock.json" "$ASYNCAPI/package-lock.json"; then
    return 0
  fi
  command -v npm >/dev/null || die "npm is needed for the AsyncAPI parser (apt-get install npm)"
  log "installing @asyncapi/parser from deploy/local/asyncapi/package-lock.json"
  cp "$HERE/package.json" "$HERE/package-lock.json" "$ASYNCAPI/"
  (cd "$ASYNCAPI" && npm ci --no-audit --no-fund --loglevel=error >/dev/null) \
    || die "npm ci of the AsyncAPI parser failed"
}

install_clientgen() {
  [[ -x "$CLIENTGEN/bin/openapi-python-client" ]] && return 0
  log "installing openapi-python-client $OPENAPI_PYTHON_CLIENT_VERSION into $CLIENTGEN"
  "${PYTHON:-python3}" -m venv "$CLIENTGEN"
  "$CLIENTGEN/bin/python" -m pip install -q --disable-pip-version-check \
    "openapi-python-client==$OPENAPI_PYTHON_CLIENT_VERSION" || die "pip install failed"
}

case "${1:-}" in
  install) install_asyncapi; install_clientgen ;;
  asyncapi) shift; install_asyncapi; exec node "$ASYNCAPI/validate.mjs" "$@" ;;
  openapi-client) shift; install_clientgen; exec "$CLIENTGEN/bin/openapi-python-client" "$@" ;;
  *) die "usage: contract-tools.sh install | asyncapi FILE... | openapi-client ARGS" ;;
esac
