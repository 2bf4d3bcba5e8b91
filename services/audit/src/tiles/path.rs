//! Tile paths, written and parsed, in C2SP's form and in Go's.
//!
//! C2SP tlog-tiles: `tile/<L>/<N>[.p/<W>]` and `tile/entries/<N>[.p/<W>]`. `<L>` is 0 to 63 and
//! `<W>` 1 to 255, both decimal without leading zeros; `<N>` is written in groups of three
//! digits, all but the last prefixed with `x` (1234067 is `x001/x234/067`), so tiles can sit in
//! a filesystem without a file and a directory sharing a name. Go's golang.org/x/mod/sumdb/tlog
//! writes the same tiles with their height after `tile/` and `data` for entries:
//! `tile/8/<L>/<N>[.p/<W>]`, `tile/8/data/<N>[.p/<W>]`. Parsing accepts only the canonical
//! spelling (no leading `x000` group, no leading zeros, no `.p/256`), so one tile has one path.

use super::{Tile, TileLevel, TILE_HEIGHT, TILE_WIDTH};

/// Why a path is not a tile path.
#[derive(Debug, Clone, PartialEq, Eq, thiserror::Error)]
pub enum TilePathError {
    /// It does not start with `tile/`, or has too few elements.
    #[error("{0:?} is not a tile path")]
    NotATilePath(String),
    /// The level is not `entries` (`data` in Go's form) or a decimal from 0 to 63.
    #[error("{0:?} has a malformed tile level")]
    BadLevel(String),
    /// The index is not canonical groups of three digits, or does not fit in a u64.
    #[error("{0:?} has a malformed tile index")]
    BadIndex(String),
    /// The width after `.p/` is not a decimal from 1 to 255.
    #[error("{0:?} has a malformed partial-tile width")]
    BadWidth(String),
    /// A Go path for tiles of another height than 8.
    #[error("{0:?} is not for tiles of height 8")]
    WrongHeight(String),
}

impl Tile {
    /// The C2SP path: `tile/<L>/<N>[.p/<W>]` or `tile/entries/<N>[.p/<W>]`.
    pub fn path(&self) -> String {
        let level = match self.level {
            TileLevel::Hashes(level) => level.to_string(),
            TileLevel::Entries => "entries".to_string(),
        };
        format!("tile/{level}/{}", self.index_and_width())
    }

    /// Go's path: `tile/8/<L>/<N>[.p/<W>]` or `tile/8/data/<N>[.p/<W>]`.
    pub fn go_path(&self) -> String {
        let level = match self.level {
            TileLevel::Hashes(level) => level.to_string(),
            TileLevel::Entries => "data".to_string(),
        };
        format!("tile/{TILE_HEIGHT}/{level}/{}", self.index_and_width())
    }

    /// A tile from its C2SP path.
    pub fn parse_path(path: &str) -> Result<Tile, TilePathError> {
        let rest = path
            .strip_prefix("tile/")
            .ok_or_else(|| TilePathError::NotATilePath(path.into()))?;
        let (level, rest) = rest
            .split_once('/')
            .ok_or_else(|| TilePathError::NotATilePath(path.into()))?;
        parse_tail(path, level, "entries", rest)
    }

    /// A tile from Go's path; the height must be 8.
    pub fn parse_go_path(path: &str) -> Result<Tile, TilePathError> {
        let not_a_tile = || TilePathError::NotATilePath(path.into());
        let rest = path.strip_prefix("tile/").ok_or_else(not_a_tile)?;
        let (height, rest) = rest.split_once('/').ok_or_else(not_a_tile)?;
        if height != TILE_HEIGHT.to_string() {
            return Err(TilePathError::WrongHeight(path.into()));
        }
        let (level, rest) = rest.split_once('/').ok_or_else(not_a_tile)?;
        parse_tail(path, level, "data", rest)
    }

    fn index_and_width(&self) -> String {
        let digits = self.index.to_string();
        let padded = format!("{}{digits}", "0".repeat((3 - digits.len() % 3) % 3));
        let groups: Vec<&str> = (0..padded.len() / 3)
            .map(|g| &padded[g * 3..g * 3 + 3])
            .collect();
        let mut out = String::new();
        for group in &groups[..groups.len() - 1] {
            out.push('x');
            out.push_str(group);
            out.push('/');
        }
        out.push_str(groups[groups.len() - 1]);
        if !self.is_full() {
            out.push_str(&format!(".p/{}", self.width));
        }
        out
    }
}

/// A C2SP path in Go's form.
pub fn c2sp_to_go_path(path: &str) -> Result<String, TilePathError> {
    Ok(Tile::parse_path(path)?.go_path())
}

/// A Go path in C2SP's form.
pub fn go_to_c2sp_path(path: &str) -> Result<String, TilePathError> {
    Ok(Tile::parse_go_path(path)?.path())
}

/// The level, index and width of a path whose level element is `level` and the rest `rest`.
fn parse_tail(path: &str, level: &str, entries: &str, rest: &str) -> Result<Tile, TilePathError> {
    let level = if level == entries {
        TileLevel::Entries
    } else {
        match decimal(level) {
            Some(l) if l <= 63 => TileLevel::Hashes(l as u8),
            _ => return Err(TilePathError::BadLevel(path.into())),
        }
    };
    let (index, width) = match rest.split_once(".p/") {
        None => (rest, TILE_WIDTH),
        Some((index, width)) => match decimal(width) {
            Some(w) if (1..u64::from(TILE_WIDTH)).contains(&w) => (index, w as u16),
            _ => return Err(TilePathError::BadWidth(path.into())),
        },
    };
    let index = parse_index(index).ok_or_else(|| TilePathError::BadIndex(path.into()))?;
    Ok(Tile {
        level,
        index,
        width,
    })
}

/// `x001/x234/067` as 1234067; `None` unless canonical.
fn parse_index(text: &str) -> Option<u64> {
    let groups: Vec<&str> = text.split('/').collect();
    let (last, leading) = groups.split_last()?;
    if leading.first() == Some(&"x000") {
        return None;
    }
    let mut value: u64 = 0;
    for group in leading
        .iter()
        .map(|g| g.strip_prefix('x'))
        .chain([Some(*last)])
    {
        let group = group.filter(|g| g.len() == 3 && g.bytes().all(|b| b.is_ascii_digit()))?;
        let digits: u64 = group.parse().ok()?;
        value = value.checked_mul(1000)?.checked_add(digits)?;
    }
    Some(value)
}

/// A decimal without sign or leading zeros.
fn decimal(text: &str) -> Option<u64> {
    let canonical = !text.is_empty()
        && text.bytes().all(|b| b.is_ascii_digit())
        && (text == "0" || !text.starts_with('0'));
    canonical.then(|| text.parse().ok()).flatten()
}
