package dev.hashtagtrends.kstreams;

import java.io.IOException;
import java.nio.file.Files;
import java.nio.file.Path;
import java.time.Duration;
import java.util.Comparator;
import java.util.Properties;
import java.util.concurrent.CountDownLatch;
import java.util.concurrent.atomic.AtomicBoolean;
import java.util.stream.Stream;
import org.apache.kafka.clients.consumer.ConsumerConfig;
import org.apache.kafka.streams.CloseOptions;
import org.apache.kafka.streams.KafkaStreams;
import org.apache.kafka.streams.StreamsConfig;
import org.apache.kafka.streams.Topology;
import org.apache.kafka.streams.errors.LogAndContinueExceptionHandler;
import org.apache.kafka.streams.errors.StreamsUncaughtExceptionHandler.StreamThreadExceptionResponse;
import org.slf4j.Logger;
import org.slf4j.LoggerFactory;

/** Entry point: configuration from the environment, then run until SIGTERM or a fatal error. */
public final class Main {
    private static final Logger LOG = LoggerFactory.getLogger(Main.class);

    public static void main(String[] args) throws Exception {
        if (args.length == 1 && args[0].equals("--describe")) {
            // Prints the topology (processors, stores, repartition topic) and exits.
            System.out.println(TrendsTopology.build(optional("INPUT_TOPIC", "posts"),
                    optional("OUTPUT_TOPIC", "trends"), null).describe());
            return;
        }
        String bootstrap = required("BOOTSTRAP_SERVERS");
        String input = required("INPUT_TOPIC");
        String output = required("OUTPUT_TOPIC");
        String applicationId = required("APPLICATION_ID");
        String commitInterval = optional("COMMIT_INTERVAL_MS", "1000");
        String threads = optional("NUM_STREAM_THREADS", "1");
        String stateDirEnv = System.getenv("STATE_DIR");
        boolean tempStateDir = stateDirEnv == null || stateDirEnv.isBlank();
        Path stateDir = tempStateDir ? Files.createTempDirectory("trends-kstreams-") : Path.of(stateDirEnv);

        Properties props = new Properties();
        props.put(StreamsConfig.APPLICATION_ID_CONFIG, applicationId);
        props.put(StreamsConfig.BOOTSTRAP_SERVERS_CONFIG, bootstrap);
        props.put(StreamsConfig.PROCESSING_GUARANTEE_CONFIG, StreamsConfig.EXACTLY_ONCE_V2);
        props.put(StreamsConfig.COMMIT_INTERVAL_MS_CONFIG, Long.parseLong(commitInterval));
        props.put(StreamsConfig.NUM_STREAM_THREADS_CONFIG, Integer.parseInt(threads));
        props.put(StreamsConfig.STATE_DIR_CONFIG, stateDir.toString());
        props.put(StreamsConfig.REPLICATION_FACTOR_CONFIG, 1);
        props.put(StreamsConfig.consumerPrefix(ConsumerConfig.AUTO_OFFSET_RESET_CONFIG), "earliest");
        // Belt and braces: Post.serde() never throws, but a bad record must never be fatal.
        props.put(StreamsConfig.DESERIALIZATION_EXCEPTION_HANDLER_CLASS_CONFIG,
                LogAndContinueExceptionHandler.class);
        // There is no global state store; this only silences a start-up warning.
        props.put("processing.exception.handler.global.enabled", true);

        Topology topology = TrendsTopology.build(input, output, props);
        KafkaStreams streams = new KafkaStreams(topology, props);

        AtomicBoolean fatal = new AtomicBoolean();
        AtomicBoolean announced = new AtomicBoolean();
        CountDownLatch stopped = new CountDownLatch(1);
        streams.setUncaughtExceptionHandler(e -> {
            LOG.error("kstreams: fatal error, shutting down", e);
            fatal.set(true);
            return StreamThreadExceptionResponse.SHUTDOWN_CLIENT;
        });
        streams.setStateListener((now, before) -> {
            if (now == KafkaStreams.State.RUNNING && announced.compareAndSet(false, true)) {
                System.out.println("kstreams: running");
                System.out.flush();
            }
            if (now == KafkaStreams.State.ERROR) {
                fatal.set(true);
                stopped.countDown();
            }
        });
        Runtime.getRuntime().addShutdownHook(new Thread(() -> {
            close(streams, stateDir, tempStateDir);
            stopped.countDown();
        }, "kstreams-shutdown"));

        try {
            streams.start();
        } catch (RuntimeException e) {
            LOG.error("kstreams: cannot start", e);
            fatal.set(true);
            stopped.countDown();
        }
        stopped.await();
        if (fatal.get()) {
            close(streams, stateDir, tempStateDir);
            System.exit(1);
        }
    }

    private static final Object CLOSE_LOCK = new Object();
    private static boolean closed;

    private static void close(KafkaStreams streams, Path stateDir, boolean deleteStateDir) {
        synchronized (CLOSE_LOCK) {
            if (closed) {
                return;
            }
            closed = true;
            // Leave the consumer group on close (Kafka Streams stays in it by default), so that a
            // restarted instance is assigned its tasks at once instead of after the old
            // member's session timeout (45 s).
            boolean clean = streams.close(CloseOptions.timeout(Duration.ofSeconds(30))
                    .withGroupMembershipOperation(CloseOptions.GroupMembershipOperation.LEAVE_GROUP));
            LOG.warn("kstreams: stopped{}; {} malformed records skipped",
                    clean ? "" : " (close timed out)", TrendsTopology.MALFORMED.get());
            if (clean && deleteStateDir) {
                deleteRecursively(stateDir);
            }
        }
    }

    private static void deleteRecursively(Path dir) {
        try (Stream<Path> paths = Files.walk(dir)) {
            paths.sorted(Comparator.reverseOrder()).forEach(p -> p.toFile().delete());
        } catch (IOException e) {
            LOG.warn("kstreams: cannot delete the temporary state dir {}: {}", dir, e.toString());
        }
    }

    private static String required(String name) {
        String value = System.getenv(name);
        if (value == null || value.isBlank()) {
            System.err.println("kstreams: environment variable " + name + " is required");
            System.exit(2);
        }
        return value;
    }

    private static String optional(String name, String fallback) {
        String value = System.getenv(name);
        return value == null || value.isBlank() ? fallback : value;
    }
}
