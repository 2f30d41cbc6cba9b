#!/usr/bin/env bash
# Install everything portflow needs on a fresh Debian machine: system servers and tools (as root,
# where missing), a virtualenv in .venv with portflow and its test and lint tools, and Apache
# Kafka's jars from Maven Central (scripts/fetch-kafka.sh: 4.x, and 3.9 for its test lane). Safe
# to run again.
set -euo pipefail
cd "$(dirname "$0")/.."

missing=()
command -v redis-server >/dev/null 2>&1 || missing+=(redis-server)
command -v promtool >/dev/null 2>&1 || missing+=(prometheus)
command -v amtool >/dev/null 2>&1 || missing+=(prometheus-alertmanager)  # checks alertmanager.yml
command -v docker-compose >/dev/null 2>&1 || missing+=(docker-compose)    # validates the compose file
command -v kcat >/dev/null 2>&1 || missing+=(kcat)                        # a client nobody here wrote
command -v java >/dev/null 2>&1 || missing+=(openjdk-17-jre-headless)     # runs Apache Kafka
command -v mvn >/dev/null 2>&1 || missing+=(maven)                        # fetches Apache Kafka
command -v openssl >/dev/null 2>&1 || missing+=(openssl)                  # the TLS tests' CA
if [ ${#missing[@]} -gt 0 ]; then
  if [ "$(id -u)" = 0 ] && command -v apt-get >/dev/null 2>&1; then
    echo "setup: installing ${missing[*]} with apt-get" >&2
    apt-get update -qq
    DEBIAN_FRONTEND=noninteractive apt-get install -y -qq --no-install-recommends "${missing[@]}" >/dev/null
  else
    echo "setup: please install ${missing[*]} (e.g. sudo apt-get install ${missing[*]})" >&2
  fi
fi

PYTHON=${PYTHON:-python3}
"$PYTHON" -c 'import sys; sys.exit(0 if sys.version_info >= (3, 11) else "portflow needs Python 3.11 or newer")'
[ -x .venv/bin/python ] || "$PYTHON" -m venv .venv
.venv/bin/python -m pip install -q --disable-pip-version-check --upgrade pip 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -m pip install -q --disable-pip-version-check -e '.[test]' 2>&1 | grep -v '^WARNING: Location' || true
.venv/bin/python -c 'import portflow, streams, producers, faust, kafka, redis, msgspec' \
  || { echo "setup: the install is incomplete" >&2; exit 1; }
for tool in ruff mypy lint-imports; do  # make lint's (the test extras)
  [ -x ".venv/bin/$tool" ] || { echo "setup: the install is incomplete: no .venv/bin/$tool" >&2; exit 1; }
done
bash scripts/fetch-kafka.sh  # Apache Kafka's jars (4.x and 3.9) from Maven Central, once
touch .venv/.installed
