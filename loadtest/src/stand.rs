//! The stand: a directory holding everything a run needs besides the appliance itself.
//!
//! ```text
//! DIR/stand.json       ports, tenant and user count
//! DIR/vouch.toml       the appliance's configuration: one tenant that trusts the tool's Entra
//! DIR/entra/           the tool's Entra: CA, server certificate and key, hint-signing key
//! DIR/phones/          the users' phone CA: ca.pem (a root of the tenant's trust store) and
//!                      ca.key (0600), which issues each user's phone certificate
//! DIR/cards/           the users' smart-card CA, kept the same way
//! DIR/users.json       every user's ids and TOTP seed (0600)
//! DIR/keys.json        as many key holders' security keys and counters (0600)
//! DIR/state/           the appliance's state directory, users already enrolled
//! ```
//!
//! The Entra identity is kept so that an appliance started by hand keeps trusting the tool's
//! Entra from one run to the next.
//!
//! The configuration has two `[[trust_store]]`s: the phone CA's for the mobile-PKI factor
//! (`amr = "hwk"`) and the card CA's for the smart-card factor (`amr = "sc"`), each binding
//! by UPN with no revocation source (no CRL, OCSP off), which the appliance reads as
//! "revocation not checked". Only hints that carry a `preferred_username` can be bound to a
//! certificate, so sign-ins whose hint has none are offered TOTP alone. The smart-card
//! listener asks for client certificates on its own loopback port, named in the manifest.

use std::net::{Ipv4Addr, SocketAddr, TcpListener};
use std::path::{Path, PathBuf};

use entra_sim::{APP_ID, CLIENT_ID, Identity, SigningKey, TENANT};
use serde::{Deserialize, Serialize};
use vouch::config::Config;
use vouch::factor::otp::TotpParams;
use vouch::pki::TrustStores;
use vouch::store::{CredentialStore, NewTotp};

use crate::StandError;
use crate::certs::{self, Kind, UserCa};
use crate::users::{User, Users};

const MANIFEST: &str = "stand.json";
/// The issuer's host name; the appliance's self-signed certificate names it.
const ISSUER_HOST: &str = "localhost";

#[derive(Debug, Clone, Serialize, Deserialize)]
pub struct Manifest {
    pub appliance: SocketAddr,
    pub entra: SocketAddr,
    /// The smart-card listener; none in stands prepared before the tool played cards.
    #[serde(default)]
    pub cards: Option<SocketAddr>,
    pub tenant: String,
    pub users: usize,
}

/// A prepared stand, read back.
pub struct Stand {
    pub dir: PathBuf,
    pub manifest: Manifest,
    pub users: Users,
}

impl Stand {
    pub fn config_path(&self) -> PathBuf {
        self.dir.join("vouch.toml")
    }

    /// The appliance's own TLS certificate, which the browsers trust.
    pub fn appliance_cert(&self) -> PathBuf {
        self.dir.join("state/tls/cert.pem")
    }

    /// The key of the CA that issues the users' phone certificates.
    pub fn phone_ca_key(&self) -> PathBuf {
        self.dir.join("phones/ca.key")
    }

    /// The key of the CA that issues the users' smart-card certificates.
    pub fn card_ca_key(&self) -> PathBuf {
        self.dir.join("cards/ca.key")
    }

    /// The origin of the smart-card listener as the appliance's pages name it.
    pub fn card_url(&self) -> Option<String> {
        let cards = self.manifest.cards?;
        Some(format!("https://{ISSUER_HOST}:{}", cards.port()))
    }

    pub fn log_path(&self) -> PathBuf {
        self.dir.join("vouch.log")
    }

    pub fn issuer(&self) -> String {
        format!("https://{ISSUER_HOST}:{}", self.manifest.appliance.port())
    }

    /// The Entra identity saved with the stand.
    pub fn entra_identity(&self) -> Result<Identity, StandError> {
        let dir = self.dir.join("entra");
        let read = |name: &str| {
            let path = dir.join(name);
            std::fs::read(&path).map_err(|e| StandError::io(&path, e))
        };
        let text = |name: &str| {
            read(name).and_then(|b| {
                String::from_utf8(b).map_err(|e| StandError::damaged(&dir.join(name), e))
            })
        };
        let signing = SigningKey::from_parts(&read("signing.pk8")?, read("signing.der")?)
            .map_err(|e| StandError::damaged(&dir.join("signing.pk8"), e))?;
        Ok(Identity {
            ca_pem: text("ca.pem")?,
            server_cert_pem: text("server.pem")?,
            server_key_pem: text("server.key")?,
            signing,
        })
    }

    pub fn load(dir: &Path) -> Result<Stand, StandError> {
        let path = dir.join(MANIFEST);
        if !path.is_file() {
            return Err(StandError::Missing {
                dir: dir.to_owned(),
            });
        }
        let bytes = std::fs::read(&path).map_err(|e| StandError::io(&path, e))?;
        let manifest: Manifest =
            serde_json::from_slice(&bytes).map_err(|e| StandError::damaged(&path, e))?;
        let users = Users::load(&dir.join("users.json"))?;
        Ok(Stand {
            dir: dir.to_owned(),
            manifest,
            users,
        })
    }

    /// Writes a new stand into `dir`, which must not hold one already: the appliance to
    /// listen on `appliance` (and for smart cards on `cards`), the tool's Entra on `entra`.
    pub fn prepare(
        dir: &Path,
        users: usize,
        [appliance, cards, entra]: [SocketAddr; 3],
    ) -> Result<Stand, StandError> {
        if dir.join(MANIFEST).exists() {
            return Err(StandError::Exists {
                dir: dir.to_owned(),
            });
        }
        vouch::provision::ensure_dir(dir).map_err(|e| StandError::io(dir, e))?;
        let identity = Identity::generate().map_err(|e| StandError::io(dir, e))?;
        save_identity(&dir.join("entra"), &identity)?;
        save_user_ca(&dir.join("phones"), Kind::Phone)?;
        save_user_ca(&dir.join("cards"), Kind::Card)?;
        let manifest = Manifest {
            appliance,
            entra,
            cards: Some(cards),
            tenant: TENANT.to_owned(),
            users,
        };
        let stand = Stand {
            dir: dir.to_owned(),
            users: enrol(&dir.join("state"), users)?,
            manifest,
        };
        crate::keys::make(dir, &dir.join("state"), TENANT, users)?;
        stand.write_config()?;
        stand.users.save(&dir.join("users.json"))?;
        let bytes = serde_json::to_vec_pretty(&stand.manifest).unwrap_or_default();
        write(&dir.join(MANIFEST), &bytes)?;
        Ok(stand)
    }

    /// The appliance's configuration, checked by the appliance's own parser before it is kept.
    fn write_config(&self) -> Result<(), StandError> {
        let cards = match (self.manifest.cards, self.card_url()) {
            (Some(listen), Some(url)) => {
                format!("client_cert_listen = \"{listen}\"\nclient_cert_url = \"{url}\"\n")
            }
            _ => String::new(),
        };
        let text = format!(
            "# Written by vouch-loadtest: a load stand, not a production configuration.\n\
             [server]\nissuer = \"{issuer}\"\nlisten = [\"{listen}\"]\nstate_dir = \"state\"\n\
             {cards}\n\
             [[tenant]]\nid = \"{TENANT}\"\nname = \"load stand\"\napp_id = \"{APP_ID}\"\n\
             client_id = \"{CLIENT_ID}\"\n\n\
             [tenant.test_authority]\nurl = \"https://{entra}\"\nca_file = \"entra/ca.pem\"\n\n\
             [[trust_store]]\nname = \"{store}\"\ntenants = [\"{TENANT}\"]\n\
             roots = [\"phones/ca.pem\"]\nbinding = \"upn\"\namr = \"hwk\"\n\
             methods = [\"mobile_pki\"]\n\n\
             [[trust_store]]\nname = \"{cards_store}\"\ntenants = [\"{TENANT}\"]\n\
             roots = [\"cards/ca.pem\"]\nbinding = \"upn\"\namr = \"sc\"\n\
             methods = [\"smart_card\"]\n",
            store = certs::PHONE_STORE,
            cards_store = certs::CARD_STORE,
            issuer = self.issuer(),
            listen = self.manifest.appliance,
            entra = self.manifest.entra,
        );
        let path = self.config_path();
        write(&path, text.as_bytes())?;
        let config = Config::load(&path).map_err(|e| StandError::damaged(&path, e))?;
        TrustStores::load(&config.trust_stores).map_err(|e| StandError::damaged(&path, e))?;
        Ok(())
    }
}

/// Gives `count` users a TOTP seed in one write of the store, and creates the appliance's
/// TLS certificate so that browsers can trust it before the appliance first starts.
fn enrol(state: &Path, count: usize) -> Result<Users, StandError> {
    vouch::provision::ensure_dir(state).map_err(|e| StandError::io(state, e))?;
    vouch::provision::tls_config(state, None).map_err(|e| StandError::io(state, e))?;
    let store = CredentialStore::open(state).map_err(|e| StandError::io(state, e))?;
    let params = TotpParams::default();
    let oids: Vec<String> = (0..count).map(|i| User::new(i, &[]).oid).collect();
    let new: Vec<NewTotp<'_>> = oids
        .iter()
        .map(|oid| NewTotp {
            tenant: TENANT,
            oid,
            params,
            upn: None,
        })
        .collect();
    let seeds = store
        .enroll_totp_many(&new, false, entra_sim::unix_now())
        .map_err(|e| StandError::io(state, e))?;
    let list = seeds
        .iter()
        .enumerate()
        .map(|(i, s)| User::new(i, s))
        .collect();
    Ok(Users {
        tenant: TENANT.to_owned(),
        params,
        list,
    })
}

fn save_identity(dir: &Path, identity: &Identity) -> Result<(), StandError> {
    vouch::provision::ensure_dir(dir).map_err(|e| StandError::io(dir, e))?;
    let (pkcs8, cert) = identity
        .signing
        .to_parts()
        .map_err(|e| StandError::io(dir, e))?;
    write(&dir.join("ca.pem"), identity.ca_pem.as_bytes())?;
    write(&dir.join("server.pem"), identity.server_cert_pem.as_bytes())?;
    write(&dir.join("server.key"), identity.server_key_pem.as_bytes())?;
    write(&dir.join("signing.pk8"), &pkcs8)?;
    write(&dir.join("signing.der"), &cert)
}

/// A new phone or card CA: its certificate for the trust store, its key for the tool.
fn save_user_ca(dir: &Path, kind: Kind) -> Result<(), StandError> {
    vouch::provision::ensure_dir(dir).map_err(|e| StandError::io(dir, e))?;
    let ca = UserCa::generate(kind).map_err(|e| StandError::io(dir, e))?;
    write(&dir.join("ca.pem"), ca.cert_pem().as_bytes())?;
    write(&dir.join("ca.key"), ca.key_pem().as_bytes())
}

/// Writes a file only its owner may read: the stand's keys and users' seeds.
pub(crate) fn write(path: &Path, bytes: &[u8]) -> Result<(), StandError> {
    use std::io::Write as _;
    use std::os::unix::fs::OpenOptionsExt as _;
    let mut file = std::fs::OpenOptions::new()
        .create(true)
        .truncate(true)
        .write(true)
        .mode(0o600)
        .open(path)
        .map_err(|e| StandError::io(path, e))?;
    file.write_all(bytes).map_err(|e| StandError::io(path, e))
}

/// A loopback address with a port nobody listens on right now.
pub fn free_loopback_port() -> Result<SocketAddr, StandError> {
    let probe = TcpListener::bind((Ipv4Addr::LOCALHOST, 0))
        .and_then(|l| l.local_addr())
        .map_err(|e| StandError::io(Path::new("127.0.0.1:0"), e))?;
    Ok(probe)
}

#[cfg(test)]
mod tests {
    #![allow(clippy::unwrap_used, clippy::expect_used)]

    use super::*;

    #[test]
    fn a_prepared_stand_reads_back_with_its_users_enrolled_and_refuses_a_second_prepare() {
        let dir = tempfile::tempdir().unwrap();
        let made = Stand::prepare(dir.path(), 5, ports()).unwrap();

        let stand = Stand::load(dir.path()).unwrap();
        assert_eq!(stand.users.list, made.users.list);
        assert_eq!(stand.issuer(), "https://localhost:18443");
        let config = Config::load(&stand.config_path()).unwrap();
        assert_eq!(config.tenants[0].authority(), "https://127.0.0.1:19443");

        let store = CredentialStore::open(&dir.path().join("state")).unwrap();
        let enrolled = store.list();
        assert_eq!(
            enrolled.len(),
            10,
            "five users with a TOTP seed, five key holders"
        );
        let holder = User::key_holder(4);
        assert_eq!(store.fido(TENANT, &holder.oid).len(), 1);
        assert!(store.fido(TENANT, &made.users.get(4).oid).is_empty());
        let kid = stand.entra_identity().unwrap().signing.kid;
        assert_eq!(kid, stand.entra_identity().unwrap().signing.kid);
        let again = Stand::prepare(dir.path(), 5, ports());
        assert!(matches!(again, Err(StandError::Exists { .. })));
    }

    #[test]
    fn the_stand_trusts_its_phone_and_card_cas_by_upn_with_their_keys_kept_private() {
        use std::os::unix::fs::PermissionsExt as _;
        use vouch::factor::Method;
        use vouch::pki::{ExpectedUser, Timestamp, verify_client_offline};

        let dir = tempfile::tempdir().unwrap();
        let stand = Stand::prepare(dir.path(), 3, ports()).unwrap();
        let config = Config::load(&stand.config_path()).unwrap();
        let stores = TrustStores::load(&config.trust_stores).unwrap();
        let listener = config.client_cert.as_ref().unwrap();
        assert_eq!(Some(listener.listen), stand.manifest.cards);
        assert_eq!(Some(listener.origin.clone()), stand.card_url());

        let kinds = [
            (
                Kind::Phone,
                stand.phone_ca_key(),
                certs::PHONE_STORE,
                Method::MobilePki,
                "hwk",
            ),
            (
                Kind::Card,
                stand.card_ca_key(),
                certs::CARD_STORE,
                Method::SmartCard,
                "sc",
            ),
        ];
        for (kind, key, name, method, amr) in kinds {
            let mode = std::fs::metadata(&key).unwrap().permissions().mode();
            assert_eq!(mode & 0o777, 0o600);
            let store = stores.by_name(name).unwrap();
            assert_eq!(store.methods, [method]);
            assert_eq!(store.amr.as_str(), amr);
            assert_eq!(store.binding, vouch::pki::BindingRule::Upn);
            assert!(store.crls().is_empty());

            let user = stand.users.get(2);
            let ca = UserCa::load(kind, &key).unwrap();
            let cert = ca.issue(&user.upn, 3).unwrap();
            let expected = ExpectedUser {
                tid: TENANT,
                oid: &user.oid,
                upn: Some(&user.upn),
            };
            let at = Timestamp(entra_sim::unix_now());
            let verified = verify_client_offline(store, &[cert.cert], at, &expected);
            assert!(verified.is_ok(), "{name}: {verified:?}");
        }
    }

    fn ports() -> [SocketAddr; 3] {
        [18443, 18444, 19443].map(|port| SocketAddr::from((Ipv4Addr::LOCALHOST, port)))
    }
}
