//! A trust store on disk for sign-in tests: a root and an issuing CA, CRLs dated around the
//! real clock (the appliance's), and the `[[trust_store]]` section that reads them.

use rustls::pki_types::{CertificateDer, PrivateKeyDer, PrivatePkcs8KeyDer};
use vouch::pki::Timestamp;

use super::{Ca, Leaf};

pub struct StoreFiles {
    pub root: Ca,
    pub issuing: Ca,
    pub dir: tempfile::TempDir,
    /// The instant the CRLs were dated from.
    pub now: i64,
}

impl StoreFiles {
    pub fn new() -> StoreFiles {
        let root = Ca::root("Contoso Card Root");
        let issuing = root.intermediate("Contoso Card Issuing");
        let dir = tempfile::tempdir().unwrap();
        std::fs::write(dir.path().join("root.der"), root.cert.as_ref()).unwrap();
        let files = StoreFiles {
            root,
            issuing,
            dir,
            now: entra_sim::unix_now(),
        };
        files.crls(&[], files.now + 86_400);
        files
    }

    /// Writes CRLs, the issuing CA's revoking `revoked` and due again at `next_update`.
    pub fn crls(&self, revoked: &[u64], next_update: i64) {
        let this = Timestamp(self.now - 7 * 86_400);
        let root = self.root.crl(&[], this, Timestamp(self.now + 86_400));
        std::fs::write(self.path("root.crl"), root).unwrap();
        let issuing = self.issuing.crl(revoked, this, Timestamp(next_update));
        std::fs::write(self.path("issuing.crl"), issuing).unwrap();
    }

    pub fn path(&self, name: &str) -> String {
        self.dir.path().join(name).display().to_string()
    }

    /// A `[[trust_store]]` for `tenant` binding by UPN and granting `amr` to the flows in
    /// `methods`; `extra` is added to it.
    pub fn section(&self, tenant: &str, amr: &str, methods: &str, extra: &str) -> String {
        self.section_binding(tenant, amr, methods, "upn", extra)
    }

    /// [`StoreFiles::section`] with another binding rule.
    pub fn section_binding(
        &self,
        tenant: &str,
        amr: &str,
        methods: &str,
        binding: &str,
        extra: &str,
    ) -> String {
        format!(
            "[[trust_store]]\nname = \"cards\"\ntenants = [\"{tenant}\"]\n\
             roots = [\"{root}\"]\nbinding = \"{binding}\"\namr = \"{amr}\"\n\
             methods = {methods}\ncrl_files = [\"{rcrl}\", \"{icrl}\"]\n{extra}\n",
            root = self.path("root.der"),
            rcrl = self.path("root.crl"),
            icrl = self.path("issuing.crl"),
        )
    }

    /// A certificate from the issuing CA with its key, and the issuing CA.
    pub fn card(&self, leaf: Leaf) -> (Vec<CertificateDer<'static>>, PrivateKeyDer<'static>) {
        let (cert, key) = self.issuing.issue_keyed(leaf);
        (vec![cert, self.issuing.cert.clone()], private(&key))
    }
}

pub fn private(key: &rcgen::KeyPair) -> PrivateKeyDer<'static> {
    PrivateKeyDer::Pkcs8(PrivatePkcs8KeyDer::from(key.serialize_der()))
}
