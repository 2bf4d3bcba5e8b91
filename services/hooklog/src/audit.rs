//! `hooklog audit keygen`: the signing key of the audit checkpoints, written where only its
//! owner can read it, and the verifier key auditors check checkpoints with.

use std::process::ExitCode;

use anyhow::Context;
use hooklog_audit::note::is_valid_name;
use hooklog_audit::SigningKey;
use hooklog_sealer::key::write_new_key_file;

use crate::cli::{AuditCommand, KeygenArgs};

pub fn run(command: AuditCommand) -> anyhow::Result<ExitCode> {
    match command {
        AuditCommand::Keygen(args) => keygen(args),
    }
}

fn keygen(args: KeygenArgs) -> anyhow::Result<ExitCode> {
    if !is_valid_name(&args.name) {
        eprintln!(
            "hooklog: --name: {:?} is not a key name (non-empty, no spaces and no `+`)",
            args.name
        );
        return Ok(ExitCode::from(2));
    }
    let key = SigningKey::generate(&args.name).context("cannot generate a key")?;
    match write_new_key_file(&args.out, &key) {
        Ok(()) => {}
        Err(err) if err.kind() == std::io::ErrorKind::AlreadyExists => {
            eprintln!(
                "hooklog: --out: {} already exists; hooklog never overwrites a signing key",
                args.out.display()
            );
            return Ok(ExitCode::from(2));
        }
        Err(err) => {
            return Err(err).with_context(|| format!("cannot write {}", args.out.display()))
        }
    }
    println!("{}", key.verifier());
    Ok(ExitCode::SUCCESS)
}
