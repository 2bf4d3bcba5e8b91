//! What `ConnectorTarget` needs from outside: only the time, so its events carry the
//! requested/started/completed timestamps that sync runs report, and tests can fix it.

use std::sync::Arc;

use crate::clock::{Clock, SystemClock};

#[derive(Clone)]
pub struct TargetServices {
    pub clock: Arc<dyn Clock>,
}

impl Default for TargetServices {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
        }
    }
}
