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

#[cfg(test)]
mod tests {
    use std::path::Path;

    use crate::config::Config;

    fn parse(text: &str) -> Result<Config, String> {
        Config::parse(text, "t.toml", Path::new("/etc/vouch")).map_err(|e| e.to_string())
    }

    #[test]
    fn operations_sections_are_read_with_paths_from_the_file() {
        let config = parse(
            "[audit]\nmax_file_bytes = 8192\ndir = \"trail\"\n\
             [admin]\ngroup = \"vouch-admin\"\nallow_uids = [1000]\n\
             [metrics]\nlisten = \"127.0.0.1:9464\"\n",
        )
        .expect("valid");
        let ops = &config.operations;
        assert_eq!(ops.audit.max_file_bytes, 8192);
        assert_eq!(
            ops.audit.dir.as_deref(),
            Some(Path::new("/etc/vouch/trail"))
        );
        assert_eq!(ops.admin.group.as_deref(), Some("vouch-admin"));
        assert_eq!(ops.admin.allow_uids, [1000]);
        assert_eq!(ops.metrics.listen.map(|a| a.port()), Some(9464));
    }

    #[test]
    fn defaults_keep_metrics_off_and_the_trail_in_the_state_directory() {
        let config = parse("").expect("valid");
        assert_eq!(config.operations.metrics.listen, None);
        let dir = config.operations.audit.dir_in(Path::new("/var/lib/vouch"));
        assert_eq!(dir, Path::new("/var/lib/vouch/audit"));
    }

    #[test]
    fn bad_operations_settings_name_the_key() {
        let tiny = parse("[audit]\nmax_file_bytes = 10\n").expect_err("too small");
        assert!(tiny.contains("audit.max_file_bytes"), "{tiny}");
        let group = parse("[admin]\ngroup = \"a:b\"\n").expect_err("not a name");
        assert!(group.contains("admin.group"), "{group}");
        let unknown = parse("[metrics]\nport = 1\n").expect_err("unknown key");
        assert!(unknown.contains("port"), "{unknown}");
        let listen = parse("[metrics]\nlisten = \"nowhere\"\n").expect_err("not an address");
        assert!(listen.contains("metrics"), "{listen}");
    }
}
