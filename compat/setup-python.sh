#!/usr/bin/env bash
# The Python-driven compat clients: kafka-python, confluent-kafka (librdkafka) and aiokafka
# in the project venv, and Debian's kcat. Idempotent; compat/setup runs it.
set -euo pipefail
here=$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)
repo=$(dirname "$here")
python=$repo/.venv/bin/python

if [[ ! -x $python ]]; then
    python3 -m venv "$repo/.venv"
fi
if ! "$python" -c "import kafka, confluent_kafka, aiokafka, snappy, lz4, zstandard" 2>/dev/null; then
    "$python" -m pip install -q -e "$repo[test]" "aiokafka>=0.12,<1"
fi

if ! command -v kcat >/dev/null; then
    export DEBIAN_FRONTEND=noninteractive
    apt-get install -y -q kcat || { apt-get update -q && apt-get install -y -q kcat; }
fi
