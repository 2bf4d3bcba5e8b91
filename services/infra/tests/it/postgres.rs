//! The PostgreSQL pool's sessions.

use hooklog_infra::postgres;
use hooklog_infra::testing::fresh_database_url;

/// A statement first run while its table is empty, then again once the table holds 100,000 rows,
/// is planned for the table as it is: with PostgreSQL's default, the session would keep the
/// generic plan it cached while the table was empty (a sequential scan) until the next
/// `ANALYZE`, which a server without autovacuum never runs.
#[tokio::test]
async fn a_statement_is_planned_for_the_table_as_it_is_now_not_as_it_was_when_first_run() {
    let (url, _) = fresh_database_url();
    let pool = postgres::connect_and_migrate(&url).await.expect("database");
    let mut conn = pool.acquire().await.expect("a connection");
    // Created in a transaction of its own, as migrations do: its commit invalidates cached plans.
    sqlx::raw_sql(
        "CREATE TABLE grows (key text, n bigint); CREATE INDEX grows_key ON grows (key, n)",
    )
    .execute(&mut *conn)
    .await
    .expect("table");
    sqlx::raw_sql(
        "PREPARE lookup(text[]) AS SELECT g.key, min(g.n) FROM unnest($1) AS ids(id) \
           JOIN grows g ON g.key = ids.id GROUP BY g.key; \
         EXECUTE lookup('{a,b}'); EXECUTE lookup('{a,b}'); EXECUTE lookup('{a,b}'); \
         EXECUTE lookup('{a,b}'); EXECUTE lookup('{a,b}'); EXECUTE lookup('{a,b}'); \
         EXECUTE lookup('{a,b}'); \
         INSERT INTO grows SELECT 'key-' || i, i FROM generate_series(1, 100000) AS i;",
    )
    .execute(&mut *conn)
    .await
    .expect("set-up");
    let plan: Vec<String> = sqlx::query_scalar("EXPLAIN EXECUTE lookup('{key-7,key-8}')")
        .fetch_all(&mut *conn)
        .await
        .expect("plan");
    let plan = plan.join("\n");
    assert!(
        plan.contains("Index") && !plan.contains("Seq Scan on grows"),
        "the grown table is read through its index:\n{plan}"
    );
}
