//! `hooklog deliver`: sign a payload file and post it like GitHub, for trying hooklog out.

use std::process::ExitCode;

use anyhow::Context;
use hooklog_domain::github::{Signature, WebhookSecret};
use hooklog_infra::config::Settings;
use secrecy::ExposeSecret;

use crate::cli::DeliverArgs;

pub async fn run(settings: &Settings, args: DeliverArgs) -> anyhow::Result<ExitCode> {
    let secret = match (&args.secret, &settings.github_webhook_secret) {
        (Some(secret), _) => WebhookSecret::new(secret),
        (None, Some(secret)) => WebhookSecret::new(secret.expose_secret()),
        (None, None) => anyhow::bail!(
            "no secret to sign with: pass --secret or set HOOKLOG_GITHUB_WEBHOOK_SECRET"
        ),
    };
    let body = tokio::fs::read(&args.payload)
        .await
        .with_context(|| format!("cannot read payload file {}", args.payload.display()))?;
    let url = args.url.clone().unwrap_or_else(|| {
        format!(
            "http://{}{}",
            settings.ingress_addr,
            hooklog_ingress::WEBHOOK_PATH
        )
    });
    let delivery_id = args
        .delivery_id
        .clone()
        .unwrap_or_else(|| uuid::Uuid::new_v4().to_string());
    let signature = Signature::sign(&secret, &body);

    let response = hooklog_infra::http::client()
        .context("cannot build the HTTP client")?
        .post(&url)
        .header("User-Agent", "GitHub-Hookshot/hooklog-deliver")
        .header("Content-Type", "application/json")
        .header("X-GitHub-Event", &args.event)
        .header("X-GitHub-Delivery", &delivery_id)
        .header("X-Hub-Signature-256", signature.to_string())
        .body(body)
        .send()
        .await
        .with_context(|| format!("cannot post to {url}"))?;
    let status = response.status();
    let text = response.text().await.unwrap_or_default();
    println!("{}", status.as_u16());
    println!("{text}");
    Ok(if status.is_success() {
        ExitCode::SUCCESS
    } else {
        ExitCode::FAILURE
    })
}
