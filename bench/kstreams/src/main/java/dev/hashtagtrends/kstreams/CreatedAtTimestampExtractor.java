package dev.hashtagtrends.kstreams;

import org.apache.kafka.clients.consumer.ConsumerRecord;
import org.apache.kafka.streams.processor.TimestampExtractor;

/**
 * Event time = the post's {@code created_at}. Kafka Streams hands the extractor the record
 * after deserialization, so the JSON is parsed once ({@link Post#serde()}). A malformed record
 * (skipped later anyway) falls back to the record timestamp, then to the partition time.
 */
public final class CreatedAtTimestampExtractor implements TimestampExtractor {
    @Override
    public long extract(ConsumerRecord<Object, Object> record, long partitionTime) {
        if (record.value() instanceof Post post && post.isValid()) {
            return post.createdAtMs;
        }
        return record.timestamp() >= 0 ? record.timestamp() : partitionTime;
    }
}
