#!/usr/bin/env bash
# Browser tooling for UI checks of n8n (optional; the n8n e2e tests don't need it):
#  - Debian's chromium at /usr/bin/chromium (apt-get, only when missing);
#  - playwright-core (npm) in ${FRIDAY_CACHE_DIR:-~/.cache/friday}/playwright-core-<ver>.
# Never downloads a browser build (playwright-core has none; the download is also
# disabled explicitly). Launch with executablePath '/usr/bin/chromium' and
#   --headless --no-sandbox --disable-gpu --disable-background-networking
#   --disable-component-update --disable-sync --no-first-run
#
#   eval "$(scripts/n8n/install-browser.sh --env)"  # FRIDAY_CHROMIUM, FRIDAY_PLAYWRIGHT_NODE_PATH
set -euo pipefail

PLAYWRIGHT_VERSION="${PLAYWRIGHT_VERSION:-latest}"
CACHE_ROOT="${FRIDAY_CACHE_DIR:-$HOME/.cache/friday}"
MODE="${1:-}"
log() { echo "[browser-install] $*" >&2; }

if [ ! -x /usr/bin/chromium ]; then
    log "installing Debian chromium"
    SUDO=""
    [ "$(id -u)" -eq 0 ] || SUDO="sudo"
    export DEBIAN_FRONTEND=noninteractive
    $SUDO apt-get update -qq >&2
    $SUDO apt-get install -y -qq --no-install-recommends chromium >&2
fi
[ -x /usr/bin/chromium ] || { log "chromium still missing at /usr/bin/chromium"; exit 1; }

# Resolve "latest" once so the cache folder is keyed by a real version.
if [ "$PLAYWRIGHT_VERSION" = "latest" ]; then
    found="$(ls -d "$CACHE_ROOT"/playwright-core-*/.complete 2>/dev/null | sort -V | tail -1 || true)"
    if [ -n "$found" ]; then
        PLAYWRIGHT_VERSION="$(basename "$(dirname "$found")")"
        PLAYWRIGHT_VERSION="${PLAYWRIGHT_VERSION#playwright-core-}"
    else
        PLAYWRIGHT_VERSION="$(npm view playwright-core version)"
    fi
fi
DEST="$CACHE_ROOT/playwright-core-$PLAYWRIGHT_VERSION"
if [ ! -f "$DEST/.complete" ]; then
    log "installing playwright-core@$PLAYWRIGHT_VERSION into $DEST"
    rm -rf "$DEST"
    mkdir -p "$DEST"
    (
        cd "$DEST"
        echo '{"name":"friday-playwright","private":true}' > package.json
        PLAYWRIGHT_SKIP_BROWSER_DOWNLOAD=1 npm install --no-audit --no-fund --loglevel=error \
            "playwright-core@$PLAYWRIGHT_VERSION" >&2
    )
    touch "$DEST/.complete"
fi

if [ "$MODE" = "--env" ]; then
    echo "export FRIDAY_CHROMIUM=/usr/bin/chromium"
    echo "export FRIDAY_PLAYWRIGHT_NODE_PATH='$DEST/node_modules'"
else
    echo "chromium:        /usr/bin/chromium ($(/usr/bin/chromium --version 2>/dev/null || echo '?'))"
    echo "playwright-core: $DEST/node_modules/playwright-core"
fi
