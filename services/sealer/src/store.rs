//! The sealer's tables (`migrations/…_audit.sql`): each log's tree size and right edge in
//! `audit_trees`, its hash tiles in `audit_tiles`. The admin API and the audit tools read tiles
//! from here; only the sealer writes.

use std::collections::BTreeSet;

use hooklog_audit::frontier::{partial_tiles_for_size, FrontierError};
use hooklog_audit::tree::HASH_SIZE;
use hooklog_audit::{Frontier, Log, Tile, TileLevel};
use sqlx::PgPool;

/// Why the store could not be read or written.
#[derive(Debug, thiserror::Error)]
pub enum StoreError {
    #[error(transparent)]
    Database(#[from] sqlx::Error),
    /// The stored right edge does not fit the stored size: the row was edited.
    #[error("the stored tree of the {log} log is damaged: {source}")]
    Damaged {
        log: &'static str,
        source: FrontierError,
    },
    /// Another sealer moved the tree since this one read it.
    #[error("the {log} tree is no longer at size {expected}: another sealer is writing it")]
    Moved { log: &'static str, expected: u64 },
}

fn to_i64(value: u64) -> i64 {
    i64::try_from(value).expect("sizes and indexes stay below 2^63")
}

/// The log's tree as the sealer last committed it (empty before the first commit).
pub async fn load_tree(pool: &PgPool, log: Log) -> Result<Frontier, StoreError> {
    let row: Option<(i64, Vec<u8>)> =
        sqlx::query_as("SELECT size, frontier FROM audit_trees WHERE log = $1")
            .bind(log.name())
            .fetch_optional(pool)
            .await?;
    let Some((size, bytes)) = row else {
        return Ok(Frontier::new());
    };
    let size = size as u64;
    let mut rest = bytes.as_slice();
    let mut tiles = Vec::new();
    for tile in partial_tiles_for_size(size) {
        let len = usize::from(tile.width) * HASH_SIZE;
        let (data, tail) = rest.split_at_checked(len).unwrap_or((rest, &[]));
        tiles.push((tile, data));
        rest = tail;
    }
    Frontier::from_partial_tiles(size, tiles).map_err(|source| StoreError::Damaged {
        log: log.name(),
        source,
    })
}

/// Commits the tree grown from `from_size` to `frontier.size()`: the tiles that filled on the
/// way and the new right edge, in one transaction, and only if the stored tree is still at
/// `from_size` (so two sealers can never interleave).
pub async fn commit(
    pool: &PgPool,
    log: Log,
    from_size: u64,
    frontier: &Frontier,
    full: &[(Tile, Vec<u8>)],
) -> Result<(), StoreError> {
    let edge: Vec<u8> = frontier
        .partial_tiles()
        .into_iter()
        .flat_map(|(_, bytes)| bytes)
        .collect();
    let mut tx = pool.begin().await?;
    insert_tiles(&mut tx, log, full).await?;
    let moved = sqlx::query(
        "INSERT INTO audit_trees (log, size, frontier) VALUES ($1, $2, $3)
         ON CONFLICT (log) DO UPDATE SET size = EXCLUDED.size, frontier = EXCLUDED.frontier,
             updated_at = now()
         WHERE audit_trees.size = $4",
    )
    .bind(log.name())
    .bind(to_i64(frontier.size()))
    .bind(&edge)
    .bind(to_i64(from_size))
    .execute(&mut *tx)
    .await?
    .rows_affected();
    if moved != 1 {
        return Err(StoreError::Moved {
            log: log.name(),
            expected: from_size,
        });
    }
    tx.commit().await?;
    Ok(())
}

/// Stores tiles that are not stored yet (the partial tiles of a size about to be signed).
pub async fn store_tiles(
    pool: &PgPool,
    log: Log,
    tiles: &[(Tile, Vec<u8>)],
) -> Result<(), StoreError> {
    let mut conn = pool.acquire().await?;
    insert_tiles(&mut conn, log, tiles).await
}

async fn insert_tiles(
    conn: &mut sqlx::PgConnection,
    log: Log,
    tiles: &[(Tile, Vec<u8>)],
) -> Result<(), StoreError> {
    if tiles.is_empty() {
        return Ok(());
    }
    let mut levels = Vec::with_capacity(tiles.len());
    let mut indexes = Vec::with_capacity(tiles.len());
    let mut widths = Vec::with_capacity(tiles.len());
    let mut data = Vec::with_capacity(tiles.len());
    for (tile, bytes) in tiles {
        let TileLevel::Hashes(level) = tile.level else {
            continue;
        };
        levels.push(i16::from(level));
        indexes.push(to_i64(tile.index));
        widths.push(tile.width as i16);
        data.push(bytes.as_slice());
    }
    sqlx::query(
        "INSERT INTO audit_tiles (log, level, idx, width, data)
         SELECT $1, * FROM UNNEST($2::smallint[], $3::bigint[], $4::smallint[], $5::bytea[])
         ON CONFLICT DO NOTHING",
    )
    .bind(log.name())
    .bind(&levels)
    .bind(&indexes)
    .bind(&widths)
    .bind(&data)
    .execute(conn)
    .await?;
    Ok(())
}

/// The stored size of the log's tree (0 before the sealer's first commit).
pub async fn tree_size(pool: &PgPool, log: Log) -> Result<u64, StoreError> {
    let size: Option<i64> = sqlx::query_scalar("SELECT size FROM audit_trees WHERE log = $1")
        .bind(log.name())
        .fetch_optional(pool)
        .await?;
    Ok(size.unwrap_or(0) as u64)
}

/// One hash tile's bytes, if stored.
pub async fn read_tile(pool: &PgPool, log: Log, tile: Tile) -> Result<Option<Vec<u8>>, StoreError> {
    let TileLevel::Hashes(level) = tile.level else {
        return Ok(None);
    };
    Ok(sqlx::query_scalar(
        "SELECT data FROM audit_tiles WHERE log = $1 AND level = $2 AND idx = $3 AND width = $4",
    )
    .bind(log.name())
    .bind(i16::from(level))
    .bind(to_i64(tile.index))
    .bind(tile.width as i16)
    .fetch_optional(pool)
    .await?)
}

/// The stored ones among `tiles`, with their bytes.
pub async fn read_tiles(
    pool: &PgPool,
    log: Log,
    tiles: &BTreeSet<Tile>,
) -> Result<Vec<(Tile, Vec<u8>)>, StoreError> {
    let (mut levels, mut indexes, mut widths) = (Vec::new(), Vec::new(), Vec::new());
    for tile in tiles {
        if let TileLevel::Hashes(level) = tile.level {
            levels.push(i16::from(level));
            indexes.push(to_i64(tile.index));
            widths.push(tile.width as i16);
        }
    }
    let rows: Vec<(i16, i64, i16, Vec<u8>)> = sqlx::query_as(
        "SELECT t.level, t.idx, t.width, t.data
         FROM UNNEST($2::smallint[], $3::bigint[], $4::smallint[]) AS w(level, idx, width)
         JOIN audit_tiles t ON t.log = $1 AND t.level = w.level AND t.idx = w.idx
             AND t.width = w.width",
    )
    .bind(log.name())
    .bind(&levels)
    .bind(&indexes)
    .bind(&widths)
    .fetch_all(pool)
    .await?;
    Ok(rows
        .into_iter()
        .map(|(level, index, width, data)| {
            (Tile::hashes(level as u8, index as u64, width as u16), data)
        })
        .collect())
}
