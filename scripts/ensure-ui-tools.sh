#!/usr/bin/env bash
# Make sure the web UI's tests can run: Chromium at /usr/bin/chromium (the browser tests drive
# it through Playwright; Playwright's own browser download is not used) and Node.js with npm
# (the bundle check rebuilds ui/ with the locked toolchain). Installs Debian's packages when
# missing, as root or with passwordless sudo; otherwise says what is missing and goes on
# (the tests then skip locally, and fail in CI).
set -uo pipefail
log() { echo "ensure-ui-tools: $*" >&2; }

missing=()
[ -x /usr/bin/chromium ] || missing+=(chromium)
command -v node >/dev/null 2>&1 || missing+=(nodejs)
command -v npm >/dev/null 2>&1 || missing+=(npm)
[ ${#missing[@]} -eq 0 ] && exit 0

SUDO=""
if [ "$(id -u)" != "0" ]; then
  if command -v sudo >/dev/null 2>&1 && sudo -n true 2>/dev/null; then SUDO="sudo -n"
  else log "missing ${missing[*]} and no root to install them"; exit 0; fi
fi
log "installing Debian's ${missing[*]}"
export DEBIAN_FRONTEND=noninteractive
$SUDO apt-get update -qq >&2 && $SUDO apt-get install -y -qq --no-install-recommends "${missing[@]}" >&2 \
  || log "could not install ${missing[*]}"
exit 0
