"""The hashtag-trends job as a Spark Structured Streaming application: the Spark peer.

The system hashtag-trends replaces was a Spark Streaming job; this is the same job as
`services/hashtag-aggregator` written the way one would write it in PySpark today, so that
`scripts/bench-pipeline.sh` can measure the two on the same broker and input. It is a benchmark
peer, not part of the product. See bench/spark/README.md for how to run it and what differs.

    posts (Kafka, JSON, read_committed)
      from_json (JVM) -> id, text, created_at, hashtags; malformed -> dropped
      event_time = try_to_timestamp(created_at); unparsable -> dropped
      tags = post_tags(text, hashtags)      Python UDF (hashtags.py: the Rust rules, ported)
      explode: each (post, tag) -> ("c", 5-minute window start, tag) and ("a", 0, tag)
      groupBy(kind, start, tag).count()     ONE stateful aggregation, output mode "update"
      -> "c|{start_ms}|{tag}" / "a|{tag}" = {"count":N}   Kafka sink (at least once)

Why one aggregation over both keyings: a streaming query may hold only one aggregation, and
two queries (one per window) would each read and parse the topic and run the Python UDF, which
is most of the work. Why no watermark: the same state holds the all-time counts, which must
never be dropped, so the 5-minute windows are kept for ever too (our aggregator drops them after
24 h, Kafka Streams after its 24 h grace); over a benchmark's input that drops nothing anyway.

Environment (like bench/kstreams): BOOTSTRAP_SERVERS, INPUT_TOPIC, OUTPUT_TOPIC,
CHECKPOINT_DIR (required; a fresh directory starts from the earliest offsets),
MAX_OFFSETS_PER_TRIGGER (0 = no limit), TRIGGER_MS (0 = next batch as soon as one ends),
SHUFFLE_PARTITIONS (4), MAX_TAGS_PER_POST (30), DRIVER_MEMORY (2g), SPARK_JARS_DIR (the
connector jars setup.sh fetched; required). Prints `spark: running` once the query has started
and one `spark: batch …` line per micro-batch. SIGTERM/SIGINT stop the query and exit 0; a
failed query exits 1; a missing variable exits 2.
"""

import glob
import json
import os
import signal
import sys

HERE = os.path.dirname(os.path.abspath(__file__))


def env(name, default=None):
    value = os.environ.get(name, default)
    if value is None:
        print(f"spark: {name} is required", file=sys.stderr)
        sys.exit(2)
    return value


def main():
    bootstrap = env("BOOTSTRAP_SERVERS")
    input_topic = env("INPUT_TOPIC")
    output_topic = env("OUTPUT_TOPIC")
    checkpoint = env("CHECKPOINT_DIR")
    jars_dir = env("SPARK_JARS_DIR")
    max_offsets = int(env("MAX_OFFSETS_PER_TRIGGER", "0"))
    trigger_ms = int(env("TRIGGER_MS", "0"))
    shuffle_partitions = env("SHUFFLE_PARTITIONS", "4")
    max_tags = int(env("MAX_TAGS_PER_POST", "30"))
    jars = sorted(glob.glob(os.path.join(jars_dir, "*.jar")))
    if not jars:
        print(f"spark: no jars in {jars_dir} (run bench/spark/setup.sh)", file=sys.stderr)
        sys.exit(2)

    # The Python workers run this interpreter (the venv's), not whatever `python3` is.
    os.environ["PYSPARK_PYTHON"] = sys.executable
    os.environ["PYSPARK_DRIVER_PYTHON"] = sys.executable

    from pyspark.sql import SparkSession
    from pyspark.sql import functions as F
    from pyspark.sql import types as T

    spark = (
        SparkSession.builder.appName("trends-spark")
        .master("local[2]")
        .config("spark.jars", ",".join(jars))
        .config("spark.driver.memory", env("DRIVER_MEMORY", "2g"))
        .config("spark.ui.enabled", "false")
        .config("spark.ui.showConsoleProgress", "false")
        .config("spark.sql.shuffle.partitions", shuffle_partitions)
        .config("spark.sql.streaming.stateStore.providerClass",
                "org.apache.spark.sql.execution.streaming.state.HDFSBackedStateStoreProvider")
        .getOrCreate()
    )
    spark.sparkContext.setLogLevel("WARN")
    spark.sparkContext.addPyFile(os.path.join(HERE, "hashtags.py"))
    import hashtags  # shipped to the workers by addPyFile above

    post_schema = T.StructType([
        T.StructField("id", T.StringType()),
        T.StructField("text", T.StringType()),
        T.StructField("created_at", T.StringType()),
        T.StructField("hashtags", T.ArrayType(T.StringType())),
    ])

    # A plain (pickled) UDF: the Arrow-optimized one (`useArrow=True`, which needs pandas and
    # pyarrow) showed no consistent gain here (two A/B pairs, 200k and 400k posts: +11%, -27%).
    @F.udf(returnType=T.ArrayType(T.StringType()), useArrow=False)
    def post_tags(text, supplied):
        try:
            return hashtags.post_tags(text, supplied, max_tags)
        except Exception:  # noqa: BLE001 (never fail the query on one post)
            return []

    reader = (
        spark.readStream.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("subscribe", input_topic)
        .option("startingOffsets", "earliest")
        .option("kafka.isolation.level", "read_committed")
    )
    if max_offsets > 0:
        reader = reader.option("maxOffsetsPerTrigger", str(max_offsets))
    posts = reader.load().select(
        F.from_json(F.col("value").cast("string"), post_schema).alias("p"))
    valid = (
        posts.where(F.col("p.id").isNotNull() & F.col("p.text").isNotNull())
        .select(F.col("p.text").alias("text"), F.col("p.hashtags").alias("hashtags"),
                F.try_to_timestamp(F.col("p.created_at")).alias("event_time"))
        .where(F.col("event_time").isNotNull())
    )
    tags = valid.select(
        F.explode(post_tags("text", "hashtags")).alias("tag"),
        # The start of the event time's 5-minute tumbling window, as window(…, "5 minutes").
        (F.floor(F.unix_millis("event_time") / 300_000) * 300_000).alias("window_start"),
    )
    keyed = tags.select(
        "tag",
        F.explode(F.array(
            F.struct(F.lit("c").alias("kind"), F.col("window_start").alias("start")),
            F.struct(F.lit("a").alias("kind"), F.lit(0).cast("long").alias("start")),
        )).alias("k"),
    ).select(F.col("k.kind").alias("kind"), F.col("k.start").alias("start"), "tag")
    counts = keyed.groupBy("kind", "start", "tag").count()
    out = counts.select(
        F.when(F.col("kind") == "c",
               F.concat(F.lit("c|"), F.col("start").cast("string"), F.lit("|"), F.col("tag")))
        .otherwise(F.concat(F.lit("a|"), F.col("tag"))).alias("key"),
        F.to_json(F.struct(F.col("count").alias("count"))).alias("value"),
    )
    writer = (
        out.writeStream.format("kafka")
        .option("kafka.bootstrap.servers", bootstrap)
        .option("topic", output_topic)
        .option("checkpointLocation", checkpoint)
        .outputMode("update")
        .queryName("trends")
    )
    writer = writer.trigger(processingTime=f"{trigger_ms} milliseconds")
    query = writer.start()
    print("spark: running", flush=True)

    stopping = []
    for sig in (signal.SIGTERM, signal.SIGINT):
        signal.signal(sig, lambda *_: stopping.append(True))
    last_batch = -1
    while query.isActive and not stopping:
        query.awaitTermination(0.5)
        progress = query.lastProgress
        if progress and progress["batchId"] != last_batch:
            last_batch = progress["batchId"]
            print("spark: batch " + json.dumps({
                "batch": last_batch, "rows": progress["numInputRows"],
                "ms": progress["durationMs"].get("triggerExecution"),
                "state_rows": sum(s["numRowsTotal"] for s in progress["stateOperators"]),
            }), flush=True)
    if stopping:
        query.stop()
        spark.stop()
        print("spark: stopped", flush=True)
        return 0
    error = query.exception()
    print(f"spark: query ended: {error}", file=sys.stderr, flush=True)
    return 1 if error else 0


if __name__ == "__main__":
    sys.exit(main())
