//! Checkpoint texts pinned, parsed back, and refused when malformed or for the wrong log.

use super::*;
use crate::tree::root;

// The root of the seven-leaf tree pinned in `tree`'s tests, base64-encoded; the same text is
// signed by Go in `note`'s vectors.
const TEXT: &str =
    "audit.hooklog.example/deliveries\n7\nmMl/C6MXXNCLAx3QhLncTmSbZNGijm6mlGRlAxc6tYc=\n";

fn seven_leaf_root() -> Hash {
    let leaves: Vec<Hash> = (0..7)
        .map(|i| crate::tree::leaf_hash(format!("entry {i}").as_bytes()))
        .collect();
    root(&leaves)
}

#[test]
fn origins_are_the_key_name_and_the_log() {
    assert_eq!(
        Log::Deliveries.origin("audit.hooklog.example"),
        "audit.hooklog.example/deliveries"
    );
    assert_eq!(Log::Events.origin("k"), "k/events");
}

#[test]
fn a_checkpoint_formats_to_three_lines_and_parses_back() {
    let origin = Log::Deliveries.origin("audit.hooklog.example");
    let checkpoint = Checkpoint::new(&origin, 7, seven_leaf_root()).unwrap();
    assert_eq!(checkpoint.to_string(), TEXT);
    assert_eq!(Checkpoint::parse(TEXT), Ok(checkpoint));
    let empty = Checkpoint::new("o", 0, crate::tree::empty_root()).unwrap();
    assert_eq!(
        empty.to_string(),
        "o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n"
    );
}

#[test]
fn extension_lines_are_kept_but_never_made() {
    let text = format!("{TEXT}ext one\nsecond\n");
    let checkpoint = Checkpoint::parse(&text).unwrap();
    assert_eq!(checkpoint.extensions(), ["ext one", "second"]);
    assert_eq!(checkpoint.to_string(), text);
    assert!(Checkpoint::new("o", 1, Hash::default())
        .unwrap()
        .extensions()
        .is_empty());
}

#[test]
fn malformed_checkpoints_say_what_is_wrong() {
    use CheckpointError::*;
    let root = "mMl/C6MXXNCLAx3QhLncTmSbZNGijm6mlGRlAxc6tYc=";
    let cases = [
        (format!("o\n7\n{root}"), BadShape),
        ("o\n7\n".to_string(), BadShape),
        (String::new(), BadShape),
        (format!("\n7\n{root}\n"), BadOrigin),
        (format!("o\u{7}\n7\n{root}\n"), BadOrigin),
        (format!("o\n07\n{root}\n"), BadSize),
        (format!("o\n\n{root}\n"), BadSize),
        (format!("o\n-1\n{root}\n"), BadSize),
        (format!("o\n+1\n{root}\n"), BadSize),
        (format!("o\n18446744073709551616\n{root}\n"), BadSize),
        ("o\n7\nAAAA\n".to_string(), BadRoot),
        (format!("o\n7\n{}\n", &root[..43]), BadRoot),
        (format!("o\n7\n{root}\n\n"), BadExtension),
        (format!("o\n7\n{root}\nx\ty\n"), BadExtension),
    ];
    for (text, error) in cases {
        assert_eq!(Checkpoint::parse(&text), Err(error), "{text:?}");
    }
    assert_eq!(
        Checkpoint::parse("o\n0\n47DEQpj8HBSa+/TImW+5JCeuQeRkm5NMpJWZG3hSuFU=\n").map(|c| c.size()),
        Ok(0)
    );
    assert_eq!(Checkpoint::new("a\nb", 1, Hash::default()), Err(BadOrigin));
}

#[test]
fn a_signed_checkpoint_opens_only_for_its_key_and_its_log() {
    let key = crate::note::SigningKey::from_seed("k", &[3; 32]).unwrap();
    let checkpoint = Checkpoint::new(&Log::Events.origin("k"), 7, seven_leaf_root()).unwrap();
    let note = checkpoint.sign(&key);
    assert_eq!(
        Checkpoint::open(&note, &key.verifier(), "k/events"),
        Ok(checkpoint)
    );
    assert_eq!(
        Checkpoint::open(&note, &key.verifier(), "k/deliveries"),
        Err(CheckpointError::WrongOrigin {
            expected: "k/deliveries".into(),
            found: "k/events".into()
        })
    );
    let other = crate::note::SigningKey::from_seed("k", &[4; 32]).unwrap();
    assert_eq!(
        Checkpoint::open(&note, &other.verifier(), "k/events"),
        Err(CheckpointError::Note(NoteError::UnknownKey))
    );
}
