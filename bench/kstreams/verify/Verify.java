// Verification helper for the Kafka Streams reference app (see ../README.md). Runs with the
// JDK's single-file launcher on the broker's jars (kafka-clients is among them):
//   java -cp "$(scripts/kafka-jars.sh | tail -n1)/*" bench/kstreams/verify/Verify.java CMD ...
// Commands:
//   setup   BOOTSTRAP INPUT OUTPUT        create INPUT (4 partitions) and OUTPUT (4, compacted)
//   produce BOOTSTRAP INPUT BATCH         write batch BATCH of the deterministic test posts
//   check   BOOTSTRAP OUTPUT BATCHES SECS read OUTPUT (read_committed) until its latest values
//                                         equal the expected counts of batches 0..BATCHES-1
//   topics  BOOTSTRAP                     list the topics (to see the app's internal ones)
// The expected counts come from hand-written labels (EXPECTED below), not from the app's code.
import java.nio.charset.StandardCharsets;
import java.time.Duration;
import java.time.Instant;
import java.util.*;
import org.apache.kafka.clients.admin.*;
import org.apache.kafka.clients.consumer.*;
import org.apache.kafka.clients.producer.*;
import org.apache.kafka.common.TopicPartition;
import org.apache.kafka.common.serialization.*;

public class Verify {
    static final int POSTS_PER_BATCH = 300;
    static final long BASE = Instant.parse("2026-11-22T10:00:00.123Z").toEpochMilli();
    static final long STEP_MS = 4_000;                 // one post every 4 s of event time
    static final long BATCH_OFFSET_MS = 7 * 60_000;    // batch b starts 7 min after batch b-1

    static long eventTime(int batch, int i) { return BASE + batch * BATCH_OFFSET_MS + i * STEP_MS; }

    static String iso(long ms) { return Instant.ofEpochMilli(ms).toString(); }

    static String isoPlusOne(long ms) { // the same instant written with a +01:00 offset
        return java.time.OffsetDateTime.ofInstant(Instant.ofEpochMilli(ms), java.time.ZoneOffset.ofHours(1)).toString();
    }

    // Kind k = i % 10: the post's JSON (minus id/created_at) and the tags it must count for.
    static final String[] BODY = {
        null, // kind 0: malformed, see MALFORMED
        "\"text\":\"whatever #ignored\",\"hashtags\":[\"Rust\",\"#rust\",\"Kafka\"]",
        "\"text\":\"Loving #Rust and #RUST and #kafka\"",
        "\"text\":\"Fullwidth \uFF03\uFF32\uFF35\uFF33\uFF34 and #Stra\u00DFe\"",
        "\"text\":\"#ignored\",\"hashtags\":[]",
        "\"text\":\"see http://example.com/#notatag and #Streams!\"",
        "\"text\":\"x\",\"hashtags\":[\"  #KafkaStreams \",\"\",\"#\",\"two words\",\"\uFF2B\uFF21\uFF26\uFF2B\uFF21\"]",
        "\"text\":\"no tags here, just a # sign and a#b\"",
        "\"text\":\"#Rust #rust #RUST\",\"hashtags\":null",
        "\"text\":\"#\u65E5\u672C\u8A9E \u3068 #Kafka\",\"lang\":\"ja\",\"author_id\":\"7\",\"source\":\"synthetic\"",
    };
    static final String[][] EXPECTED = {
        {}, {"rust", "kafka"}, {"rust", "kafka"}, {"rust", "stra\u00DFe"}, {}, {"streams"},
        {"kafkastreams", "kafka"}, {}, {"rust"}, {"\u65E5\u672C\u8A9E", "kafka"},
    };
    static String malformed(int variant, String id, String ts) {
        switch (variant % 6) {
            case 0: return "this is not json {";
            case 1: return "{\"id\":" + id + ",\"text\":\"#rust\",\"created_at\":\"" + ts + "\"}";
            case 2: return "{\"id\":\"" + id + "\",\"created_at\":\"" + ts + "\"}";
            case 3: return "{\"id\":\"" + id + "\",\"text\":\"#rust\",\"created_at\":\"yesterday\"}";
            case 4: return "{\"id\":\"" + id + "\",\"text\":\"#rust\",\"created_at\":\"" + ts + "\",\"hashtags\":\"rust\"}";
            default: return "[\"#rust\"]";
        }
    }

    static String post(int batch, int i) {
        String id = Integer.toString(batch * 100_000 + i);
        long t = eventTime(batch, i);
        int kind = i % 10;
        if (kind == 0) return malformed(i / 10, id, iso(t));
        String ts = kind == 2 ? isoPlusOne(t) : iso(t);
        return "{\"id\":\"" + id + "\",\"created_at\":\"" + ts + "\"," + BODY[kind] + "}";
    }

    static Map<String, String> expected(int batches) {
        Map<String, Long> n = new TreeMap<>();
        for (int b = 0; b < batches; b++) {
            for (int i = 0; i < POSTS_PER_BATCH; i++) {
                long t = eventTime(b, i);
                for (String tag : EXPECTED[i % 10]) {
                    n.merge("a|" + tag, 1L, Long::sum);
                    n.merge("f|" + (t - t % 10_000) + "|" + tag, 1L, Long::sum);
                    n.merge("c|" + (t - t % 300_000) + "|" + tag, 1L, Long::sum);
                }
            }
        }
        Map<String, String> out = new TreeMap<>();
        n.forEach((k, v) -> out.put(k, "{\"count\":" + v + "}"));
        return out;
    }

    public static void main(String[] a) throws Exception {
        switch (a[0]) {
            case "setup": setup(a[1], a[2], a[3]); break;
            case "produce": produce(a[1], a[2], Integer.parseInt(a[3])); break;
            case "check": System.exit(check(a[1], a[2], Integer.parseInt(a[3]), Integer.parseInt(a[4])) ? 0 : 1);
            case "topics": topics(a[1]); break;
            default: throw new IllegalArgumentException(a[0]);
        }
    }

    static void setup(String bootstrap, String in, String out) throws Exception {
        try (Admin admin = Admin.create(Map.of("bootstrap.servers", bootstrap))) {
            admin.createTopics(List.of(
                new NewTopic(in, 4, (short) 1),
                new NewTopic(out, 4, (short) 1).configs(Map.of("cleanup.policy", "compact"))
            )).all().get();
            System.out.println("created " + in + " (4 partitions) and " + out + " (4 partitions, compacted)");
        }
    }

    static void topics(String bootstrap) throws Exception {
        try (Admin admin = Admin.create(Map.of("bootstrap.servers", bootstrap))) {
            new TreeSet<>(admin.listTopics(new ListTopicsOptions().listInternal(true)).names().get())
                .forEach(t -> System.out.println("  " + t));
        }
    }

    static void produce(String bootstrap, String in, int batch) throws Exception {
        Map<String, Object> cfg = Map.of("bootstrap.servers", bootstrap, "acks", "all", "enable.idempotence", true);
        try (Producer<String, String> p = new KafkaProducer<>(cfg, new StringSerializer(), new StringSerializer())) {
            for (int i = 0; i < POSTS_PER_BATCH; i++) {
                p.send(new ProducerRecord<>(in, Integer.toString(batch * 100_000 + i), post(batch, i)));
            }
            p.flush();
        }
        System.out.println("produced batch " + batch + ": " + POSTS_PER_BATCH + " posts ("
            + POSTS_PER_BATCH / 10 + " malformed), event time " + iso(eventTime(batch, 0)) + " .. "
            + iso(eventTime(batch, POSTS_PER_BATCH - 1)));
    }

    static boolean check(String bootstrap, String out, int batches, int seconds) {
        Map<String, String> want = expected(batches);
        Map<String, String> got = new TreeMap<>();
        Map<String, Object> cfg = Map.of("bootstrap.servers", bootstrap, "isolation.level", "read_committed",
            "enable.auto.commit", false);
        long deadline = System.currentTimeMillis() + seconds * 1000L;
        try (Consumer<String, String> c = new KafkaConsumer<>(cfg, new StringDeserializer(), new StringDeserializer())) {
            List<TopicPartition> parts = new ArrayList<>();
            c.partitionsFor(out).forEach(p -> parts.add(new TopicPartition(out, p.partition())));
            c.assign(parts);
            c.seekToBeginning(parts);
            long records = 0;
            while (true) {
                for (ConsumerRecord<String, String> r : c.poll(Duration.ofMillis(500))) {
                    records++;
                    if (r.value() == null) got.remove(r.key()); else got.put(r.key(), r.value());
                }
                if (got.equals(want) || System.currentTimeMillis() > deadline) break;
            }
            report(want, got, records);
            return got.equals(want);
        }
    }

    static void report(Map<String, String> want, Map<String, String> got, long records) {
        System.out.println("read " + records + " committed records, " + got.size() + " distinct keys; expected "
            + want.size() + " keys (" + count(want, "a|") + " a|, " + count(want, "f|") + " f|, " + count(want, "c|") + " c|)");
        want.keySet().stream().filter(k -> k.startsWith("a|")).forEach(k ->
            System.out.println("  " + k + ": expected " + want.get(k) + ", got " + got.get(k)));
        boolean aligned = got.keySet().stream().allMatch(k -> k.startsWith("a|")
            || (k.startsWith("f|") && Long.parseLong(k.split("\\|")[1]) % 10_000 == 0)
            || (k.startsWith("c|") && Long.parseLong(k.split("\\|")[1]) % 300_000 == 0));
        System.out.println("  all f| starts multiples of 10000 and c| of 300000: " + aligned);
        got.keySet().stream().filter(k -> k.startsWith("c|")).limit(3).forEach(k -> System.out.println("  sample " + k + " = " + got.get(k)));
        got.keySet().stream().filter(k -> k.startsWith("f|")).limit(3).forEach(k -> System.out.println("  sample " + k + " = " + got.get(k)));
        int shown = 0;
        for (String k : new TreeSet<String>() {{ addAll(want.keySet()); addAll(got.keySet()); }}) {
            if (!Objects.equals(want.get(k), got.get(k)) && shown++ < 20)
                System.out.println("  MISMATCH " + k + ": expected " + want.get(k) + ", got " + got.get(k));
        }
        System.out.println(got.equals(want) ? "CHECK OK: output equals the expected counts exactly"
            : "CHECK FAILED: " + shown + " mismatching keys");
    }

    static long count(Map<String, String> m, String prefix) {
        return m.keySet().stream().filter(k -> k.startsWith(prefix)).count();
    }
}
