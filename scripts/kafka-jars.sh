#!/usr/bin/env bash
# Fetches the Apache Kafka broker jars (see scripts/kafka/pom.xml) from Maven Central into a
# cache directory and prints that directory as the last line of stdout.
#
#   java -cp "$(scripts/kafka-jars.sh | tail -n1)/*" kafka.Kafka server.properties
#
# Cache dir: ${TRENDS_KAFKA_JARS_DIR:-$HOME/.cache/hashtag-trends/kafka-<kafka.version>}.
# Idempotent and safe to run concurrently: a `.complete` marker means "done", a flock(1) on a
# lock file beside the cache dir serialises downloads, and the jars are copied into a temp dir
# that is renamed into place only once Maven succeeded. Works from any working directory.
set -euo pipefail

script_dir="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
pom="$script_dir/kafka/pom.xml"

version="$(sed -n 's:.*<kafka.version>\(.*\)</kafka.version>.*:\1:p' "$pom" | head -n1)"
if [[ -z "$version" ]]; then
    echo "kafka-jars.sh: no <kafka.version> in $pom" >&2
    exit 1
fi

dir="${TRENDS_KAFKA_JARS_DIR:-$HOME/.cache/hashtag-trends/kafka-$version}"
dir="${dir%/}"

if [[ ! -f "$dir/.complete" ]]; then
    mkdir -p "$(dirname "$dir")"
    exec 9>"$dir.lock"
    flock 9
    # Re-check under the lock: another process may have finished while we waited.
    if [[ ! -f "$dir/.complete" ]]; then
        echo "kafka-jars.sh: fetching Kafka $version jars into $dir" >&2
        tmp="$(mktemp -d "$dir.tmp.XXXXXX")"
        log="$(mktemp "$dir.mvn-log.XXXXXX")"
        trap 'rm -rf "$tmp" "$log"' EXIT
        # Maven's output is shown only on failure, on stderr: stdout's last line must stay
        # the directory (and Debian's Maven 3.8 prints stray colour codes even with -q).
        if ! mvn -B -q -f "$pom" dependency:copy-dependencies \
            -DincludeScope=runtime -DoutputDirectory="$tmp" >"$log" 2>&1; then
            cat "$log" >&2
            echo "kafka-jars.sh: mvn failed (it needs Maven Central on first use)" >&2
            exit 1
        fi
        rm -f "$log"
        touch "$tmp/.complete"
        rm -rf "$dir"
        mv -T "$tmp" "$dir"
        trap - EXIT
    fi
    exec 9>&-
fi

echo "$dir"
