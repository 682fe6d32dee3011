#!/usr/bin/env bash
# Builds the franz-go runner (go build) and installs the kafkajs runner's
# packages (npm ci), for compat/setup to call. Idempotent: go build is
# incremental, and npm ci is skipped while node_modules matches package.json and package-lock.json.
set -euo pipefail

compat="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"

franz_go="$compat/clients/franz-go"
echo "compat/setup-go-node: go build (franz-go runner)"
(cd "$franz_go" && GOFLAGS="${GOFLAGS:-} -mod=readonly" go build -o franz-go-runner .)
"$franz_go/run" --list > /dev/null

kafkajs="$compat/clients/kafkajs"
stamp="$kafkajs/node_modules/.gregor-package-lock.sha256"
lock_sha256="$(cat "$kafkajs/package.json" "$kafkajs/package-lock.json" | sha256sum | cut -d' ' -f1)"
if [[ -f "$stamp" && "$(cat "$stamp")" == "$lock_sha256" ]]; then
    echo "compat/setup-go-node: kafkajs node_modules already match package.json and package-lock.json"
else
    echo "compat/setup-go-node: npm ci (kafkajs runner)"
    # @kafkajs/zstd's native cppzst asks for C++11, but Node 20's headers need C++17.
    (cd "$kafkajs" && CXXFLAGS="-std=c++17" npm ci --no-audit --no-fund)
    echo "$lock_sha256" > "$stamp"
fi
# Loading every codec proves the native zstd binding was built.
(cd "$kafkajs" && node -e "require('./kafka')")
"$kafkajs/run" --list > /dev/null
echo "compat/setup-go-node: franz-go and kafkajs runners ready"
