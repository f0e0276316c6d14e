//! Who is on the other end of an admin connection, and whether they may use it.
//!
//! The kernel tells the peer's user and primary group (SO_PEERCRED); supplementary groups
//! are read from `/proc/PID/status`. Root, the appliance's own user, the listed users, and
//! members of the socket's group or a listed group are let in; everyone else is answered
//! with a refusal that says how to be let in, and the connection is closed.

use std::os::unix::fs::MetadataExt as _;

/// A peer's identity.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Credentials {
    pub uid: u32,
    pub gid: u32,
    pub groups: Vec<u32>,
}

impl Credentials {
    /// The peer of `stream`.
    pub fn of(stream: &tokio::net::UnixStream) -> std::io::Result<Credentials> {
        let cred = stream.peer_cred()?;
        let groups = cred.pid().map(supplementary_groups).unwrap_or_default();
        Ok(Credentials {
            uid: cred.uid(),
            gid: cred.gid(),
            groups,
        })
    }
}

fn supplementary_groups(pid: i32) -> Vec<u32> {
    let status = std::fs::read_to_string(format!("/proc/{pid}/status")).unwrap_or_default();
    status
        .lines()
        .find_map(|l| l.strip_prefix("Groups:"))
        .map(|g| {
            g.split_whitespace()
                .filter_map(|n| n.parse().ok())
                .collect()
        })
        .unwrap_or_default()
}

/// The users and groups let in.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Allowed {
    pub uids: Vec<u32>,
    pub gids: Vec<u32>,
}

impl Allowed {
    /// Root, `own_uid`, the configured users, and the configured and socket groups.
    pub fn new(own_uid: u32, uids: &[u32], gids: &[u32], socket_gid: Option<u32>) -> Allowed {
        let mut allowed = Allowed {
            uids: vec![0, own_uid],
            gids: gids.to_vec(),
        };
        allowed.uids.extend_from_slice(uids);
        allowed.gids.extend(socket_gid);
        allowed
    }

    pub fn permits(&self, peer: &Credentials) -> bool {
        self.uids.contains(&peer.uid)
            || self.gids.contains(&peer.gid)
            || peer.groups.iter().any(|g| self.gids.contains(g))
    }

    /// The refusal a peer that is not let in is given.
    pub fn refusal(&self, peer: &Credentials) -> String {
        format!(
            "uid {} (gid {}) may not use the vouch admin socket; ask an administrator to add \
             the user to the socket's group, or to [admin] allow_uids or allow_gids in the \
             appliance's configuration",
            peer.uid, peer.gid
        )
    }
}

/// The user this process runs as.
pub fn own_uid() -> u32 {
    std::fs::metadata("/proc/self").map_or(0, |m| m.uid())
}

/// The ID of group `name`, from `/etc/group`.
pub fn group_id(name: &str) -> Option<u32> {
    let groups = std::fs::read_to_string("/etc/group").ok()?;
    groups.lines().find_map(|line| {
        let mut fields = line.split(':');
        let found = fields.next()? == name;
        let gid = fields.nth(1)?.parse().ok()?;
        found.then_some(gid)
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    fn peer(uid: u32, gid: u32, groups: &[u32]) -> Credentials {
        Credentials {
            uid,
            gid,
            groups: groups.to_vec(),
        }
    }

    #[test]
    fn root_the_own_user_listed_users_and_group_members_are_let_in() {
        let allowed = Allowed::new(990, &[1001], &[4000], Some(990));
        assert!(allowed.permits(&peer(0, 0, &[])));
        assert!(allowed.permits(&peer(990, 990, &[])));
        assert!(allowed.permits(&peer(1001, 100, &[])));
        assert!(allowed.permits(&peer(1002, 4000, &[])));
        assert!(allowed.permits(&peer(1003, 100, &[27, 990])));
    }

    #[test]
    fn another_user_is_refused_with_how_to_be_let_in() {
        let allowed = Allowed::new(990, &[], &[], Some(990));
        let stranger = peer(65534, 65534, &[65534]);
        assert!(!allowed.permits(&stranger));
        let message = allowed.refusal(&stranger);
        assert!(message.contains("uid 65534") && message.contains("allow_uids"));
    }

    #[test]
    fn a_group_name_is_found_in_etc_group() {
        assert_eq!(group_id("root"), Some(0));
        assert_eq!(group_id("no-such-group-for-vouch"), None);
    }
}
