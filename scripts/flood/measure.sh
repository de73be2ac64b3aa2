#!/bin/bash
# How fast an unauthenticated flood grows the database (docs/RELIABILITY.md, "Floods of refused requests").
#   bash scripts/flood/measure.sh [CLI] [PORT]
# CLI: the built dist/src/cli.js to measure (default this checkout's; pass an older build's to compare).
# Starts an HTTP server on the simulator, sends 10 s of refused /mcp POSTs, then 10 s of webhooks (8 in flight each),
# and checkpoints the WAL into the file before and after, so the figure is what stays on disk.
set -euo pipefail
ROOT=$(cd "$(dirname "$0")/../.." && pwd)
CLI=${1:-$ROOT/dist/src/cli.js}; PORT=${2:-38111}
W=$(mktemp -d); mkdir -p "$W/policies"; cp "$ROOT"/policies/*.yaml "$W/policies/"
MOLLIE_MCP_DB=$W/audit.db MOLLIE_MCP_POLICIES=$W/policies MOLLIE_MCP_WEBHOOK_URL=https://hooks.example.com/webhooks/mollie LOG_LEVEL=error \
  node "$CLI" serve --transport http --simulator --port "$PORT" > "$W/server.log" 2>&1 &
PID=$!; trap 'kill $PID 2>/dev/null || true; rm -rf "$W"' EXIT; sleep 1.5
size() { node -e "
  const D = require('$ROOT/node_modules/better-sqlite3'); const db = new D('$W/audit.db');
  db.pragma('wal_checkpoint(TRUNCATE)'); const n = db.prepare('select count(*) n from audit_log').get().n; db.close();
  console.log(require('fs').statSync('$W/audit.db').size, n)"; }
read -r B0 R0 <<< "$(size)"
MCP=$(node "$ROOT/scripts/flood/flood.mjs" "http://127.0.0.1:$PORT" "$W/audit.db" 10 8 /mcp)
read -r B1 R1 <<< "$(size)"
HOOK=$(node "$ROOT/scripts/flood/flood.mjs" "http://127.0.0.1:$PORT" "$W/audit.db" 10 8 /webhooks/mollie)
kill $PID; sleep 1
read -r B2 R2 <<< "$(size)"
echo "refused /mcp: $MCP; audit rows +$((R1-R0)), database +$((B1-B0)) bytes"
echo "webhooks:     $HOOK; audit rows +$((R2-R1)), database +$((B2-B1)) bytes"
