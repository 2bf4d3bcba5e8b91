//! The headers GitHub sends with every delivery, validated into types.
//!
//! Header values are not covered by the signature, so they are checked for shape here before they
//! are used as a NATS subject token or message id.

/// A header value that is missing or has the wrong shape. The message names the header.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum EnvelopeError {
    #[error("the {0} header is missing")]
    Missing(&'static str),
    #[error("the {header} header is not valid: {expected}")]
    Invalid {
        header: &'static str,
        expected: &'static str,
    },
}

pub const EVENT_HEADER: &str = "X-GitHub-Event";
pub const DELIVERY_HEADER: &str = "X-GitHub-Delivery";
pub const HOOK_ID_HEADER: &str = "X-GitHub-Hook-ID";
pub const TARGET_TYPE_HEADER: &str = "X-GitHub-Hook-Installation-Target-Type";
pub const TARGET_ID_HEADER: &str = "X-GitHub-Hook-Installation-Target-ID";

fn is_token_char(c: char) -> bool {
    c.is_ascii_alphanumeric() || c == '_' || c == '-'
}

fn check(
    value: &str,
    header: &'static str,
    expected: &'static str,
    max_len: usize,
    allowed: impl Fn(char) -> bool,
) -> Result<(), EnvelopeError> {
    if value.is_empty() || value.len() > max_len || !value.chars().all(allowed) {
        return Err(EnvelopeError::Invalid { header, expected });
    }
    Ok(())
}

string_newtype!(
    /// `X-GitHub-Delivery`: GitHub's GUID for one delivery, kept when it is redelivered. No `:`,
    /// the separator of the message id (`<hook id>:<delivery id>`), so two deliveries never share
    /// one.
    #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
    DeliveryId
);
string_newtype!(
    /// `X-GitHub-Event`: the event name, also the last token of the delivery's NATS subject.
    #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
    EventName
);
string_newtype!(
    /// `X-GitHub-Hook-ID`: the webhook that sent the delivery.
    #[derive(Clone, Debug, PartialEq, Eq, Hash, PartialOrd, Ord)]
    HookId
);

impl DeliveryId {
    pub fn parse(value: &str) -> Result<Self, EnvelopeError> {
        check(
            value,
            DELIVERY_HEADER,
            "1 to 128 printable ASCII characters without spaces or `:`",
            128,
            |c| c.is_ascii_graphic() && c != ':',
        )?;
        Ok(Self(value.to_owned()))
    }
}

impl EventName {
    pub fn parse(value: &str) -> Result<Self, EnvelopeError> {
        check(
            value,
            EVENT_HEADER,
            "1 to 64 ASCII letters, digits, `_` or `-`",
            64,
            is_token_char,
        )?;
        Ok(Self(value.to_owned()))
    }

    /// What the connector does with this event.
    pub fn disposition(&self) -> Disposition {
        match self.0.as_str() {
            "push"
            | "installation"
            | "installation_repositories"
            | "repository"
            | "installation_target"
            | "ping" => Disposition::ActedOn,
            _ => Disposition::Recorded,
        }
    }

    /// What the connector does with this event from a repository connection's webhook, which
    /// speaks for its repository only: its pushes, runs and pull requests.
    pub fn connection_disposition(&self) -> Disposition {
        match self.0.as_str() {
            "ping"
            | "push"
            | "gitlab_push_hook"
            | "workflow_run"
            | "pull_request"
            | "gitlab_pipeline_hook"
            | "gitlab_merge_request_hook" => Disposition::ActedOn,
            _ => Disposition::Recorded,
        }
    }
}

impl HookId {
    pub fn parse(value: &str) -> Result<Self, EnvelopeError> {
        check(value, HOOK_ID_HEADER, "1 to 20 digits", 20, |c| {
            c.is_ascii_digit()
        })?;
        Ok(Self(value.to_owned()))
    }
}

/// Whether the connector acts on an event (`202 Accepted`) or only records it (`200 OK`).
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub enum Disposition {
    ActedOn,
    Recorded,
}

/// `X-GitHub-Hook-Installation-Target-Type` and `-ID`: what the webhook is installed on
/// (`integration` for a GitHub App, `repository`, `organization`, …).
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct InstallationTarget {
    pub kind: String,
    pub id: String,
}

/// The typed headers of one delivery.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct DeliveryEnvelope {
    pub event: EventName,
    pub delivery_id: DeliveryId,
    pub hook_id: Option<HookId>,
    pub installation_target: Option<InstallationTarget>,
}

/// Header values as they arrived, before validation.
#[derive(Clone, Copy, Debug, Default)]
pub struct RawEnvelope<'a> {
    pub event: Option<&'a str>,
    pub delivery_id: Option<&'a str>,
    pub hook_id: Option<&'a str>,
    pub target_type: Option<&'a str>,
    pub target_id: Option<&'a str>,
}

impl DeliveryEnvelope {
    pub fn parse(raw: RawEnvelope<'_>) -> Result<Self, EnvelopeError> {
        let event = EventName::parse(raw.event.ok_or(EnvelopeError::Missing(EVENT_HEADER))?)?;
        let delivery_id = DeliveryId::parse(
            raw.delivery_id
                .ok_or(EnvelopeError::Missing(DELIVERY_HEADER))?,
        )?;
        let hook_id = raw.hook_id.map(HookId::parse).transpose()?;
        let installation_target = match (raw.target_type, raw.target_id) {
            (None, None) => None,
            (kind, id) => {
                let kind = kind.ok_or(EnvelopeError::Missing(TARGET_TYPE_HEADER))?;
                let id = id.ok_or(EnvelopeError::Missing(TARGET_ID_HEADER))?;
                check(
                    kind,
                    TARGET_TYPE_HEADER,
                    "1 to 64 ASCII letters, digits, `_` or `-`",
                    64,
                    is_token_char,
                )?;
                check(id, TARGET_ID_HEADER, "1 to 20 digits", 20, |c| {
                    c.is_ascii_digit()
                })?;
                Some(InstallationTarget {
                    kind: kind.to_owned(),
                    id: id.to_owned(),
                })
            }
        };
        Ok(Self {
            event,
            delivery_id,
            hook_id,
            installation_target,
        })
    }

    /// The JetStream de-duplication id: the delivery id, prefixed with the hook id when known,
    /// so that the same delivery redelivered by hand is stored once.
    pub fn message_id(&self) -> String {
        match &self.hook_id {
            Some(hook) => format!("{hook}:{}", self.delivery_id),
            None => self.delivery_id.to_string(),
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn raw<'a>(event: Option<&'a str>, delivery: Option<&'a str>) -> RawEnvelope<'a> {
        RawEnvelope {
            event,
            delivery_id: delivery,
            ..Default::default()
        }
    }

    #[test]
    fn a_delivery_id_with_a_colon_is_refused_so_two_message_ids_never_collide() {
        // Hook 12 with delivery `abc` is `12:abc`; a hookless delivery `12:abc` would be too.
        let err = DeliveryEnvelope::parse(raw(Some("push"), Some("12:abc"))).unwrap_err();
        assert!(err.to_string().contains(DELIVERY_HEADER), "{err}");
    }

    #[test]
    fn a_full_envelope_parses_and_names_its_message_id() {
        let envelope = DeliveryEnvelope::parse(RawEnvelope {
            event: Some("push"),
            delivery_id: Some("72d3162e-cc78-11e3-81ab-4c9367dc0958"),
            hook_id: Some("12345"),
            target_type: Some("integration"),
            target_id: Some("42"),
        })
        .unwrap();
        assert_eq!(
            envelope.message_id(),
            "12345:72d3162e-cc78-11e3-81ab-4c9367dc0958"
        );
        assert_eq!(envelope.event.disposition(), Disposition::ActedOn);
        assert_eq!(envelope.installation_target.unwrap().id, "42");
    }

    #[test]
    fn missing_event_or_delivery_is_named() {
        assert_eq!(
            DeliveryEnvelope::parse(raw(None, Some("d"))).unwrap_err(),
            EnvelopeError::Missing(EVENT_HEADER)
        );
        assert_eq!(
            DeliveryEnvelope::parse(raw(Some("push"), None)).unwrap_err(),
            EnvelopeError::Missing(DELIVERY_HEADER)
        );
    }

    #[test]
    fn event_names_that_could_escape_a_subject_token_are_refused() {
        for bad in ["", "push.x", "push*", ">", "pu sh", &"a".repeat(65)] {
            assert!(EventName::parse(bad).is_err(), "{bad:?}");
        }
        assert!(EventName::parse("installation_repositories").is_ok());
    }

    #[test]
    fn delivery_ids_with_spaces_or_control_characters_are_refused() {
        for bad in ["", "a b", "a\nb", &"x".repeat(129)] {
            assert!(DeliveryId::parse(bad).is_err(), "{bad:?}");
        }
    }

    #[test]
    fn only_connector_events_are_acted_on() {
        for acted in [
            "push",
            "installation",
            "installation_repositories",
            "repository",
            "installation_target",
            "ping",
        ] {
            assert_eq!(
                EventName::parse(acted).unwrap().disposition(),
                Disposition::ActedOn
            );
        }
        for recorded in ["issues", "star", "pull_request", "check_run"] {
            assert_eq!(
                EventName::parse(recorded).unwrap().disposition(),
                Disposition::Recorded
            );
        }
    }

    #[test]
    fn a_connections_webhook_is_acted_on_for_its_repository_events_only() {
        let of = |name: &str| EventName::parse(name).unwrap().connection_disposition();
        for acted in [
            "ping",
            "push",
            "gitlab_push_hook",
            "workflow_run",
            "pull_request",
            "gitlab_pipeline_hook",
            "gitlab_merge_request_hook",
        ] {
            assert_eq!(of(acted), Disposition::ActedOn, "{acted}");
        }
        // App events are not its to send.
        for recorded in ["installation", "repository", "star"] {
            assert_eq!(of(recorded), Disposition::Recorded, "{recorded}");
        }
    }

    #[test]
    fn half_an_installation_target_is_refused() {
        let err = DeliveryEnvelope::parse(RawEnvelope {
            target_type: Some("integration"),
            ..raw(Some("push"), Some("d"))
        })
        .unwrap_err();
        assert_eq!(err, EnvelopeError::Missing(TARGET_ID_HEADER));
    }
}
