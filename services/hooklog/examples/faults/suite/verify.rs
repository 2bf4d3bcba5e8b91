//! hooklog's own verifiers, run as an operator would once the system has settled:
//! `hooklog projections rebuild --verify` (every read model equals a rebuild from sequence 1)
//! and `hooklog audit verify` (both streams immutable and contiguous, bodies and webhook
//! signatures, every checkpoint signed and consistent, the stored tiles, the event store equal
//! to `HOOKLOG_EVENTS`).

use serde_json::{json, Value};

use super::checks::sample;
use super::report::Report;
use super::stack::{text, Stack, SECRET};

pub fn run(stack: &Stack, report: &mut Report) -> anyhow::Result<()> {
    let rebuild = stack
        .cli()
        .args(["projections", "rebuild", "--verify"])
        .output()?;
    report.rebuild = summary(&rebuild, "equal to a rebuild from sequence 1");
    if !rebuild.status.success() {
        report.findings.push(format!(
            "PROJECTION DIFFERS: hooklog projections rebuild --verify failed ({}): {}",
            rebuild.status,
            differing_tables(&text(&rebuild.stdout), &text(&rebuild.stderr))
        ));
    }

    let audit = stack
        .cli()
        .args(["audit", "verify", "--public-key"])
        .arg(stack.verifier_file())
        .args(["--secret", SECRET])
        .output()?;
    let said = text(&audit.stdout);
    let oks = said.lines().filter(|l| l.starts_with("ok")).count();
    report.audit = summary(&audit, &format!("{oks} checks ok"));
    if !audit.status.success() {
        let found: Vec<String> = said
            .lines()
            .filter(|l| l.starts_with("FINDING"))
            .map(|l| l.chars().take(300).collect())
            .collect();
        let what = match found.is_empty() {
            true => text(&audit.stderr).trim().to_owned(),
            false => format!("{} findings: {}", found.len(), sample(&found)),
        };
        report.findings.push(format!(
            "AUDIT: hooklog audit verify failed ({}): {what}",
            audit.status
        ));
    }
    Ok(())
}

/// The tables `projections rebuild --verify` found different, from its JSON reports.
fn differing_tables(stdout: &str, stderr: &str) -> String {
    let mut differing = vec![];
    for line in stdout.lines() {
        let Ok(report) = serde_json::from_str::<Value>(line) else {
            continue;
        };
        for table in report["tables"].as_array().into_iter().flatten() {
            if table["equal"] != json!(true) {
                differing.push(format!(
                    "{}.{}: live {} rows ({}), rebuilt {} rows ({})",
                    report["projection"].as_str().unwrap_or("?"),
                    table["table"].as_str().unwrap_or("?"),
                    table["live"]["rows"],
                    table["live"]["digest"].as_str().unwrap_or(""),
                    table["rebuilt"]["rows"],
                    table["rebuilt"]["digest"].as_str().unwrap_or(""),
                ));
            }
        }
    }
    match differing.is_empty() {
        true => stderr.trim().to_owned(),
        false => differing.join("; "),
    }
}

fn summary(output: &std::process::Output, ok: &str) -> String {
    match output.status.success() {
        true => format!("{ok} (exit 0)"),
        false => format!("FAILED ({})", output.status),
    }
}
