//! Arbitrary records of the counts topic, as a hostile writer could produce them, through the
//! decoder and into both readers: the API's view (sum, snapshot, series) and the aggregator's
//! restore. Nothing may panic, loop or overflow.
//!
//! Input: a sequence of records, each `[key length][value length or 0xFF for a tombstone]`
//! followed by the key and value bytes. Records that decode are applied in order.
#![no_main]

use libfuzzer_sys::fuzz_target;
use trends_core::counter::PartitionCounter;
use trends_core::counts_record::CountsRecord;
use trends_core::tags::PostTag;
use trends_core::view::TrendsView;
use trends_core::window::{BucketLayout, Window};

fuzz_target!(|data: &[u8]| {
    let layout = BucketLayout::default();
    let mut view = TrendsView::new(layout);
    let mut counter = PartitionCounter::new(0, layout);
    let mut rest = data;
    let mut tags = Vec::new();
    while let [key_len, value_len, tail @ ..] = rest {
        let key_len = usize::from(*key_len);
        let tombstone = *value_len == 0xFF;
        let value_len = if tombstone { 0 } else { usize::from(*value_len) };
        if tail.len() < key_len + value_len {
            break;
        }
        let (key, tail) = tail.split_at(key_len);
        let (value, tail) = tail.split_at(value_len);
        rest = tail;
        let value = (!tombstone).then_some(value);
        // The encoder's output decodes to the same record.
        if let Ok(record) = CountsRecord::decode(key, value) {
            let encoded_key = record.key.encode();
            let encoded_value = record.encode_value();
            let again = CountsRecord::decode(
                encoded_key.as_bytes(),
                encoded_value.as_deref().map(str::as_bytes),
            )
            .expect("an encoded record decodes");
            assert_eq!(again, record, "encode/decode round trip");
            if let trends_core::counts_record::CountsKey::Total { tag, .. }
            | trends_core::counts_record::CountsKey::Bucket { tag, .. } = &record.key
            {
                tags.push(tag.clone());
            }
            view.apply(record.clone());
            counter.restore(record);
        }
    }
    let snapshot = view.snapshot();
    for window in Window::ALL {
        for ranked in snapshot.top(window, 10) {
            assert!(ranked.count > 0);
        }
        let _ = snapshot.top_with_prefix(window, "a", 5);
    }
    for tag in tags.iter().take(4) {
        let _ = snapshot.series(tag, Window::H1);
        let _ = snapshot.series(tag, Window::H24);
        let _ = snapshot.tag_counts(tag);
    }
    // The restored counter keeps counting.
    if let Some(watermark) = counter.watermark() {
        counter.record(
            watermark,
            &[PostTag {
                tag: "fuzz".into(),
                spelling: "Fuzz".into(),
            }],
        );
    }
    let _ = counter.take_updates();
});
