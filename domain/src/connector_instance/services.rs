//! What `ConnectorInstance` needs from outside: only the time, so its events say when each
//! decision was taken and tests can fix it.

use std::sync::Arc;

use crate::clock::{Clock, SystemClock};

#[derive(Clone)]
pub struct InstanceServices {
    pub clock: Arc<dyn Clock>,
}

impl Default for InstanceServices {
    fn default() -> Self {
        Self {
            clock: Arc::new(SystemClock),
        }
    }
}
