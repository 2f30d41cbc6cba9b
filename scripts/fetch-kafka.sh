#!/usr/bin/env bash
# Fetch the Apache Kafka broker (kafka_2.13 and its runtime jars, deploy/kafka/pom.xml) from Maven
# Central: the pom's release into deploy/kafka/lib (`portflow up --broker apache-kafka`, the
# tests), and each older release the suite still proves (the pom's `kafka-<release>` profiles)
# into deploy/kafka/lib-<release> (PORTFLOW_KAFKA_VERSION=<release>). Runs Maven only for a
# directory fetched from another pom; safe to run again.
set -euo pipefail
cd "$(dirname "$0")/../deploy/kafka"
wanted=$(sha256sum pom.xml | cut -d' ' -f1)

fetch() {  # fetch DIRECTORY RELEASE [MAVEN OPTIONS...]
  local dir=$1 release=$2
  shift 2
  if [ -f "$dir/.fetched-from" ] && [ "$(cat "$dir/.fetched-from")" = "$wanted" ]; then
    return 0
  fi
  command -v mvn >/dev/null 2>&1 || { echo "fetch-kafka: Maven (mvn) is needed: sudo apt-get install maven" >&2; exit 2; }
  echo "fetch-kafka: fetching Apache Kafka $release from Maven Central into deploy/kafka/$dir" >&2
  rm -rf "$dir.partial"
  mvn -q -B -Dstyle.color=never "$@" dependency:copy-dependencies -DoutputDirectory="$dir.partial" -DincludeScope=runtime
  rm -rf "$dir"
  mv "$dir.partial" "$dir"
  echo "$wanted" > "$dir/.fetched-from"
}

fetch lib "$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' pom.xml | head -1)"
for profile in $(sed -n 's:.*<id>\(kafka-.*\)</id>.*:\1:p' pom.xml); do
  fetch "lib-${profile#kafka-}" "${profile#kafka-}" -P"$profile"
done
