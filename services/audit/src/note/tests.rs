//! Keys and notes pinned by vectors from Go's golang.org/x/mod/sumdb/note, and each way a key
//! or a note can be wrong.

use secrecy::ExposeSecret;

use super::*;

// Derived with Go's golang.org/x/mod/sumdb/note 0.7.0 (Debian's golang-golang-x-mod-dev): the
// seed 0x00, 0x01, …, 0x1f, note.NewEd25519VerifierKey for the verifier key, note.NewSigner on
// the private key text below (which checks its key id) and note.Sign of CHECKPOINT_TEXT.
const NAME: &str = "audit.hooklog.example";
const VERIFIER: &str =
    "audit.hooklog.example+06a0feef+AQOhB7/zzhC+HXDdGOdLwJln5NYwm6UNXx3chmQSVTG4";
const PRIVATE: &str =
    "PRIVATE+KEY+audit.hooklog.example+06a0feef+AQABAgMEBQYHCAkKCwwNDg8QERITFBUWFxgZGhscHR4f";
const CHECKPOINT_TEXT: &str =
    "audit.hooklog.example/deliveries\n7\nmMl/C6MXXNCLAx3QhLncTmSbZNGijm6mlGRlAxc6tYc=\n";
const SIGNED: &str = concat!(
    "audit.hooklog.example/deliveries\n7\nmMl/C6MXXNCLAx3QhLncTmSbZNGijm6mlGRlAxc6tYc=\n",
    "\n",
    "\u{2014} audit.hooklog.example BqD+74KPMOc1tETW90660zG7ATCulQJWZweh+daCoq7O1BEhjk4RgZMt60/AI3Ro",
    "HFhR01Ag8zYMWDGYhHz8+YejOgs=\n",
);

fn seed() -> [u8; 32] {
    std::array::from_fn(|i| i as u8)
}

fn test_key() -> SigningKey {
    SigningKey::from_seed(NAME, &seed()).unwrap()
}

#[test]
fn a_key_from_a_seed_has_the_key_id_and_texts_go_writes() {
    let key = test_key();
    assert_eq!(key.key_id(), 0x06a0feef);
    assert_eq!(key.verifier().to_string(), VERIFIER);
    assert_eq!(key.to_private_text().expose_secret(), PRIVATE);
    assert_eq!(key_id(NAME, &key.verifier().public_key()), 0x06a0feef);
    assert_eq!(
        format!("{key:?}"),
        "SigningKey { name: \"audit.hooklog.example\", key_id: 06a0feef, .. }"
    );
}

#[test]
fn key_texts_parse_back_to_the_same_keys() {
    let key = SigningKey::parse(PRIVATE).unwrap();
    assert_eq!(key.verifier(), test_key().verifier());
    let verifier: VerifierKey = VERIFIER.parse().unwrap();
    assert_eq!(verifier, test_key().verifier());
    assert_eq!(verifier.name(), NAME);
    let upper = VERIFIER.replace("06a0feef", "06A0FEEF");
    assert_eq!(VerifierKey::parse(&upper), Ok(verifier));
}

#[test]
fn signing_gives_the_note_go_signs() {
    assert_eq!(sign(CHECKPOINT_TEXT, &test_key()).unwrap(), SIGNED);
    let verifier = VerifierKey::parse(VERIFIER).unwrap();
    assert_eq!(open(SIGNED, &[verifier]), Ok(CHECKPOINT_TEXT));
}

#[test]
fn generated_keys_differ_and_sign_what_they_verify() {
    let (a, b) = (
        SigningKey::generate(NAME).unwrap(),
        SigningKey::generate(NAME).unwrap(),
    );
    assert_ne!(a.verifier().public_key(), b.verifier().public_key());
    let note = sign("hello\n", &a).unwrap();
    assert_eq!(open(&note, &[b.verifier(), a.verifier()]), Ok("hello\n"));
    let reparsed = SigningKey::parse(a.to_private_text().expose_secret()).unwrap();
    assert_eq!(reparsed.verifier(), a.verifier());
}

#[test]
fn malformed_key_texts_say_what_is_wrong() {
    use KeyError::*;
    let cases: &[(&str, KeyError)] = &[
        (
            "",
            WrongFieldCount {
                expected: 3,
                found: 1,
            },
        ),
        (
            "a+b",
            WrongFieldCount {
                expected: 3,
                found: 2,
            },
        ),
        ("a+06a0feef+AQ+x", WrongLength(3)),
        ("+06a0feef+AQOhB7/zzhC+HXDd", BadName(String::new())),
        ("name+6a0feef+AQ==", BadKeyId),
        ("name+06a0feeg+AQ==", BadKeyId),
        ("name+06a0feef+AQ=", BadBase64),
        ("name+06a0feef+", WrongLength(0)),
        ("name+06a0feef+Ag==", UnsupportedAlgorithm(2)),
        ("name+06a0feef+AQID", WrongLength(3)),
    ];
    for (text, error) in cases {
        assert_eq!(VerifierKey::parse(text).as_ref(), Err(error), "{text:?}");
    }
    assert_eq!(
        VerifierKey::parse(&VERIFIER.replace(NAME, "na me")),
        Err(BadName("na me".into()))
    );
    assert_eq!(
        VerifierKey::parse(&VERIFIER.replace("06a0feef", "06a0fee0")),
        Err(KeyIdMismatch {
            stated: 0x06a0fee0,
            computed: 0x06a0feef
        })
    );
    let renamed = VERIFIER.replace(NAME, "other.example");
    assert!(matches!(
        VerifierKey::parse(&renamed),
        Err(KeyIdMismatch { .. })
    ));

    assert_eq!(SigningKey::parse(VERIFIER).unwrap_err(), NotAPrivateKey);
    assert_eq!(
        SigningKey::parse(&PRIVATE.replace("06a0feef", "00000000")).unwrap_err(),
        KeyIdMismatch {
            stated: 0,
            computed: 0x06a0feef
        }
    );
    assert_eq!(
        SigningKey::parse("PRIVATE+KEY+a+06a0feef").unwrap_err(),
        WrongFieldCount {
            expected: 3,
            found: 2
        }
    );
    for name in ["", "a b", "a+b", "a\u{a0}b", "a\tb", "a\u{7f}b"] {
        assert_eq!(
            SigningKey::from_seed(name, &seed()).unwrap_err(),
            BadName(name.into())
        );
    }
}

#[test]
fn texts_that_are_not_note_texts_are_not_signed() {
    let key = test_key();
    for text in ["", "no newline", "tab\there\n", "cr\r\n"] {
        assert_eq!(sign(text, &key), Err(NoteError::BadText), "{text:?}");
    }
    let with_blank_lines = "a\n\nb\n";
    let note = sign(with_blank_lines, &key).unwrap();
    assert_eq!(open(&note, &[key.verifier()]), Ok(with_blank_lines));
}

#[test]
fn unknown_keys_bad_signatures_and_malformed_notes_are_distinct_errors() {
    let key = test_key();
    let verifier = key.verifier();
    let stranger = SigningKey::from_seed(NAME, &[9; 32]).unwrap();
    assert_eq!(
        open(SIGNED, &[stranger.verifier()]),
        Err(NoteError::UnknownKey)
    );
    assert_eq!(open(SIGNED, &[]), Err(NoteError::UnknownKey));

    let tampered = SIGNED.replacen("\n7\n", "\n8\n", 1);
    assert_eq!(
        open(&tampered, std::slice::from_ref(&verifier)),
        Err(NoteError::BadSignature {
            name: NAME.into(),
            key_id: 0x06a0feef
        })
    );

    // A signature by an unknown key next to a good one is ignored; a bad one by a known key
    // fails the note even when a good one is there too.
    let other = sign(CHECKPOINT_TEXT, &stranger).unwrap();
    let other_line = &other[CHECKPOINT_TEXT.len() + 1..];
    let both = format!("{SIGNED}{other_line}");
    assert_eq!(
        open(&both, std::slice::from_ref(&verifier)),
        Ok(CHECKPOINT_TEXT)
    );
    let mut bad_sig = base64::engine::general_purpose::STANDARD
        .decode(SIGNED.rsplit(' ').next().unwrap().trim_end())
        .unwrap();
    bad_sig[10] ^= 1;
    let bad_line = format!(
        "\u{2014} {NAME} {}\n",
        base64::engine::general_purpose::STANDARD.encode(&bad_sig)
    );
    let good_and_bad = format!("{SIGNED}{bad_line}");
    assert!(matches!(
        open(&good_and_bad, std::slice::from_ref(&verifier)),
        Err(NoteError::BadSignature { .. })
    ));

    let malformed = [
        CHECKPOINT_TEXT.to_string(),
        SIGNED.trim_end().to_string(),
        SIGNED.replace('\u{2014}', "-"),
        SIGNED.replace(" BqD", "BqD"),
        SIGNED.replace("BqD+", "Bq*+"),
        format!("{CHECKPOINT_TEXT}\n\u{2014} {NAME} AQID\n"),
        format!("{CHECKPOINT_TEXT}\n\u{2014} a+b AQIDBAU=\n"),
        SIGNED.replace("/deliveries", "/deli\u{1b}veries"),
        format!("{SIGNED}{}", bad_line.repeat(MAX_SIGNATURES)),
    ];
    for note in &malformed {
        assert!(
            matches!(
                open(note, std::slice::from_ref(&verifier)),
                Err(NoteError::Malformed(_))
            ),
            "{note:?}"
        );
    }
}
