//! The JSON log line, written straight into the line buffer.
//!
//! The shape is the one `tracing-subscriber`'s JSON format gives with a flattened event:
//! `timestamp` (RFC 3339, microseconds, UTC), `level`, the event's fields (`message` among
//! them), `target`, then `span` (the current span's fields and `name`) and `spans` (every span
//! from the root, each the same way) when the event is inside one. What differs is the cost:
//! that format keeps a span's fields as a JSON object that it parses back into values for each
//! line, once for `span` and again for `spans`, and a field recorded on a span later parses and
//! re-serializes them all; here a span keeps its fields as the ready-written members of an
//! object (`"delivery_id":"…","event":"push"`), copied into each line as they are, and a
//! field recorded later is appended to them. A field recorded twice on one span then appears
//! twice, the later last.

use std::fmt::{self, Write};

use tracing::field::{Field, Visit};
use tracing::{Event, Subscriber};
use tracing_subscriber::field::RecordFields;
use tracing_subscriber::fmt::format::Writer;
use tracing_subscriber::fmt::{FmtContext, FormatEvent, FormatFields, FormattedFields};
use tracing_subscriber::registry::LookupSpan;

/// How spans keep their fields: the members of a JSON object, without the braces.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonFields;

/// The line itself.
#[derive(Debug, Default, Clone, Copy)]
pub struct JsonLine;

impl<'writer> FormatFields<'writer> for JsonFields {
    fn format_fields<R: RecordFields>(
        &self,
        mut writer: Writer<'writer>,
        fields: R,
    ) -> fmt::Result {
        let mut members = Members::new(&mut writer, true);
        fields.record(&mut members);
        members.result
    }

    fn add_fields(
        &self,
        current: &'writer mut FormattedFields<Self>,
        fields: &tracing::span::Record<'_>,
    ) -> fmt::Result {
        let first = current.fields.is_empty();
        let mut writer = current.as_writer();
        let mut members = Members::new(&mut writer, first);
        fields.record(&mut members);
        members.result
    }
}

impl<S> FormatEvent<S, JsonFields> for JsonLine
where
    S: Subscriber + for<'lookup> LookupSpan<'lookup>,
{
    fn format_event(
        &self,
        ctx: &FmtContext<'_, S, JsonFields>,
        mut writer: Writer<'_>,
        event: &Event<'_>,
    ) -> fmt::Result {
        let meta = event.metadata();
        let now = humantime::format_rfc3339_micros(std::time::SystemTime::now());
        write!(
            writer,
            "{{\"timestamp\":\"{now}\",\"level\":\"{}\"",
            meta.level()
        )?;
        let mut members = Members::new(&mut writer, false);
        event.record(&mut members);
        members.result?;
        writer.write_str(",\"target\":")?;
        string(&mut writer, meta.target())?;
        let current = event
            .parent()
            .and_then(|id| ctx.span(id))
            .or_else(|| ctx.lookup_current());
        if let Some(current) = current {
            writer.write_str(",\"span\":")?;
            span(&mut writer, &current)?;
            writer.write_str(",\"spans\":[")?;
            for (i, each) in current.scope().from_root().enumerate() {
                if i > 0 {
                    writer.write_char(',')?;
                }
                span(&mut writer, &each)?;
            }
            writer.write_char(']')?;
        }
        writer.write_str("}\n")
    }
}

/// `{<its fields>,"name":"<its name>"}`.
fn span<S>(
    writer: &mut Writer<'_>,
    span: &tracing_subscriber::registry::SpanRef<'_, S>,
) -> fmt::Result
where
    S: for<'lookup> LookupSpan<'lookup>,
{
    writer.write_char('{')?;
    let extensions = span.extensions();
    if let Some(fields) = extensions.get::<FormattedFields<JsonFields>>() {
        if !fields.fields.is_empty() {
            writer.write_str(&fields.fields)?;
            writer.write_char(',')?;
        }
    }
    writer.write_str("\"name\":")?;
    string(writer, span.metadata().name())?;
    writer.write_char('}')
}

/// Writes fields as `"name":value` members, each after a comma but the very first when `first`.
struct Members<'a, W: Write> {
    writer: &'a mut W,
    first: bool,
    result: fmt::Result,
}

impl<'a, W: Write> Members<'a, W> {
    fn new(writer: &'a mut W, first: bool) -> Self {
        Self {
            writer,
            first,
            result: Ok(()),
        }
    }

    fn member(&mut self, field: &Field, value: impl FnOnce(&mut W) -> fmt::Result) {
        if self.result.is_err() {
            return;
        }
        self.result = (|| {
            if !std::mem::take(&mut self.first) {
                self.writer.write_char(',')?;
            }
            string(self.writer, field.name())?;
            self.writer.write_char(':')?;
            value(self.writer)
        })();
    }
}

impl<W: Write> Visit for Members<'_, W> {
    fn record_f64(&mut self, field: &Field, value: f64) {
        match value.is_finite() {
            true => self.member(field, |w| write!(w, "{value}")),
            false => self.member(field, |w| w.write_str("null")),
        }
    }
    fn record_i64(&mut self, field: &Field, value: i64) {
        self.member(field, |w| write!(w, "{value}"));
    }
    fn record_u64(&mut self, field: &Field, value: u64) {
        self.member(field, |w| write!(w, "{value}"));
    }
    fn record_bool(&mut self, field: &Field, value: bool) {
        self.member(field, |w| write!(w, "{value}"));
    }
    fn record_str(&mut self, field: &Field, value: &str) {
        self.member(field, |w| string(w, value));
    }
    fn record_error(&mut self, field: &Field, value: &(dyn std::error::Error + 'static)) {
        self.member(field, |w| {
            w.write_char('"')?;
            write!(Escaped(w), "{value}")?;
            w.write_char('"')
        });
    }
    fn record_debug(&mut self, field: &Field, value: &dyn fmt::Debug) {
        self.member(field, |w| {
            w.write_char('"')?;
            write!(Escaped(w), "{value:?}")?;
            w.write_char('"')
        });
    }
}

/// A JSON string.
fn string<W: Write>(writer: &mut W, value: &str) -> fmt::Result {
    writer.write_char('"')?;
    Escaped(&mut *writer).write_str(value)?;
    writer.write_char('"')
}

/// Writes what it is given escaped for the inside of a JSON string.
struct Escaped<'a, W: Write>(&'a mut W);

impl<W: Write> Write for Escaped<'_, W> {
    fn write_str(&mut self, value: &str) -> fmt::Result {
        let mut plain = 0;
        for (at, byte) in value.bytes().enumerate() {
            let escape = match byte {
                b'"' => "\\\"",
                b'\\' => "\\\\",
                b'\n' => "\\n",
                b'\r' => "\\r",
                b'\t' => "\\t",
                0..=0x1f | 0x7f => "",
                _ => continue,
            };
            self.0.write_str(&value[plain..at])?;
            match escape {
                "" => write!(self.0, "\\u{byte:04x}")?,
                escape => self.0.write_str(escape)?,
            }
            plain = at + 1;
        }
        self.0.write_str(&value[plain..])
    }
}

#[cfg(test)]
mod tests {
    use std::sync::{Arc, Mutex};

    use serde_json::{json, Value};
    use tracing_subscriber::fmt::MakeWriter;

    use super::*;

    #[derive(Clone, Default)]
    struct Lines(Arc<Mutex<Vec<u8>>>);

    impl std::io::Write for Lines {
        fn write(&mut self, buf: &[u8]) -> std::io::Result<usize> {
            self.0.lock().unwrap().extend_from_slice(buf);
            Ok(buf.len())
        }
        fn flush(&mut self) -> std::io::Result<()> {
            Ok(())
        }
    }

    impl<'a> MakeWriter<'a> for Lines {
        type Writer = Lines;
        fn make_writer(&'a self) -> Self::Writer {
            self.clone()
        }
    }

    /// Every line `logging` writes, each parsed as JSON.
    fn logged(logging: impl FnOnce()) -> Vec<Value> {
        let lines = Lines::default();
        let subscriber = tracing_subscriber::fmt()
            .fmt_fields(JsonFields)
            .event_format(JsonLine)
            .with_writer(lines.clone())
            .finish();
        tracing::subscriber::with_default(subscriber, logging);
        let written = String::from_utf8(lines.0.lock().unwrap().clone()).unwrap();
        written
            .lines()
            .map(|line| serde_json::from_str(line).unwrap_or_else(|err| panic!("{err}: {line}")))
            .collect()
    }

    #[test]
    fn given_an_event_outside_spans_when_logged_then_its_fields_are_members_of_the_line() {
        let lines = logged(|| {
            tracing::info!(
                count = 3u64,
                delta = -2i64,
                ratio = 0.5,
                ok = true,
                name = "push",
                "delivery stored"
            )
        });
        let [line] = lines.as_slice() else {
            panic!("one line: {lines:?}")
        };
        assert_eq!(line["level"], "INFO");
        assert_eq!(line["message"], "delivery stored");
        assert_eq!(line["count"], 3);
        assert_eq!(line["delta"], -2);
        assert_eq!(line["ratio"], 0.5);
        assert_eq!(line["ok"], true);
        assert_eq!(line["name"], "push");
        assert!(line["target"].as_str().unwrap().contains("telemetry"));
        assert!(line.get("span").is_none() && line.get("spans").is_none());
        let timestamp = line["timestamp"].as_str().unwrap();
        humantime::parse_rfc3339(timestamp).unwrap();
    }

    #[test]
    fn given_nested_spans_with_a_field_recorded_later_when_logged_then_span_and_spans_carry_them() {
        let lines = logged(|| {
            let outer = tracing::info_span!("request", peer = "127.0.0.1");
            let _outer = outer.enter();
            let inner = tracing::info_span!(
                "delivery",
                delivery_id = "d-1",
                stream_seq = tracing::field::Empty
            );
            let _inner = inner.enter();
            tracing::info!("before");
            inner.record("stream_seq", 42u64);
            tracing::warn!(status = 202u64, "after");
        });
        let [before, after] = lines.as_slice() else {
            panic!("two lines: {lines:?}")
        };
        assert_eq!(
            before["span"],
            json!({"delivery_id": "d-1", "name": "delivery"})
        );
        assert_eq!(
            after["span"],
            json!({"delivery_id": "d-1", "stream_seq": 42, "name": "delivery"})
        );
        assert_eq!(
            after["spans"],
            json!([
                {"peer": "127.0.0.1", "name": "request"},
                {"delivery_id": "d-1", "stream_seq": 42, "name": "delivery"}
            ])
        );
        assert_eq!(after["level"], "WARN");
        assert_eq!(after["status"], 202);
    }

    #[test]
    fn given_quotes_backslashes_and_control_characters_when_logged_then_the_line_stays_one_valid_json_line(
    ) {
        let nasty = "a \"quoted\" \\ path\nnext\tline\r\u{1}\u{7f} é ✓";
        let error = std::io::Error::other("broken \"pipe\"\n");
        let lines = logged(|| {
            let span = tracing::info_span!("s", value = nasty);
            let _span = span.enter();
            tracing::error!(
                value = nasty,
                debug = ?nasty,
                error = &error as &(dyn std::error::Error + 'static),
                nan = f64::NAN,
                "message with {} in it",
                "\"formatting\""
            );
        });
        let [line] = lines.as_slice() else {
            panic!("one line: {lines:?}")
        };
        assert_eq!(line["value"], nasty);
        assert_eq!(line["debug"], format!("{nasty:?}"));
        assert_eq!(line["error"], "broken \"pipe\"\n");
        assert_eq!(line["nan"], Value::Null);
        assert_eq!(line["message"], "message with \"formatting\" in it");
        assert_eq!(line["span"]["value"], nasty);
    }
}
