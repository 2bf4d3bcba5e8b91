//! One place that sets up `tracing` for the process. Logs go to standard error, as JSON lines or
//! text. Code logs fields (`delivery_id`, `stream_seq`, `error = ?err`), never bodies, secrets or
//! arbitrary headers.

use tracing_subscriber::EnvFilter;

use crate::config::LogFormat;

/// Installs the global subscriber. A bad filter falls back to `info` and says so.
pub fn init(filter: &str, format: LogFormat) {
    let (env_filter, bad_filter) = match EnvFilter::try_new(filter) {
        Ok(env_filter) => (env_filter, None),
        Err(err) => (EnvFilter::new("info"), Some(err)),
    };
    let builder = tracing_subscriber::fmt()
        .with_env_filter(env_filter)
        .with_writer(std::io::stderr);
    let installed = match format {
        LogFormat::Json => builder
            .json()
            .flatten_event(true)
            .with_current_span(true)
            .try_init(),
        LogFormat::Text => builder.try_init(),
    };
    if installed.is_ok() {
        if let Some(err) = bad_filter {
            tracing::warn!(error = %err, "HOOKLOG_LOG is not a valid filter; using `info`");
        }
    }
}
