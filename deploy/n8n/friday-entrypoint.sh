#!/bin/sh
# Refresh the bundled n8n-nodes-friday package inside the (possibly old) data
# volume, then hand over to the stock n8n entrypoint.
set -e
DEST="${N8N_USER_FOLDER:-/home/node}/.n8n/nodes/node_modules/n8n-nodes-friday"
if [ -d /opt/friday/n8n-nodes-friday ]; then
    mkdir -p "$DEST"
    rm -rf "$DEST"
    cp -R /opt/friday/n8n-nodes-friday "$DEST"
fi
exec /docker-entrypoint.sh "$@"
