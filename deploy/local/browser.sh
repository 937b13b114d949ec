#!/usr/bin/env bash
# The headless browser the portal's browser tests drive (tests/integration/test_portal.py):
# Debian's chromium, and a CJK font so the pages' Chinese renders in screenshots.
# Playwright drives it through its executable path; no browser is ever downloaded.
#   browser.sh install    install both with apt-get unless already there
#   browser.sh path       print the chromium the tests use
source "$(dirname "${BASH_SOURCE[0]}")/common.sh"

CHROMIUM="${CARBON_CHROMIUM:-/usr/bin/chromium}"

install() {
  if [[ -x "$CHROMIUM" ]] && fc-list 2>/dev/null | grep -qi "wqy\|noto sans cjk"; then
    return 0
  fi
  local sudo=""
  [[ $(id -u) -eq 0 ]] || sudo="sudo"
  log "installing Debian's chromium and a CJK font (for the portal's browser tests)"
  # apt may not yet know the packages on a fresh machine: refresh its lists once.
  if ! DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium fonts-wqy-zenhei; then
    $sudo apt-get update -qq
    DEBIAN_FRONTEND=noninteractive $sudo apt-get install -y -qq chromium fonts-wqy-zenhei \
      || die "apt-get install chromium fonts-wqy-zenhei failed"
  fi
}

case "${1:-}" in
  install) install ;;
  path) echo "$CHROMIUM" ;;
  *) die "usage: browser.sh install|path" ;;
esac
