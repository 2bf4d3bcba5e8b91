//! The requests the fuzzer sends, drawn with proptest strategies from a seeded RNG: mostly
//! webhook posts built from GitHub's example payloads, with each header present, missing,
//! duplicated, malformed or oversized, a `Content-Length` that is true, missing or lies, and a
//! signature that is valid over the very bytes sent or not; some other methods and paths; some
//! requests that are not HTTP at all.

use std::sync::LazyLock;

use proptest::prelude::*;
use proptest::sample::Index;
use proptest::strategy::ValueTree;
use proptest::test_runner::{RngAlgorithm, TestRng, TestRunner};
use serde_json::Value;

const FORM: &str = "application/x-www-form-urlencoded";
/// The address that sends 15% of the requests (the others come from 32 quiet ones).
pub const NOISY: [u8; 4] = [127, 0, 9, 9];

/// Compact example bodies of every event in the vendored `@octokit/webhooks-examples`.
static EXAMPLES: LazyLock<Vec<(String, Vec<u8>)>> = LazyLock::new(|| {
    let path = concat!(
        env!("CARGO_MANIFEST_DIR"),
        "/tests/fixtures/octokit-webhooks-examples/api.github.com.json"
    );
    let all: Vec<Value> =
        serde_json::from_slice(&std::fs::read(path).expect("the vendored examples")).expect("JSON");
    all.iter()
        .flat_map(|event| {
            let name = event["name"].as_str().expect("name").to_owned();
            let payloads = event["examples"].as_array().expect("examples").clone();
            payloads
                .into_iter()
                .map(move |p| (name.clone(), serde_json::to_vec(&p).expect("serializes")))
        })
        .collect()
});

/// One value of `X-Hub-Signature-256`.
#[derive(Debug, Clone)]
pub enum Sig {
    /// The test secret's HMAC of the body as sent (after any cut a lying length makes).
    Valid,
    ValidUppercase,
    /// The test secret's HMAC of other bytes.
    OtherBody,
    WrongSecret,
    Text(String),
    /// Bytes outside visible ASCII, which are not a header string.
    Opaque(Vec<u8>),
}

/// How the body is framed.
#[derive(Debug, Clone)]
pub enum Length {
    True,
    /// No `Content-Length`: the request has no body, and what follows is the next request.
    Missing,
    /// Announces `extra` more bytes than are sent, then half-closes (`true`) or waits.
    High {
        extra: u64,
        half_close: bool,
    },
    /// Announces fewer bytes than are sent.
    Low(Index),
    /// Announces more than the 25 MiB limit; sends only the body.
    OverLimit(u64),
    /// Not a number, or two different numbers: not valid HTTP.
    Garbage(String),
    Twice,
    Chunked,
}

#[derive(Debug, Clone)]
pub struct Drawn {
    pub source: [u8; 4],
    pub method: String,
    pub path: String,
    pub signatures: Vec<Sig>,
    pub event: Vec<Vec<u8>>,
    pub delivery: Vec<Vec<u8>>,
    pub hook_id: Option<Vec<u8>>,
    pub target: Option<(Vec<u8>, Vec<u8>)>,
    pub content_type: Vec<Vec<u8>>,
    pub extra_headers: Vec<(String, Vec<u8>)>,
    pub length: Length,
    pub expect_continue: bool,
    pub close: bool,
    pub body: Vec<u8>,
    /// Not an HTTP request at all: these bytes are sent instead.
    pub raw: Option<Vec<u8>>,
}

fn text(s: &'static str) -> BoxedStrategy<Vec<u8>> {
    Just(s.as_bytes().to_vec()).boxed()
}

/// A header value that is legal on the wire but may be anything to hooklog.
fn visible(max: usize) -> impl Strategy<Value = Vec<u8>> {
    prop::collection::vec(0x20u8..0x7f, 1..max).prop_map(|mut v| {
        // Leading and trailing spaces are not part of a value.
        v.retain(|b| *b != b' ');
        if v.is_empty() {
            v.push(b'x');
        }
        v
    })
}

/// Bytes a header value may hold on the wire (obs-text) that are no string to the server.
fn opaque() -> impl Strategy<Value = Vec<u8>> {
    prop_oneof![
        prop::collection::vec(0x80u8..=0xff, 1..8),
        "[a-z]{1,4}".prop_map(|s| [s.as_bytes(), "é".as_bytes()].concat()),
    ]
}

fn header_values(good: BoxedStrategy<Vec<u8>>, bad: usize) -> impl Strategy<Value = Vec<Vec<u8>>> {
    let one = prop_oneof![8 => good, 2 => visible(bad), 1 => opaque()];
    prop_oneof![
        12 => one.clone().prop_map(|v| vec![v]),
        1 => Just(vec![]),
        1 => prop::collection::vec(one, 2..3),
    ]
}

fn signature() -> impl Strategy<Value = Sig> {
    prop_oneof![
        10 => Just(Sig::Valid),
        1 => Just(Sig::ValidUppercase),
        2 => Just(Sig::OtherBody),
        2 => Just(Sig::WrongSecret),
        1 => "sha256=[0-9a-f]{0,70}".prop_map(Sig::Text),
        1 => "(sha1|sha256)=?[ -~]{0,80}".prop_map(Sig::Text),
        1 => (1usize..200_000).prop_map(|n| Sig::Text(format!("sha256={}", "a".repeat(n)))),
        1 => opaque().prop_map(Sig::Opaque),
    ]
}

/// `Content-Length` values that are no length.
const GARBAGE_LENGTHS: [&str; 6] = [
    "abc",
    "-1",
    "1e3",
    "0x10",
    "12 12",
    "99999999999999999999999",
];

fn length() -> impl Strategy<Value = Length> {
    prop_oneof![
        30 => Just(Length::True),
        2 => Just(Length::Missing),
        2 => (1u64..5_000, any::<bool>())
            .prop_map(|(extra, half_close)| Length::High { extra, half_close }),
        2 => any::<Index>().prop_map(Length::Low),
        1 => (26_214_401u64..u64::MAX / 2).prop_map(Length::OverLimit),
        1 => prop::sample::select(GARBAGE_LENGTHS.to_vec())
            .prop_map(|s| Length::Garbage(s.to_owned())),
        1 => Just(Length::Twice),
        2 => Just(Length::Chunked),
    ]
}

/// A body: a GitHub example (sometimes cut short), form-encoded or not, any bytes, nothing, or
/// (rarely) up to 2 MB.
fn body() -> impl Strategy<Value = Vec<u8>> {
    let example = prop::sample::select(EXAMPLES.clone()).prop_map(|(_, json)| json);
    let cut = prop_oneof![8 => Just(None), 1 => any::<Index>().prop_map(Some)];
    prop_oneof![
        100 => (example.clone(), cut).prop_map(|(mut json, cut)| {
            if let Some(at) = cut {
                json.truncate(at.index(json.len() + 1));
            }
            json
        }),
        30 => example.prop_map(|json| {
            let encoded: String = form_urlencoded::byte_serialize(&json).collect();
            format!("payload={encoded}").into_bytes()
        }),
        20 => prop::collection::vec(any::<u8>(), 0..2048),
        10 => Just(Vec::new()),
        1 => (1usize..2_000_000)
            .prop_map(|n| format!("{{\"pad\":\"{}\"}}", "x".repeat(n)).into_bytes()),
    ]
}

/// Requests that are not what they seem: two lengths, a length beside chunked framing, a control
/// character in a header value, an HTTP version that does not exist.
const RAW: [&[u8]; 4] = [
    b"POST /v1/webhooks/connectors/github HTTP/1.1\r\nContent-Length: 5\r\n\
      Content-Length: 6\r\n\r\nhello!",
    b"POST /v1/webhooks/connectors/github HTTP/1.1\r\nTransfer-Encoding: chunked\r\n\
      Content-Length: 3\r\n\r\n0\r\n\r\n",
    b"POST /v1/webhooks/connectors/github HTTP/1.1\r\nX-Hub-Signature-256: a\x01b\r\n\r\n",
    b"GET / HTTP/9.9\r\n\r\n",
];

/// A request drawn from the strategies below.
pub fn request() -> impl Strategy<Value = Drawn> {
    let method = prop_oneof![
        30 => Just("POST".to_owned()),
        1 => prop::sample::select(vec![
            "GET", "PUT", "DELETE", "PATCH", "HEAD", "OPTIONS", "post", "FUZZ",
        ])
            .prop_map(str::to_owned),
    ];
    let path = prop_oneof![
        30 => Just(hooklog_ingress::WEBHOOK_PATH.to_owned()),
        2 => Just(format!("{}?x=1&payload=%7B%7D", hooklog_ingress::WEBHOOK_PATH)),
        1 => prop::sample::select(vec![
            "/",
            "/v1/webhooks/connectors/github/",
            "/V1/webhooks/connectors/github",
            "//v1/webhooks/connectors/github",
            "/v1/webhooks/connectors/%67ithub",
            "*",
        ])
        .prop_map(str::to_owned),
        1 => "/[a-z0-9/._-]{0,64}",
        1 => (1usize..20_000).prop_map(|n| format!("/{}", "a".repeat(n))),
    ];
    let delivery = prop_oneof![
        6 => "[0-9a-f]{8}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{4}-[0-9a-f]{12}"
            .prop_map(String::into_bytes)
            .boxed(),
        1 => (0u8..4).prop_map(|n| format!("fuzz-duplicate-{n}").into_bytes()).boxed(),
    ];
    let content_type = prop_oneof![
        Just(b"application/json".to_vec()).boxed(),
        Just(FORM.as_bytes().to_vec()).boxed(),
        text("application/json; charset=utf-8"),
        text("text/plain"),
    ];
    let extra = prop::collection::vec(
        prop_oneof![
            3 => visible(16).prop_map(|v| ("X-GitHub-Hook-Installation-Target-Type", v)),
            1 => text("gzip").prop_map(|v| ("Transfer-Encoding", v)),
            2 => text("keep-alive").prop_map(|v| ("Connection", v)),
            2 => visible(40).prop_map(|v| ("Host", v)),
            2 => (1usize..30_000).prop_map(|n| ("X-Filler", vec![b'f'; n])),
        ]
        .prop_map(|(name, value)| (name.to_owned(), value)),
        0..2,
    );
    let headers = (
        prop::collection::vec(signature(), 0..3),
        header_values(
            prop::sample::select(vec![
                "push",
                "ping",
                "installation",
                "installation_repositories",
                "repository",
                "installation_target",
                "issues",
                "star",
                "check_run",
            ])
            .prop_map(|s| s.as_bytes().to_vec())
            .boxed(),
            70,
        ),
        header_values(delivery.boxed(), 140),
        prop::option::weighted(
            0.2,
            prop_oneof![
                4 => "[0-9]{1,20}".prop_map(String::into_bytes).boxed(),
                1 => visible(24).boxed(),
            ],
        ),
        prop::option::weighted(
            0.1,
            (
                "[a-z]{1,12}".prop_map(String::into_bytes),
                "[0-9]{1,21}".prop_map(String::into_bytes),
            ),
        ),
        header_values(content_type.boxed(), 40),
        extra,
    );
    let raw = prop_oneof![
        120 => Just(None),
        1 => prop::collection::vec(any::<u8>(), 1..512).prop_map(Some),
        1 => Just(Some(RAW[0].to_vec())),
        1 => Just(Some(RAW[1].to_vec())),
        1 => Just(Some(RAW[2].to_vec())),
        1 => Just(Some(RAW[3].to_vec())),
    ];
    (
        prop_oneof![
            17 => (0u8..4, 1u8..9).prop_map(|(a, b)| [127, 0, a, b]),
            3 => Just(NOISY),
        ],
        method,
        path,
        headers,
        length(),
        prop::bool::weighted(0.05),
        prop::bool::weighted(0.8),
        body(),
        raw,
    )
        .prop_map(
            |(source, method, path, headers, length, expect_continue, close, body, raw)| {
                let (signatures, event, delivery, hook_id, target, content_type, extra_headers) =
                    headers;
                Drawn {
                    source,
                    method,
                    path,
                    signatures,
                    event,
                    delivery,
                    hook_id,
                    target,
                    content_type,
                    extra_headers,
                    length,
                    expect_continue,
                    close,
                    body,
                    raw,
                }
            },
        )
}

/// Case `case` of the run seeded with `seed`: the same pair always draws the same request.
pub fn draw(seed: u64, case: u64) -> Drawn {
    let mut bytes = [0u8; 32];
    bytes[..8].copy_from_slice(&seed.to_le_bytes());
    bytes[8..16].copy_from_slice(&case.to_le_bytes());
    let rng = TestRng::from_seed(RngAlgorithm::ChaCha, &bytes);
    let mut runner = TestRunner::new_with_rng(ProptestConfig::default(), rng);
    request()
        .new_tree(&mut runner)
        .expect("a request")
        .current()
}
