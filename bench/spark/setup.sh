#!/usr/bin/env bash
# Installs what the Spark peer needs, once, into a cache directory, and prints that directory as
# the last line of stdout: a Python venv (`venv/`, pyspark and confluent-kafka pinned in
# requirements.txt, from PyPI) and Spark's Kafka connector (`jars/`, from Maven Central through
# pom.xml). No Docker, no Spark download besides the pyspark wheel.
#
#   bench/spark/setup.sh            # -> ~/.cache/hashtag-trends/spark-<version>
#
# Cache dir: ${TRENDS_SPARK_DIR:-$HOME/.cache/hashtag-trends/spark-<pyspark version>}. Idempotent
# and safe to run concurrently, like scripts/kafka-jars.sh: the `.complete` marker holds a hash
# of requirements.txt and pom.xml (changing either reinstalls), a flock(1) serialises installs,
# and a failed install is removed so that the next run starts over. Built in place, not renamed
# into place: a venv cannot move once made (its scripts name their own path).
set -euo pipefail

here="$(cd "$(dirname "${BASH_SOURCE[0]}")" && pwd)"
version="$(sed -n 's/^pyspark==\(.*\)$/\1/p' "$here/requirements.txt")"
pom_version="$(sed -n 's:.*<spark.version>\(.*\)</spark.version>.*:\1:p' "$here/pom.xml")"
if [[ -z "$version" || "$version" != "$pom_version" ]]; then
    echo "setup.sh: pyspark '$version' (requirements.txt) differs from" \
        "spark.version '$pom_version' (pom.xml)" >&2
    exit 1
fi
dir="${TRENDS_SPARK_DIR:-$HOME/.cache/hashtag-trends/spark-$version}"
dir="${dir%/}"
# Changing requirements.txt or pom.xml makes a new install.
stamp="$(cat "$here/requirements.txt" "$here/pom.xml" | sha256sum | cut -c1-16)"

if [[ "$(cat "$dir/.complete" 2>/dev/null)" != "$stamp" ]]; then
    mkdir -p "$(dirname "$dir")"
    exec 9>"$dir.lock"
    flock 9
    if [[ "$(cat "$dir/.complete" 2>/dev/null)" != "$stamp" ]]; then
        echo "setup.sh: installing pyspark $version and its Kafka connector into $dir" >&2
        rm -rf "$dir"
        mkdir -p "$dir"
        trap 'rm -rf "$dir"' ERR
        python3 -m venv "$dir/venv"
        "$dir/venv/bin/pip" install -q --disable-pip-version-check -r "$here/requirements.txt" >&2
        repo="$dir/mvn-out"
        if ! mvn -B -q -f "$here/pom.xml" dependency:copy-dependencies -DincludeScope=runtime \
            -Dmdep.useRepositoryLayout=true -DoutputDirectory="$repo" >"$dir/mvn.log" 2>&1; then
            cat "$dir/mvn.log" >&2
            echo "setup.sh: mvn failed (it needs Maven Central on first use)" >&2
            exit 1
        fi
        # Only the jars pyspark does not already ship (by artifact name), so that each library
        # is on the class path once: the connector, kafka-clients and commons-pool2.
        spark_jars="$("$dir/venv/bin/python" -c \
            'import os, pyspark; print(os.path.join(os.path.dirname(pyspark.__file__), "jars"))')"
        mkdir -p "$dir/jars"
        while IFS= read -r jar; do
            artifact="$(basename "$(dirname "$(dirname "$jar")")")"
            if ! compgen -G "$spark_jars/$artifact-[0-9]*" >/dev/null; then
                cp "$jar" "$dir/jars/"
            fi
        done < <(find "$repo" -name '*.jar')
        rm -rf "$repo"
        trap - ERR
        echo "$stamp" >"$dir/.complete"
    fi
fi
echo "$dir"
