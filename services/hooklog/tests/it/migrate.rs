//! `hooklog migrate` creates the database when missing and owns the postgres-es `events` table.

use sqlx::Row;

use crate::support::{fresh_database_url, hooklog, run, text};

#[tokio::test]
async fn migrate_creates_the_database_and_the_postgres_es_events_table_and_can_run_again() {
    let dir = tempfile::tempdir().unwrap();
    let (url, _name) = fresh_database_url();
    for _ in 0..2 {
        let output = run(hooklog(dir.path())
            .arg("migrate")
            .env("HOOKLOG_DATABASE_URL", &url));
        assert!(output.status.success(), "{}", text(&output.stderr));
    }

    let pool = sqlx::PgPool::connect(&url).await.expect("database exists");
    let columns: Vec<(String, String, String)> = sqlx::query(
        "SELECT column_name, data_type, is_nullable FROM information_schema.columns \
         WHERE table_name = 'events' ORDER BY ordinal_position",
    )
    .fetch_all(&pool)
    .await
    .unwrap()
    .into_iter()
    .map(|row| (row.get(0), row.get(1), row.get(2)))
    .collect();
    let expected = [
        ("aggregate_type", "text"),
        ("aggregate_id", "text"),
        ("sequence", "bigint"),
        ("event_type", "text"),
        ("event_version", "text"),
        ("payload", "json"),
        ("metadata", "json"),
    ];
    assert_eq!(columns.len(), expected.len(), "{columns:?}");
    for ((name, data_type, nullable), (want_name, want_type)) in columns.iter().zip(expected) {
        assert_eq!(
            (name.as_str(), data_type.as_str(), nullable.as_str()),
            (want_name, want_type, "NO")
        );
    }
    let key: Vec<String> = sqlx::query_scalar(
        "SELECT a.attname FROM pg_index i JOIN pg_attribute a ON a.attrelid = i.indrelid AND a.attnum = ANY(i.indkey) \
         WHERE i.indrelid = 'events'::regclass AND i.indisprimary ORDER BY array_position(i.indkey, a.attnum)",
    )
    .fetch_all(&pool)
    .await
    .unwrap();
    assert_eq!(key, ["aggregate_type", "aggregate_id", "sequence"]);

    // Two writers of the same aggregate and sequence conflict: the optimistic lock postgres-es relies on.
    let insert =
        "INSERT INTO events VALUES ('ConnectorTarget', 't-1', 1, 'Tracked', '1.0', '{}', '{}')";
    sqlx::query(insert).execute(&pool).await.unwrap();
    assert!(sqlx::query(insert).execute(&pool).await.is_err());
}
