//! `vouch cert verify`, `vouch cert inspect` and `vouch crl status`, driven through the built
//! binary against a generated PKI.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod pki_support;

use std::path::Path;
use std::process::{Command, Output};

use pki_support::*;
use rustls::pki_types::CertificateDer;

fn vouch(args: &[&str]) -> Output {
    Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(args)
        .env("VOUCH_LOG", "error")
        .output()
        .unwrap()
}

fn stdout(out: &Output) -> String {
    String::from_utf8_lossy(&out.stdout).into_owned()
}

fn pem(certs: &[&CertificateDer<'_>]) -> String {
    use base64::Engine as _;
    let mut text = String::new();
    for cert in certs {
        let b64 = base64::engine::general_purpose::STANDARD.encode(cert.as_ref());
        text.push_str("-----BEGIN CERTIFICATE-----\n");
        for line in b64.as_bytes().chunks(64) {
            text.push_str(std::str::from_utf8(line).unwrap());
            text.push('\n');
        }
        text.push_str("-----END CERTIFICATE-----\n");
    }
    text
}

/// A configuration with one store `cards` trusting `root`, with the given CRL files and URLs.
fn setup(dir: &Path, root: &Ca, crl_files: &[&str], crl_urls: &[String]) -> String {
    write(dir, "root.pem", pem(&[&root.cert]).as_bytes());
    let quote = |items: Vec<String>| {
        items
            .iter()
            .map(|i| format!("{i:?}"))
            .collect::<Vec<_>>()
            .join(", ")
    };
    let text = format!(
        "[server]\nstate_dir = \"state\"\n\n[[trust_store]]\nname = \"cards\"\n\
         tenants = [\"{TENANT}\"]\nroots = [\"root.pem\"]\nbinding = \"upn\"\namr = \"sc\"\n\
         crl_files = [{}]\ncrl_urls = [{}]\n",
        quote(crl_files.iter().map(|s| (*s).to_owned()).collect()),
        quote(crl_urls.to_vec()),
    );
    write(dir, "vouch.toml", text.as_bytes())
        .display()
        .to_string()
}

struct Fixture {
    dir: tempfile::TempDir,
    config: String,
    issuing: Ca,
}

fn fixture(revoked: &[u64]) -> Fixture {
    let dir = tempfile::tempdir().unwrap();
    let root = Ca::root("Contoso Root");
    let issuing = root.intermediate("Contoso Issuing");
    write(dir.path(), "root.crl", &root.fresh_crl(&[]));
    write(dir.path(), "issuing.crl", &issuing.fresh_crl(revoked));
    let config = setup(dir.path(), &root, &["root.crl", "issuing.crl"], &[]);
    Fixture {
        dir,
        config,
        issuing,
    }
}

impl Fixture {
    fn chain(&self, leaf: &CertificateDer<'_>, name: &str) -> String {
        write(
            self.dir.path(),
            name,
            pem(&[leaf, &self.issuing.cert]).as_bytes(),
        )
        .display()
        .to_string()
    }

    fn verify(&self, chain: &str, extra: &[&str]) -> Output {
        let at = AT.to_string();
        let mut args = vec![
            "cert",
            "verify",
            "-c",
            &self.config,
            "--trust-store",
            "cards",
            "--at",
            &at,
        ];
        args.extend_from_slice(extra);
        args.push(chain);
        vouch(&args)
    }
}

#[test]
fn cert_verify_says_valid_with_the_amr_and_exits_zero() {
    let f = fixture(&[]);
    let chain = f.chain(&f.issuing.user_cert(UPN, 7), "chain.pem");
    let out = f.verify(&chain, &["--user", UPN]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0), "{text}");
    assert!(
        text.contains("verdict      VALID: amr sc, bound to the user"),
        "{text}"
    );
    assert!(text.contains("not revoked per CRL"), "{text}");
}

#[test]
fn cert_verify_names_the_revoking_crl_and_exits_one() {
    let f = fixture(&[7]);
    let chain = f.chain(&f.issuing.user_cert(UPN, 7), "chain.pem");
    let out = f.verify(&chain, &[]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(1), "{text}");
    assert!(
        text.contains("REFUSED: revoked on 2026-01-01T00:00:00Z by CRL"),
        "{text}"
    );
    assert!(text.contains("issuing.crl"), "{text}");
}

#[test]
fn cert_verify_tells_expiry_wrong_user_and_unknown_issuer() {
    let f = fixture(&[]);
    let expired = f
        .issuing
        .issue(Leaf::new(UPN, 7).valid(AT.plus(-900_000), AT.plus(-86_400)));
    let out = f.verify(&f.chain(&expired, "expired.pem"), &[]);
    assert!(
        stdout(&out).contains(&format!("REFUSED: expired on {}", AT.plus(-86_400))),
        "{}",
        stdout(&out)
    );

    let other = f.chain(
        &f.issuing.user_cert("grace@contoso.example", 8),
        "other.pem",
    );
    let out = f.verify(&other, &["--user", UPN]);
    assert_eq!(out.status.code(), Some(1));
    assert!(
        stdout(&out).contains("REFUSED: no binding for the user"),
        "{}",
        stdout(&out)
    );

    let rogue = Ca::root("Rogue");
    let path = write(
        f.dir.path(),
        "rogue.pem",
        pem(&[&rogue.user_cert(UPN, 1)]).as_bytes(),
    );
    let out = f.verify(&path.display().to_string(), &[]);
    assert!(
        stdout(&out).contains("REFUSED: unknown issuer"),
        "{}",
        stdout(&out)
    );
}

#[test]
fn cert_verify_reports_a_stale_crl_as_undecided() {
    let f = fixture(&[]);
    write(
        f.dir.path(),
        "issuing.crl",
        &f.issuing.crl(&[], AT.plus(-9 * 86_400), AT.plus(-86_400)),
    );
    let chain = f.chain(&f.issuing.user_cert(UPN, 7), "chain.pem");
    let out = f.verify(&chain, &[]);
    assert_eq!(out.status.code(), Some(1));
    assert!(stdout(&out).contains("UNDECIDED: CRL"), "{}", stdout(&out));
    assert!(stdout(&out).contains("is stale"), "{}", stdout(&out));
}

#[test]
fn cert_verify_refuses_bad_usage_with_status_64() {
    let f = fixture(&[]);
    let chain = f.chain(&f.issuing.user_cert(UPN, 7), "chain.pem");
    let garbage = write(
        f.dir.path(),
        "garbage.pem",
        b"-----BEGIN CERTIFICATE-----\n@@@\n-----END CERTIFICATE-----\n",
    );
    let verify = |rest: &[&'static str]| {
        let base = ["cert", "verify", "-c", f.config.as_str(), "--trust-store"];
        [&base[..], rest].concat()
    };
    let garbage = garbage.display().to_string();
    let cases: Vec<Vec<&str>> = vec![
        [verify(&["nope"]), vec![chain.as_str()]].concat(),
        [
            verify(&["cards", "--at", "yesterday"]),
            vec![chain.as_str()],
        ]
        .concat(),
        verify(&["cards", "/nonexistent.pem"]),
        [verify(&["cards"]), vec![garbage.as_str()]].concat(),
        vec!["cert", "inspect", "/nonexistent.pem"],
        vec!["crl", "status", "-c", "/nonexistent.toml"],
    ];
    for args in cases {
        let out = vouch(&args);
        let err = String::from_utf8_lossy(&out.stderr);
        assert_eq!(out.status.code(), Some(64), "{args:?}: {err}");
        assert!(err.starts_with("vouch: "), "{args:?}: {err}");
    }
}

#[test]
fn cert_inspect_shows_names_usages_and_revocation_pointers() {
    let f = fixture(&[]);
    let leaf = f.issuing.issue(
        Leaf::new(UPN, 0x1234)
            .crl_dp("http://pki.contoso.example/issuing.crl")
            .ocsp("http://ocsp.contoso.example/"),
    );
    let chain = f.chain(&leaf, "chain.pem");
    let out = vouch(&["cert", "inspect", &chain]);
    let text = stdout(&out);
    assert_eq!(out.status.code(), Some(0));
    for expected in [
        "certificate 0",
        "serial       12:34",
        &format!("UPN          {UPN}"),
        "EKU          client_auth",
        "CRL DP       http://pki.contoso.example/issuing.crl",
        "OCSP         http://ocsp.contoso.example/",
        "key          EC P-256",
        "certificate 1",
        "CA           yes",
    ] {
        assert!(text.contains(expected), "missing {expected:?} in\n{text}");
    }
}

#[tokio::test(flavor = "multi_thread")]
async fn crl_status_lists_each_source_with_age_next_update_and_entries() {
    let dir = tempfile::tempdir().unwrap();
    let root = Ca::root("Contoso Root");
    let issuing = root.intermediate("Contoso Issuing");
    write(
        dir.path(),
        "root.crl",
        &root.crl(&[], AT.plus(-9 * 86_400), AT.plus(-86_400)),
    );
    let server = Loopback::start(issuing.fresh_crl(&[1, 2, 3])).await;
    let dead = "http://127.0.0.1:9/gone.crl".to_owned();
    let config = setup(
        dir.path(),
        &root,
        &["root.crl"],
        &[server.url("/issuing.crl"), dead],
    );

    let at = AT.to_string();
    let out =
        tokio::task::spawn_blocking(move || vouch(&["crl", "status", "-c", &config, "--at", &at]))
            .await
            .unwrap();
    let text = stdout(&out);
    assert_eq!(
        out.status.code(),
        Some(1),
        "a stale or missing source fails the status\n{text}"
    );
    assert!(text.contains("trust store cards"), "{text}");
    assert!(text.contains("entries      3"), "{text}");
    assert!(text.contains("state        STALE"), "{text}");
    assert!(text.contains("state        fresh"), "{text}");
    assert!(text.contains("NOT LOADED"), "{text}");
    assert!(text.contains("cannot connect"), "{text}");
    assert!(
        text.contains(&format!("next update  {}", AT.plus(86_400))),
        "{text}"
    );
}
