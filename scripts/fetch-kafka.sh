#!/usr/bin/env bash
# Fetch the Apache Kafka broker (kafka_2.13 and its runtime jars, deploy/kafka/pom.xml) from Maven
# Central into deploy/kafka/lib, for `portflow up --broker apache-kafka` and the tests. Runs Maven
# only when the pom changed since the last fetch; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/../deploy/kafka"
stamp=lib/.fetched-from
wanted=$(sha256sum pom.xml | cut -d' ' -f1)
if [ -f "$stamp" ] && [ "$(cat "$stamp")" = "$wanted" ]; then
  exit 0
fi
command -v mvn >/dev/null 2>&1 || { echo "fetch-kafka: Maven (mvn) is needed: sudo apt-get install maven" >&2; exit 2; }
echo "fetch-kafka: fetching Apache Kafka $(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' pom.xml) from Maven Central" >&2
rm -rf lib.partial
mvn -q -B -Dstyle.color=never dependency:copy-dependencies -DoutputDirectory=lib.partial -DincludeScope=runtime
rm -rf lib
mv lib.partial lib
echo "$wanted" > "$stamp"
