//! HTTP clients, all on one TLS crypto provider: ring, which async-nats, sqlx and jsonwebtoken use
//! as well, so the tree builds one cryptography library (no aws-lc-rs, no C build through cmake).
//! reqwest is built without a provider of its own and takes the process's default, which
//! [`client_builder`] installs before it hands out a builder; every client in hooklog, its tests
//! and its benchmarks is made through it.

use std::sync::Once;

/// Installs ring as the process's default rustls provider, once. Another default installed
/// before (by an embedding program) is left in place.
pub fn install_crypto_provider() {
    static INSTALL: Once = Once::new();
    INSTALL.call_once(|| {
        // `Err` only when a default is already installed: that one serves as well.
        let _ = rustls::crypto::ring::default_provider().install_default();
    });
}

/// A reqwest client builder, with the crypto provider installed. Pooled connections idle for 4 s
/// are dropped: hooklog's own listeners close a connection that sends no request head within
/// `HOOKLOG_HTTP_HEADER_READ_TIMEOUT` (5 s by default), and a pooled connection reused just as the
/// server closes it fails its request.
pub fn client_builder() -> reqwest::ClientBuilder {
    install_crypto_provider();
    reqwest::Client::builder().pool_idle_timeout(std::time::Duration::from_secs(4))
}

/// An error and its sources, `outer: inner: innermost`. Callers strip the URL first
/// (`without_url`) when it may carry a token (after a redirect, a download host's may).
pub fn error_chain(err: &reqwest::Error) -> String {
    use std::error::Error as _;
    let mut text = err.to_string();
    let mut source = err.source();
    while let Some(inner) = source {
        text.push_str(": ");
        text.push_str(&inner.to_string());
        source = inner.source();
    }
    text
}

/// A reqwest client with the defaults.
pub fn client() -> Result<reqwest::Client, reqwest::Error> {
    client_builder().build()
}

#[cfg(test)]
mod tests {
    #[test]
    fn a_client_builds_on_the_provider_it_installs_and_that_is_ring() {
        // Without a provider installed, building a client panics (reqwest has none of its own).
        super::client().expect("a client");
        let installed = rustls::crypto::CryptoProvider::get_default().expect("a default provider");
        let ring = rustls::crypto::ring::default_provider();
        assert_eq!(
            format!("{:?}", installed.key_provider),
            format!("{:?}", ring.key_provider)
        );
    }
}
