//! What the console knows about the appliance: the answers of the admin socket, read into
//! types that ignore members they do not know, so that a newer appliance (with HSM or PKI
//! state, say) still shows in an older console.

use std::collections::BTreeMap;

use serde::Deserialize;

/// Whether the console reaches the appliance.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub enum Link {
    #[default]
    Connecting,
    Up,
    /// Not reachable: what is wrong and what would fix it.
    Down {
        reason: String,
        fix: String,
    },
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Status {
    pub version: String,
    pub uptime_secs: u64,
    pub config: String,
    pub issuer: String,
    pub tenants: usize,
    pub log_filter: String,
    pub signer: Signer,
    pub signins_in_flight: u64,
    pub max_signins_in_flight: u64,
    pub transactions_completed: u64,
    pub audit: AuditHead,
    pub revocation: Revocation,
}

/// How many CRL sources can decide revocation now.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Revocation {
    pub trust_stores: u64,
    pub crl_sources: u64,
    pub crl_stale: u64,
    pub crl_not_loaded: u64,
}

impl Revocation {
    /// One line for the dashboard, e.g. `CRLs 2/3 fresh · 1 stale`.
    pub fn line(&self) -> String {
        if self.trust_stores == 0 {
            return "no trust store".into();
        }
        if self.crl_sources == 0 {
            return format!("{} trust store(s), no CRL source", self.trust_stores);
        }
        let fresh = self.crl_sources - (self.crl_stale + self.crl_not_loaded).min(self.crl_sources);
        let mut line = format!("CRLs {fresh}/{} fresh", self.crl_sources);
        if self.crl_stale > 0 {
            line.push_str(&format!(" · {} STALE", self.crl_stale));
        }
        if self.crl_not_loaded > 0 {
            line.push_str(&format!(" · {} NOT LOADED", self.crl_not_loaded));
        }
        line
    }

    pub fn all_fresh(&self) -> bool {
        self.crl_stale == 0 && self.crl_not_loaded == 0
    }
}

/// A trust store of certificate factors and its revocation sources.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct TrustStore {
    pub name: String,
    /// `"shared"`, or the tenant IDs it serves.
    pub tenants: serde_json::Value,
    pub amr: String,
    pub roots: u64,
    pub ocsp: String,
    pub ocsp_answers_cached: u64,
    pub ocsp_failing: u64,
    pub chain_cache: u64,
    pub crls: Vec<CrlSource>,
}

/// One CRL file or URL: `fresh`, `stale` or `not_loaded`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct CrlSource {
    pub source: String,
    pub state: String,
    pub issuer: Option<String>,
    pub age_secs: Option<i64>,
    pub next_update: Option<String>,
    pub entries: Option<u64>,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Signer {
    pub backends: Vec<Backend>,
    pub kid: String,
    pub workers: u64,
    pub capacity: u64,
    pub in_flight: u64,
    pub healthy: bool,
}

impl Signer {
    /// Each backend and whether it signs, e.g. `hsm-a up, hsm-b DOWN`.
    pub fn backends_line(&self) -> String {
        if self.backends.is_empty() {
            return "no backend".into();
        }
        let each: Vec<String> = self
            .backends
            .iter()
            .map(|b| match (b.up, b.stopped) {
                (true, _) => format!("{} up", b.name),
                (false, true) => format!("{} STOPPED", b.name),
                (false, false) => format!("{} DOWN", b.name),
            })
            .collect();
        each.join(", ")
    }

    /// Health and how many backends sign, short enough for a narrow panel: `backend up ·
    /// healthy`, `1/2 up · healthy` (backends), `NO BACKEND UP`.
    pub fn summary(&self) -> String {
        let up = self.backends.iter().filter(|b| b.up).count();
        let count = match self.backends.len() {
            1 => "backend up".to_owned(),
            n => format!("{up}/{n} up"),
        };
        match self.health() {
            "NO BACKEND UP" => "NO BACKEND UP".to_owned(),
            health => format!("{count} · {health}"),
        }
    }

    /// `healthy`, or why not: no backend signs, or the queue is full.
    pub fn health(&self) -> &'static str {
        match (self.healthy, self.backends.iter().any(|b| b.up)) {
            (true, _) => "healthy",
            (false, false) => "NO BACKEND UP",
            (false, true) => "SATURATED",
        }
    }
}

/// One signing backend: a software key, a PKCS#11 token or a PIV card.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Backend {
    pub name: String,
    pub up: bool,
    /// Stopped for good (a refused PIN), until an operator fixes it and restarts.
    pub stopped: bool,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct AuditHead {
    pub dir: String,
    pub head_seq: Option<u64>,
    pub head_hash: String,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Counters {
    pub by_outcome: BTreeMap<String, u64>,
    pub by_amr: BTreeMap<String, u64>,
    pub errors_by_reason: BTreeMap<String, u64>,
    pub per_second: Vec<u64>,
    pub latency_us: BTreeMap<String, BTreeMap<String, u64>>,
    pub signer_in_flight: u64,
    pub signins_in_flight: u64,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Recent {
    pub time: i64,
    pub tid: String,
    pub oid: String,
    pub amr: Option<String>,
    pub outcome: String,
    pub reason: String,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Tenant {
    pub id: String,
    pub name: String,
    pub cloud: String,
    pub test_authority: Option<String>,
    pub entra_keys: Option<KeyCache>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct KeyCache {
    pub keys: u64,
    pub age_secs: Option<u64>,
    pub fetches: u64,
    pub last_error: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Keys {
    pub signing_kid: String,
    pub staged_kid: Option<String>,
    /// Every published key, in the order the appliance lists them.
    pub ring: Vec<RingKey>,
}

/// A key of the rotation ring: `next` (published, not signing yet), `active` or `retiring`.
#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct RingKey {
    pub kid: String,
    pub state: String,
    pub location: String,
    pub next_state: Option<String>,
    pub next_at: Option<String>,
}

#[derive(Debug, Clone, Default, Deserialize, PartialEq)]
#[serde(default)]
pub struct Enrolment {
    pub tid: String,
    pub oid: String,
    pub upn: Option<String>,
    pub methods: Vec<String>,
}

/// A Unix time as its UTC calendar date, `YYYY-MM-DD`.
pub fn date(unix_secs: i64) -> String {
    // Civil date from days since 1970-01-01 (proleptic Gregorian), by 400-year eras.
    let days = unix_secs.div_euclid(86_400) + 719_468;
    let era = days.div_euclid(146_097);
    let day_of_era = days - era * 146_097;
    let year_of_era =
        (day_of_era - day_of_era / 1_460 + day_of_era / 36_524 - day_of_era / 146_096) / 365;
    let day_of_year = day_of_era - (365 * year_of_era + year_of_era / 4 - year_of_era / 100);
    let month_index = (5 * day_of_year + 2) / 153;
    let day = day_of_year - (153 * month_index + 2) / 5 + 1;
    let month = if month_index < 10 {
        month_index + 3
    } else {
        month_index - 9
    };
    let year = year_of_era + era * 400 + i64::from(month <= 2);
    format!("{year:04}-{month:02}-{day:02}")
}

/// Everything one poll learnt, and the outcome of the last action.
#[derive(Debug, Clone, Default, PartialEq)]
pub struct Snapshot {
    pub link: Link,
    pub socket: String,
    pub status: Status,
    pub counters: Counters,
    pub recent: Vec<Recent>,
    pub tenants: Vec<Tenant>,
    pub keys: Keys,
    pub enrolments: Vec<Enrolment>,
    pub trust_stores: Vec<TrustStore>,
    /// What the last action answered, for the operator to read.
    pub message: Option<String>,
}

impl Snapshot {
    pub fn total(&self) -> u64 {
        self.counters.by_outcome.values().sum()
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn unix_times_read_as_their_utc_dates() {
        assert_eq!(date(0), "1970-01-01");
        assert_eq!(date(951_782_400), "2000-02-29");
        assert_eq!(date(1_796_342_399), "2026-12-03");
        assert_eq!(date(-86_400), "1969-12-31");
    }
}
