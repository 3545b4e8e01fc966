package dev.hashtagtrends.kstreams;

import java.time.Duration;
import java.util.ArrayList;
import java.util.List;
import java.util.Properties;
import java.util.concurrent.atomic.AtomicLong;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.utils.Bytes;
import org.apache.kafka.streams.KeyValue;
import org.apache.kafka.streams.StreamsBuilder;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.TopologyConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.kstream.Consumed;
import org.apache.kafka.streams.kstream.Grouped;
import org.apache.kafka.streams.kstream.KGroupedStream;
import org.apache.kafka.streams.kstream.KTable;
import org.apache.kafka.streams.kstream.Materialized;
import org.apache.kafka.streams.kstream.Named;
import org.apache.kafka.streams.kstream.Produced;
import org.apache.kafka.streams.kstream.TimeWindows;
import org.apache.kafka.streams.kstream.Windowed;
import org.apache.kafka.streams.state.KeyValueStore;
import org.apache.kafka.streams.state.WindowStore;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/**
 * posts --flatMap(tag, post id)--> repartition by tag --groupByKey-->
 *   10 s windows (grace 1 h) count   -> "f|{start}|{tag}"
 *   5 min windows (grace 24 h) count -> "c|{start}|{tag}"
 *   all-time count                   -> "a|{tag}"
 * all three to one output topic, value {"count":N}.
 */
public final class TrendsTopology {
    private TrendsTopology() {}

    private static final Logger LOG = LoggerFactory.getLogger(TrendsTopology.class);

    public static final TimeWindows FINE = TimeWindows.ofSizeAndGrace(Duration.ofSeconds(10), Duration.ofHours(1));
    public static final TimeWindows COARSE = TimeWindows.ofSizeAndGrace(Duration.ofMinutes(5), Duration.ofHours(24));

    /** Malformed input records skipped so far (all stream threads). */
    public static final AtomicLong MALFORMED = new AtomicLong();

    /** {@code config} may be null (then the defaults), e.g. to describe the topology. */
    public static Topology build(String inputTopic, String outputTopic, Properties config) {
        StreamsBuilder builder = config == null
                ? new StreamsBuilder()
                : new StreamsBuilder(new TopologyConfig(new StreamsConfig(config)));

        KGroupedStream<String, String> byTag = builder
                .stream(inputTopic, Consumed.with(Serdes.String(), Post.serde())
                        .withTimestampExtractor(new CreatedAtTimestampExtractor())
                        .withName("posts"))
                .flatMap((key, post) -> tagsOf(key, post), Named.as("tags"))
                // A named Grouped makes the three aggregations share ONE repartition topic
                // ("<application.id>-by-tag-repartition") instead of one each.
                .groupByKey(Grouped.with("by-tag", Serdes.String(), Serdes.String()));

        byTag.windowedBy(FINE)
                .count(Named.as("fine"), Materialized.<String, Long, WindowStore<Bytes, byte[]>>as("fine-counts"))
                .toStream(Named.as("fine-updates"))
                .map((w, n) -> windowed("f|", w, n), Named.as("fine-output"))
                .to(outputTopic, Produced.<String, String>with(Serdes.String(), Serdes.String()).withName("fine-sink"));

        byTag.windowedBy(COARSE)
                .count(Named.as("coarse"), Materialized.<String, Long, WindowStore<Bytes, byte[]>>as("coarse-counts"))
                .toStream(Named.as("coarse-updates"))
                .map((w, n) -> windowed("c|", w, n), Named.as("coarse-output"))
                .to(outputTopic, Produced.<String, String>with(Serdes.String(), Serdes.String()).withName("coarse-sink"));

        KTable<String, Long> allTime = byTag.count(
                Named.as("all-time"), Materialized.<String, Long, KeyValueStore<Bytes, byte[]>>as("all-time-counts"));
        allTime.toStream(Named.as("all-time-updates"))
                .map((tag, n) -> KeyValue.pair("a|" + tag, countJson(n)), Named.as("all-time-output"))
                .to(outputTopic, Produced.<String, String>with(Serdes.String(), Serdes.String()).withName("all-time-sink"));

        return builder.build();
    }

    /** One (tag, post id) pair per distinct tag of a valid post; nothing for a malformed one. */
    static List<KeyValue<String, String>> tagsOf(String key, Post post) {
        if (post == null || !post.isValid()) {
            long n = MALFORMED.incrementAndGet();
            // Every one of the first 100, then every 1000th, so a flood cannot drown the log.
            if (n <= 100 || n % 1000 == 0) {
                LOG.warn("kstreams: skipped malformed record (key {}): {}; {} skipped so far",
                        key, post == null ? "null" : post.error, n);
            }
            return List.of();
        }
        List<String> tags = Tags.of(post);
        List<KeyValue<String, String>> out = new ArrayList<>(tags.size());
        for (String tag : tags) {
            out.add(KeyValue.pair(tag, post.id));
        }
        return out;
    }

    private static KeyValue<String, String> windowed(String prefix, Windowed<String> w, Long n) {
        return KeyValue.pair(prefix + w.window().start() + "|" + w.key(), countJson(n));
    }

    private static String countJson(Long n) {
        return n == null ? null : "{\"count\":" + n + "}";
    }
}
