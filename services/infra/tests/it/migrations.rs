//! Migrations are never edited once on main: a database migrated earlier records each applied
//! migration's SHA-384, and sqlx refuses to start against one whose file changed since. This
//! test pins every migration's checksum (`migrations.sha384`, one `version sha384 description`
//! line each). A new migration is added to the list with its checksum; a changed checksum or a
//! missing migration fails, naming the file, so an edit is caught before it lands.

use std::collections::BTreeMap;

use hooklog_infra::postgres::MIGRATOR;

const PINNED: &str = include_str!("migrations.sha384");

fn pinned() -> BTreeMap<i64, (String, String)> {
    PINNED
        .lines()
        .filter(|line| !line.trim().is_empty())
        .map(|line| {
            let mut fields = line.split_whitespace();
            let version = fields.next().and_then(|v| v.parse().ok());
            let checksum = fields.next().map(str::to_owned);
            let description = fields.next().map(str::to_owned);
            match (version, checksum, description) {
                (Some(v), Some(c), Some(d)) => (v, (c, d)),
                _ => panic!("migrations.sha384: malformed line {line:?}"),
            }
        })
        .collect()
}

#[test]
fn migrations_on_main_are_never_edited_renamed_or_removed() {
    let pinned = pinned();
    let mut problems = Vec::new();
    for migration in MIGRATOR.iter() {
        let checksum = hex(&migration.checksum);
        match pinned.get(&migration.version) {
            None => problems.push(format!(
                "migration {} ({}) is new: add `{} {checksum} {}` to migrations.sha384",
                migration.version, migration.description, migration.version, migration.description
            )),
            Some((pinned_sum, _)) if *pinned_sum != checksum => problems.push(format!(
                "migration {} ({}) was edited after it landed: restore it and add a new migration",
                migration.version, migration.description
            )),
            Some((_, description)) if *description != migration.description.replace(' ', "_") => {
                problems.push(format!(
                    "migration {} was renamed from {description} to {}: restore its name",
                    migration.version, migration.description
                ))
            }
            Some(_) => {}
        }
    }
    for (version, (_, description)) in &pinned {
        if !MIGRATOR.iter().any(|m| m.version == *version) {
            problems.push(format!(
                "migration {version} ({description}) was removed: restore it"
            ));
        }
    }
    assert!(problems.is_empty(), "{}", problems.join("\n"));
}

fn hex(bytes: &[u8]) -> String {
    bytes.iter().map(|b| format!("{b:02x}")).collect()
}
