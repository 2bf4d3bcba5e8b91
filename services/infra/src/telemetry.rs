//! One place that sets up `tracing` for the process. Logs go to standard error, as JSON lines
//! (`telemetry/json.rs`) or text, each line written as it is logged or, for `hooklog serve`, in
//! batches ([`batched`]). Code logs fields (`delivery_id`, `stream_seq`, `error = ?err`), never
//! bodies, secrets or arbitrary headers.

pub mod batched;
mod json;

use tracing_subscriber::fmt::writer::BoxMakeWriter;
use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

pub use batched::flush;

/// How log lines reach standard error.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Output {
    /// Each line written as it is logged: commands that also print to standard error.
    Direct,
    /// Lines below `WARN` written in batches ([`batched`]): `hooklog serve`.
    Batched,
}

/// Installs the global subscriber. A bad filter falls back to `info` and says so.
pub fn init(filter: &str, format: LogFormat, output: Output) {
    let (env_filter, bad_filter) = match EnvFilter::try_new(filter) {
        Ok(env_filter) => (env_filter, None),
        Err(err) => (EnvFilter::new("info"), Some(err)),
    };
    let batched = match output {
        Output::Direct => None,
        Output::Batched => batched::stderr(),
    };
    let writer = match batched {
        None => BoxMakeWriter::new(std::io::stderr),
        Some(shared) => BoxMakeWriter::new(batched::BatchedWriter::new(shared)),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(writer);
    let installed = match format {
        LogFormat::Json => builder
            .fmt_fields(json::JsonFields)
            .event_format(json::JsonLine)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    if installed.is_ok() {
        if let Some(err) = bad_filter {
            tracing::warn!(error = %err, "HOOKLOG_LOG is not a valid filter; using `info`");
        }
    }
}
