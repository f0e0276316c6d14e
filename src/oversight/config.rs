//! The operations sections of the configuration file: `[audit]`, `[admin]` and `[metrics]`.

use std::path::PathBuf;

use crate::admin::config::{AdminConfig, RawAdmin};
use crate::audit::{AuditConfig, RawAudit};

use super::metrics::{MetricsConfig, RawMetrics};

/// The checked operations settings.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Operations {
    pub audit: AuditConfig,
    pub admin: AdminConfig,
    pub metrics: MetricsConfig,
}

impl Operations {
    /// Checks the three sections; the error names the key and what would be valid.
    pub fn from_raw(
        audit: RawAudit,
        admin: RawAdmin,
        metrics: RawMetrics,
        resolve: impl Fn(PathBuf) -> PathBuf,
    ) -> Result<Operations, (&'static str, String)> {
        Ok(Operations {
            audit: AuditConfig::from_raw(audit, &resolve)?,
            admin: AdminConfig::from_raw(admin, &resolve)?,
            metrics: MetricsConfig::from_raw(metrics),
        })
    }
}
