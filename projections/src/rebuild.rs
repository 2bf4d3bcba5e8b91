//! Rebuild (placeholder until the drift check lands).
