package dev.hashtagtrends.kstreams;

import com.fasterxml.jackson.core.JsonProcessingException;
import com.fasterxml.jackson.databind.DeserializationFeature;
import com.fasterxml.jackson.databind.JsonNode;
import com.fasterxml.jackson.databind.ObjectMapper;
import java.io.IOException;
import java.time.OffsetDateTime;
import java.time.format.DateTimeFormatter;
import java.time.format.DateTimeFormatterBuilder;
import java.time.format.DateTimeParseException;
import java.util.ArrayList;
import java.util.List;
import org.apache.kafka.common.serialization.Deserializer;
import org.apache.kafka.common.serialization.Serde;
import org.apache.kafka.common.serialization.Serdes;
import org.apache.kafka.common.serialization.Serializer;

/**
 * One input record, parsed: either a valid post ({@link #error} is null) or the reason it is
 * malformed. Parsing never throws, so a bad record can never take the topology down; the
 * topology skips (and counts) the malformed ones.
 */
public final class Post {
    /** The {@code id} field. */
    public final String id;
    /** The {@code text} field. */
    public final String text;
    /** {@code created_at} in epoch milliseconds: the event time. */
    public final long createdAtMs;
    /** The {@code hashtags} field as given, or null when absent (then tags come from the text). */
    public final List<String> hashtags;
    /** Why the record is malformed, or null for a valid post. */
    public final String error;

    private Post(String id, String text, long createdAtMs, List<String> hashtags, String error) {
        this.id = id;
        this.text = text;
        this.createdAtMs = createdAtMs;
        this.hashtags = hashtags;
        this.error = error;
    }

    public boolean isValid() {
        return error == null;
    }

    static Post malformed(String reason) {
        return new Post(null, null, -1, null, reason);
    }

    private static final ObjectMapper JSON =
            new ObjectMapper().enable(DeserializationFeature.FAIL_ON_TRAILING_TOKENS);

    /** RFC 3339 date-time: {@code 2026-11-22T10:00:00.123Z}, {@code ...+01:00}; case-insensitive. */
    private static final DateTimeFormatter RFC3339 = new DateTimeFormatterBuilder()
            .parseCaseInsensitive()
            .append(DateTimeFormatter.ISO_LOCAL_DATE)
            .appendLiteral('T')
            .append(DateTimeFormatter.ISO_LOCAL_TIME)
            .appendOffset("+HH:MM", "Z")
            .toFormatter();

    /** Epoch milliseconds of an RFC 3339 timestamp, or null if it is not one. */
    static Long parseRfc3339Millis(String s) {
        try {
            return OffsetDateTime.parse(s, RFC3339).toInstant().toEpochMilli();
        } catch (DateTimeParseException | ArithmeticException e) {
            return null;
        }
    }

    /** Parses a record value; never throws. */
    public static Post parse(byte[] bytes) {
        if (bytes == null) {
            return malformed("null value");
        }
        JsonNode root;
        try {
            root = JSON.readTree(bytes);
        } catch (JsonProcessingException e) {
            return malformed("not JSON");
        } catch (IOException | RuntimeException e) {
            return malformed("unreadable: " + e.getClass().getSimpleName());
        }
        if (root == null || !root.isObject()) {
            return malformed("not a JSON object");
        }
        JsonNode id = root.get("id");
        JsonNode text = root.get("text");
        JsonNode createdAt = root.get("created_at");
        if (id == null || !id.isTextual()) {
            return malformed("missing or non-string id");
        }
        if (text == null || !text.isTextual()) {
            return malformed("missing or non-string text");
        }
        if (createdAt == null || !createdAt.isTextual()) {
            return malformed("missing or non-string created_at");
        }
        Long millis = parseRfc3339Millis(createdAt.textValue());
        if (millis == null) {
            return malformed("created_at is not RFC 3339");
        }
        List<String> hashtags = null;
        JsonNode tags = root.get("hashtags");
        if (tags != null && !tags.isNull()) {
            if (!tags.isArray()) {
                return malformed("hashtags is not an array");
            }
            hashtags = new ArrayList<>(tags.size());
            for (JsonNode tag : tags) {
                if (!tag.isTextual()) {
                    return malformed("hashtags holds a non-string");
                }
                hashtags.add(tag.textValue());
            }
        }
        return new Post(id.textValue(), text.textValue(), millis, hashtags, null);
    }

    /** Value serde of the input topic. Deserialize only: the app never writes posts. */
    public static Serde<Post> serde() {
        Deserializer<Post> deserializer = (topic, bytes) -> parse(bytes);
        Serializer<Post> serializer = (topic, post) -> {
            throw new UnsupportedOperationException("posts are never serialized");
        };
        return Serdes.serdeFrom(serializer, deserializer);
    }
}
