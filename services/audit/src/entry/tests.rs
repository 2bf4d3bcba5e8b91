//! The entry layout pinned by a fixed vector, and every way bytes can fail to be an entry.

use super::*;

/// A push delivery whose two headers arrive out of order, one value padded with whitespace.
fn push_delivery() -> StreamMessage {
    StreamMessage::from_body(
        42,
        1_700_000_000_123_456_789,
        "hooklog.deliveries.github.push",
        vec![
            ("X-GitHub-Event".into(), " push \t".into()),
            (
                "Nats-Msg-Id".into(),
                "github:72d3162e-cc78-11e3-81ab-4c9367dc0958".into(),
            ),
        ],
        br#"{"zen":"Keep it logically awesome."}"#,
    )
}

// Computed once with a separate Python transcription of the layout in DESIGN.md (struct.pack
// for the integers, hashlib for the digests, headers sorted and values stripped), then pasted.
const PUSH_ENTRY_HEX: &str = concat!(
    "686f6f6b6c6f672d746c6f672d76310a", // "hooklog-tlog-v1\n"
    "000000000000002a",                 // sequence 42
    "17979cfe3d85cd15",                 // 1_700_000_000_123_456_789 ns
    "001e686f6f6b6c6f672e64656c697665726965732e6769746875622e70757368", // subject
    "0002",                             // two headers
    "000b4e6174732d4d73672d4964",       // "Nats-Msg-Id"
    "002b6769746875623a37326433313632652d636337382d313165332d383161622d346339333637646330393538",
    "000e582d4769744875622d4576656e74", // "X-GitHub-Event"
    "000470757368",                     // "push", trimmed
    "0252d04b81792d637d82235c2e3f2f5a1aef4939830565eee2aec25d37681212", // SHA-256(body)
);
const PUSH_LEAF_HASH: &str = "22ada043d9051c1bf345322e5e689c036c6a2968f6b155875b0ca06421fb9d8e";

#[test]
fn a_push_delivery_encodes_to_the_pinned_entry_and_leaf_hash() {
    let message = push_delivery();
    let entry = message.encode().unwrap();
    assert_eq!(entry.len(), 178);
    assert_eq!(hex::encode(&entry), PUSH_ENTRY_HEX);
    assert_eq!(message.leaf_hash().unwrap().to_string(), PUSH_LEAF_HASH);
    assert_eq!(leaf_hash(&entry).to_string(), PUSH_LEAF_HASH);
}

#[test]
fn an_entry_decodes_to_its_message_with_canonical_headers() {
    let entry = hex::decode(PUSH_ENTRY_HEX).unwrap();
    let decoded = StreamMessage::decode(&entry).unwrap();
    let original = push_delivery();
    assert_eq!(decoded.sequence, 42);
    assert_eq!(decoded.time_unix_nanos, original.time_unix_nanos);
    assert_eq!(decoded.subject, original.subject);
    assert_eq!(decoded.body_sha256, original.body_sha256);
    assert_eq!(
        decoded.headers,
        vec![
            (
                "Nats-Msg-Id".to_string(),
                "github:72d3162e-cc78-11e3-81ab-4c9367dc0958".to_string()
            ),
            ("X-GitHub-Event".to_string(), "push".to_string()),
        ]
    );
    assert_eq!(decoded.encode().unwrap(), entry);
}

#[test]
fn repeated_header_names_are_ordered_by_value_and_negative_times_survive() {
    let message = StreamMessage::from_body(
        1,
        -5,
        "s",
        vec![("A".into(), "2".into()), ("A".into(), "1".into())],
        b"",
    );
    let decoded = StreamMessage::decode(&message.encode().unwrap()).unwrap();
    assert_eq!(decoded.time_unix_nanos, -5);
    let values: Vec<&str> = decoded.headers.iter().map(|(_, v)| v.as_str()).collect();
    assert_eq!(values, ["1", "2"]);
}

#[test]
fn fields_longer_than_a_u16_are_refused() {
    let mut message = push_delivery();
    message.subject = "s".repeat(65_536);
    assert_eq!(
        message.encode(),
        Err(EntryError::TooLong {
            field: Field::Subject,
            len: 65_536
        })
    );

    let mut message = push_delivery();
    message.headers = vec![("X".into(), "v".repeat(70_000))];
    assert!(matches!(
        message.encode(),
        Err(EntryError::TooLong {
            field: Field::HeaderValue,
            ..
        })
    ));

    let mut message = push_delivery();
    message.headers = (0..65_536)
        .map(|i| (format!("h{i}"), String::new()))
        .collect();
    assert!(matches!(
        message.encode(),
        Err(EntryError::TooLong {
            field: Field::HeaderCount,
            len: 65_536
        })
    ));

    let mut message = push_delivery();
    message.subject = "s".repeat(65_535);
    assert!(message.encode().is_ok());
}

#[test]
fn every_truncation_of_an_entry_is_refused() {
    let entry = hex::decode(PUSH_ENTRY_HEX).unwrap();
    for len in 0..entry.len() {
        assert!(
            matches!(
                StreamMessage::decode(&entry[..len]),
                Err(EntryError::Truncated(_))
            ),
            "truncated to {len}"
        );
    }
}

#[test]
fn bad_prefix_trailing_bytes_bad_utf8_and_unsorted_headers_are_refused() {
    let entry = hex::decode(PUSH_ENTRY_HEX).unwrap();

    let mut bad = entry.clone();
    bad[14] = b'2';
    assert_eq!(StreamMessage::decode(&bad), Err(EntryError::BadPrefix));

    let mut bad = entry.clone();
    bad.push(0);
    assert_eq!(
        StreamMessage::decode(&bad),
        Err(EntryError::TrailingBytes(1))
    );

    let mut bad = entry.clone();
    bad[34] = 0xff; // the subject's first byte
    assert_eq!(
        StreamMessage::decode(&bad),
        Err(EntryError::NotUtf8(Field::Subject))
    );

    let unsorted = StreamMessage {
        headers: vec![("B".into(), "1".into()), ("A".into(), "1".into())],
        ..push_delivery()
    };
    let mut bytes = unsorted.encode().unwrap();
    let at = bytes
        .windows(5)
        .position(|w| w == b"\x00\x01A\x00\x01")
        .unwrap();
    bytes[at + 2] = b'B';
    let second = bytes
        .windows(5)
        .rposition(|w| w == b"\x00\x01B\x00\x01")
        .unwrap();
    bytes[second + 2] = b'A';
    assert_eq!(StreamMessage::decode(&bytes), Err(EntryError::NotCanonical));

    let untrimmed = StreamMessage {
        headers: vec![("A".into(), "x".into())],
        ..push_delivery()
    };
    let mut bytes = untrimmed.encode().unwrap();
    let at = bytes
        .windows(4)
        .position(|w| w == b"\x00\x01x\x02")
        .unwrap();
    bytes[at + 2] = b' ';
    assert_eq!(StreamMessage::decode(&bytes), Err(EntryError::NotCanonical));
}
