//! The two body formats GitHub sends: `application/json`, and `application/x-www-form-urlencoded`
//! with the JSON in a `payload` field. Only called on a body whose signature has been verified.

use serde::de::IgnoredAny;

#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum PayloadFormat {
    Json,
    Form,
}

#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum PayloadError {
    #[error("the body is not a JSON object: {0}")]
    InvalidJson(String),
    #[error(
        "the form-encoded body has no `payload` field (GitHub sends `payload=<urlencoded JSON>`)"
    )]
    MissingFormPayload,
    #[error("the `payload` field of the form-encoded body is not a JSON object: {0}")]
    InvalidFormJson(String),
}

pub(crate) const FORM: &str = "application/x-www-form-urlencoded";

impl PayloadFormat {
    /// Checks that `body` is a JSON object, directly or in a form's `payload` field, as its
    /// `Content-Type` says. A body is parsed for validity only; nothing is kept.
    pub fn check(content_type: Option<&str>, body: &[u8]) -> Result<Self, PayloadError> {
        if is_form(content_type) {
            let payload = form_payload(body)?;
            json_object(payload.as_bytes()).map_err(PayloadError::InvalidFormJson)?;
            Ok(Self::Form)
        } else {
            json_object(body).map_err(PayloadError::InvalidJson)?;
            Ok(Self::Json)
        }
    }
}

/// Whether `Content-Type` names GitHub's form encoding (parameters such as a charset aside).
pub(crate) fn is_form(content_type: Option<&str>) -> bool {
    content_type
        .and_then(|value| value.split(';').next())
        .map(str::trim)
        .is_some_and(|media_type| media_type.eq_ignore_ascii_case(FORM))
}

/// The `payload` field of a form-encoded body: the JSON document GitHub wraps.
pub(crate) fn form_payload(body: &[u8]) -> Result<String, PayloadError> {
    form_urlencoded::parse(body)
        .find(|(key, _)| key == "payload")
        .map(|(_, value)| value.into_owned())
        .ok_or(PayloadError::MissingFormPayload)
}

fn json_object(bytes: &[u8]) -> Result<(), String> {
    let first = bytes.iter().find(|b| !b.is_ascii_whitespace());
    if first != Some(&b'{') {
        return Err("it does not start with `{`".to_owned());
    }
    serde_json::from_slice::<IgnoredAny>(bytes)
        .map(drop)
        .map_err(|err| err.to_string())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn json_bodies_are_accepted_whatever_the_content_type_says() {
        for ct in [
            Some("application/json"),
            Some("application/json; charset=utf-8"),
            None,
        ] {
            assert_eq!(
                PayloadFormat::check(ct, br#"{"zen":"x"}"#),
                Ok(PayloadFormat::Json)
            );
        }
    }

    #[test]
    fn form_bodies_carry_json_in_payload() {
        let body = b"payload=%7B%22zen%22%3A%22Keep+it+logically+awesome.%22%7D";
        assert_eq!(
            PayloadFormat::check(Some(FORM), body),
            Ok(PayloadFormat::Form)
        );
    }

    #[test]
    fn bad_bodies_are_refused_with_a_reason() {
        assert!(matches!(
            PayloadFormat::check(Some("application/json"), b"{\"a\":"),
            Err(PayloadError::InvalidJson(reason)) if reason.contains("EOF")
        ));
        assert!(matches!(
            PayloadFormat::check(None, b"[1]"),
            Err(PayloadError::InvalidJson(_))
        ));
        assert!(matches!(
            PayloadFormat::check(None, b"{} trailing"),
            Err(PayloadError::InvalidJson(_))
        ));
        assert_eq!(
            PayloadFormat::check(Some(FORM), b"other=1"),
            Err(PayloadError::MissingFormPayload)
        );
        assert!(matches!(
            PayloadFormat::check(Some(FORM), b"payload=not-json"),
            Err(PayloadError::InvalidFormJson(_))
        ));
    }
}
