//! Secrets live in [`trends_common::secret`], shared with the API (admin token, webhook key).

pub use trends_common::secret::*;
