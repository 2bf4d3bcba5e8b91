//! `ConnectorInstance`: one GitHub App installation as hooklog knows it (id
//! `github-installation-<installation id>`). It owns the installation's lifecycle, which
//! repositories it grants, whether new repositories are tracked automatically, and which targets
//! hang off it, so that a deletion or a lost repository can cascade to exactly those targets.

mod aggregate;
mod command;
mod error;
mod event;
mod services;
#[cfg(test)]
mod tests;

pub use aggregate::{ConnectorInstance, InstanceStatus};
pub use command::InstanceCommand;
pub use error::InstanceError;
pub use event::{AttachedTarget, InstanceEvent, Repository};
pub use services::InstanceServices;
