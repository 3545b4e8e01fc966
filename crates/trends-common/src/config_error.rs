//! The error of a configuration a service refuses. In a module of its own so that the
//! sections that validate themselves ([`crate::settings`]) and the loader ([`crate::config`],
//! which knows the shared sections' defaults) both depend on it and not on each other.

/// A configuration that cannot be used. The message names the offending key.
#[derive(Debug, thiserror::Error)]
#[error("invalid configuration: {0}")]
pub struct ConfigError(pub String);
