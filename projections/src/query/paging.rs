//! Cursor paging: a page holds at most `limit` items and, when more follow, the cursor to pass
//! for the next page (the ordering key of its last item: a stream position, or a path).

use serde::Serialize;
use utoipa::ToSchema;

use super::QueryError;

pub const DEFAULT_LIMIT: u32 = 50;
pub const MAX_LIMIT: u32 = 500;

#[derive(Debug, Clone, Default)]
pub struct PageRequest {
    pub cursor: Option<String>,
    /// Items per page; `None` is `DEFAULT_LIMIT`.
    pub limit: Option<u32>,
}

impl PageRequest {
    /// The page size, checked.
    pub(super) fn limit(&self) -> Result<i64, QueryError> {
        let limit = self.limit.unwrap_or(DEFAULT_LIMIT);
        if !(1..=MAX_LIMIT).contains(&limit) {
            return Err(QueryError::BadFilter(format!(
                "limit must be between 1 and {MAX_LIMIT}, not {limit}"
            )));
        }
        Ok(i64::from(limit))
    }

    /// The key to start after (a stream position) and the page size, checked.
    pub(super) fn bounds(&self) -> Result<(i64, i64), QueryError> {
        let limit = self.limit()?;
        let after = match &self.cursor {
            None => 0,
            Some(cursor) => cursor
                .parse::<i64>()
                .ok()
                .filter(|n| *n >= 0)
                .ok_or_else(|| {
                    QueryError::BadCursor(format!(
                        "cursor {cursor:?} is not one this API returned; pass `next_cursor` of the previous page"
                    ))
                })?,
        };
        Ok((after, limit))
    }

    /// For a list newest first: the key to continue below (every key on the first page) and
    /// the page size, checked.
    pub(super) fn bounds_descending(&self) -> Result<(i64, i64), QueryError> {
        let (after, limit) = self.bounds()?;
        let before = match self.cursor {
            Some(_) => after,
            None => i64::MAX,
        };
        Ok((before, limit))
    }
}

#[derive(Debug, Serialize, ToSchema)]
pub struct Page<T> {
    pub items: Vec<T>,
    /// Pass as `cursor` for the next page; absent on the last page.
    pub next_cursor: Option<String>,
}

impl<T> Page<T> {
    /// `rows` were fetched with `limit + 1`: the extra row only says that more follow. `key` is
    /// the ordering key the cursor carries (a stream position, or a path).
    pub(super) fn of<K: ToString>(mut rows: Vec<T>, limit: i64, key: impl Fn(&T) -> K) -> Self {
        let more = rows.len() as i64 > limit;
        rows.truncate(limit as usize);
        let next_cursor = more
            .then(|| rows.last().map(|row| key(row).to_string()))
            .flatten();
        Self {
            items: rows,
            next_cursor,
        }
    }
}
