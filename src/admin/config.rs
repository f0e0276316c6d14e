//! `[admin]` in the configuration file: where the admin socket is and who may use it.

use std::path::PathBuf;

use serde::Deserialize;

/// The socket's file name in the runtime directory.
pub const SOCKET_NAME: &str = "admin.sock";

#[derive(Debug, Clone, Deserialize, Default)]
#[serde(deny_unknown_fields)]
pub struct RawAdmin {
    socket: Option<PathBuf>,
    group: Option<String>,
    allow_uids: Option<Vec<u32>>,
    allow_gids: Option<Vec<u32>>,
}

/// The checked `[admin]` section.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct AdminConfig {
    /// The socket's path; by default `admin.sock` in `$RUNTIME_DIRECTORY`, else in the state
    /// directory.
    pub socket: Option<PathBuf>,
    /// The group the socket file is given, so that its members can open it (mode 0660).
    pub group: Option<String>,
    /// Peers allowed by user ID, besides root and the appliance's own user.
    pub allow_uids: Vec<u32>,
    /// Peers allowed by primary group ID, besides the socket's group.
    pub allow_gids: Vec<u32>,
}

impl AdminConfig {
    pub fn from_raw(
        raw: RawAdmin,
        resolve: impl Fn(PathBuf) -> PathBuf,
    ) -> Result<AdminConfig, (&'static str, String)> {
        if let Some(group) = &raw.group
            && (group.is_empty() || group.contains([':', '\n', '/']))
        {
            return Err(("admin.group", format!("{group:?} is not a group name")));
        }
        Ok(AdminConfig {
            socket: raw.socket.map(resolve),
            group: raw.group,
            allow_uids: raw.allow_uids.unwrap_or_default(),
            allow_gids: raw.allow_gids.unwrap_or_default(),
        })
    }

    /// The socket's path for an appliance whose state is in `state_dir`.
    pub fn socket_path(&self, state_dir: &std::path::Path) -> PathBuf {
        if let Some(path) = &self.socket {
            return path.clone();
        }
        let runtime = std::env::var_os("RUNTIME_DIRECTORY")
            .map(|dirs| {
                let dirs = dirs.to_string_lossy().into_owned();
                PathBuf::from(dirs.split(':').next().unwrap_or_default())
            })
            .filter(|d| !d.as_os_str().is_empty());
        runtime
            .unwrap_or_else(|| state_dir.to_path_buf())
            .join(SOCKET_NAME)
    }
}
