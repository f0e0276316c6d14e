//! Token signing by a PKCS#11 token: SoftHSM2 tokens each test makes for itself, whole
//! sign-ins checked the way Entra checks them, failures of the token, and key rotation.

#![allow(clippy::expect_used, clippy::unwrap_used)]

mod common;

use std::os::unix::fs::PermissionsExt as _;
use std::path::Path;
use std::process::Command;
use std::sync::Arc;
use std::sync::atomic::{AtomicBool, Ordering};
use std::time::{Duration, Instant};

use common::*;
use vouch::app::App;
use vouch::factor::otp::TotpParams;
use vouch::signer::admin::{self, StageArgs};
use vouch::signer::{SignerPool, published_from_certificate};
use vouch_hsm::pkcs11::{KeyRef, Pkcs11Token};
use vouch_hsm::softhsm::TestToken;
use vouch_hsm::{HsmError, SigningKey, SigningSession};

const DAY: i64 = 24 * 3600;

fn token() -> (tempfile::TempDir, TestToken) {
    let dir = tempfile::tempdir().expect("tempdir");
    let token = TestToken::create(dir.path()).expect("SoftHSM token");
    (dir, token)
}

/// `[signer]` with one PKCS#11 backend for the token; `key` names the key.
fn pkcs11_signer(t: &TestToken, key: &str, pin_file: &Path) -> String {
    format!(
        r#"
        [signer]
        workers = 1
        [[signer.backend]]
        kind = "pkcs11"
        module = "{}"
        token = "{}"
        {key}
        pin_file = "{}"
        "#,
        t.module.display(),
        t.label,
        pin_file.display()
    )
}

/// A whole sign-in at the appliance's clock, returning the id_token.
async fn sign_in(stand: &Stand, seed: &[u8]) -> Option<String> {
    let page = stand.authorize(&Stand::entra_form(&stand.hint_now())).await;
    let code = stand.code(seed, TotpParams::default());
    let done = stand.submit_code(&page, &code).await;
    answer(&done).get("id_token").map(str::to_owned)
}

async fn jwks_kids(stand: &Stand) -> Vec<String> {
    let rp = stand.relying_party().await;
    rp.jwks["keys"]
        .as_array()
        .expect("keys")
        .iter()
        .map(|k| k["kid"].as_str().expect("kid").to_owned())
        .collect()
}

#[tokio::test]
async fn a_sign_in_signed_by_a_pkcs11_token_is_accepted_against_the_published_jwks() {
    let (dir, t) = token();
    let cert = t.add_key("signing", &[0x01], true).expect("key");
    let signer = pkcs11_signer(&t, "key_label = \"signing\"", &t.pin_file);
    let stand = Stand::start_with(&signer, "").await;
    let seed = stand.enroll(TotpParams::default());

    let token = sign_in(&stand, &seed).await.expect("a token");
    assert_eq!(kid_of(&token), kid(&cert));
    let rp = stand.relying_party().await;
    let key = &rp.jwks["keys"][0];
    use base64::Engine as _;
    let x5c = base64::engine::general_purpose::STANDARD
        .decode(key["x5c"][0].as_str().expect("x5c"))
        .expect("base64");
    assert_eq!(x5c, cert, "the JWKS publishes the token's certificate");
    rp.validate(&token, &expected())
        .expect("Entra accepts the token");
    stand.shutdown().await;
    drop(dir);
}

#[tokio::test]
async fn a_wrong_pin_stops_the_start_naming_the_token_and_the_return_value() {
    let (dir, t) = token();
    t.add_key("signing", &[0x01], true).expect("key");
    t.log_out_everyone().expect("logout");
    let wrong = dir.path().join("wrong.pin");
    std::fs::write(&wrong, "111111\n").expect("pin");
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).expect("chmod");

    let entra = entra_sim::Authority::start()
        .await
        .expect("Entra simulator");
    let state = tempfile::tempdir().expect("tempdir");
    let config = Stand::config_in(
        &entra,
        &state,
        &pkcs11_signer(&t, "key_id = \"01\"", &wrong),
    );
    let err = App::new(config)
        .err()
        .expect("the start is refused")
        .to_string();
    assert!(err.contains("PIN was refused"), "{err}");
    assert!(err.contains("CKR_PIN_INCORRECT"), "{err}");
    assert!(err.contains(&t.label), "{err}");
    assert!(!err.contains("111111"), "the PIN is never in a message");
}

#[tokio::test]
async fn a_missing_module_or_an_open_pin_file_stops_the_start_with_the_fix() {
    let (_dir, t) = token();
    t.add_key("signing", &[0x01], true).expect("key");
    let entra = entra_sim::Authority::start()
        .await
        .expect("Entra simulator");

    let state = tempfile::tempdir().expect("tempdir");
    let missing = pkcs11_signer(&t, "key_id = \"01\"", &t.pin_file).replace(
        &t.module.display().to_string(),
        "/opt/hsm/libabsent-pkcs11.so",
    );
    let config = Stand::config_in(&entra, &state, &missing);
    let err = App::new(config).err().expect("refused").to_string();
    assert!(err.contains("/opt/hsm/libabsent-pkcs11.so"), "{err}");

    std::fs::set_permissions(&t.pin_file, std::fs::Permissions::from_mode(0o640)).expect("chmod");
    let state = tempfile::tempdir().expect("tempdir");
    let open = pkcs11_signer(&t, "key_id = \"01\"", &t.pin_file);
    let config = Stand::config_in(&entra, &state, &open);
    let err = App::new(config).err().expect("refused").to_string();
    assert!(err.contains("chmod 600") && err.contains("0640"), "{err}");
}

#[tokio::test]
async fn a_token_that_fails_answers_temporarily_unavailable_and_signs_again_by_itself() {
    let (_dir, t) = token();
    t.add_key("signing", &[0x01], true).expect("key");
    let signer = pkcs11_signer(&t, "key_id = \"01\"", &t.pin_file);
    let stand = Stand::start_with(&signer, "").await;
    let seed = stand.enroll(TotpParams::default());
    assert!(sign_in(&stand, &seed).await.is_some());

    // Logging out every session of the process is what a token reset looks like to vouch.
    t.log_out_everyone().expect("logout");
    stand.app.clock.advance(30);
    let page = stand.authorize(&Stand::entra_form(&stand.hint_now())).await;
    let done = stand
        .submit_code(&page, &stand.code(&seed, TotpParams::default()))
        .await;
    assert_posted_error(&done, "temporarily_unavailable");

    let deadline = Instant::now() + Duration::from_secs(10);
    while !stand.app.signer.is_available() {
        assert!(Instant::now() < deadline, "the token did not come back");
        tokio::time::sleep(Duration::from_millis(20)).await;
    }
    stand.app.clock.advance(30);
    let token = sign_in(&stand, &seed).await.expect("signed again");
    let rp = stand.relying_party().await;
    rp.validate(&token, &expected()).expect("Entra accepts it");
    stand.shutdown().await;
}

/// A token key whose signatures wait while `hold` is set.
struct Held {
    key: vouch_hsm::pkcs11::Pkcs11Key,
    hold: Arc<AtomicBool>,
}

struct HeldSession(Box<dyn SigningSession>, Arc<AtomicBool>);

impl SigningKey for Held {
    fn name(&self) -> &str {
        self.key.name()
    }

    fn certificate_der(&self) -> &[u8] {
        self.key.certificate_der()
    }

    fn session(&self) -> Result<Box<dyn SigningSession>, HsmError> {
        Ok(Box::new(HeldSession(
            self.key.session()?,
            self.hold.clone(),
        )))
    }
}

impl SigningSession for HeldSession {
    fn sign_rs256(&mut self, input: &[u8]) -> Result<Vec<u8>, HsmError> {
        while self.1.load(Ordering::Acquire) {
            std::thread::sleep(Duration::from_millis(5));
        }
        self.0.sign_rs256(input)
    }
}

#[tokio::test]
async fn a_full_signer_queue_answers_temporarily_unavailable_at_once() {
    let (_dir, t) = token();
    t.add_key("signing", &[0x01], true).expect("key");
    let hold = Arc::new(AtomicBool::new(true));
    let held = hold.clone();
    let pkcs11 = Pkcs11Token::open(&t.config()).expect("token");
    let stand = Stand::with_pool("", move |_| {
        let key = pkcs11.key(&KeyRef::Id(vec![0x01]), None).expect("key");
        let published = published_from_certificate(key.certificate_der()).expect("cert");
        SignerPool::single(Arc::new(Held { key, hold: held }), published, 1, 1)
    })
    .await;
    let seed = stand.enroll(TotpParams::default());
    let first = stand.authorize(&Stand::entra_form(&stand.hint_now())).await;
    let second = stand.authorize(&Stand::entra_form(&stand.hint_now())).await;

    let signing = {
        let (browser, form) = (stand.browser.clone(), first.form().expect("form"));
        let code = stand.code(&seed, TotpParams::default());
        tokio::spawn(async move {
            let fields = [("code", code.as_str()), ("action", "verify")];
            browser.submit(&form, &fields).await
        })
    };
    let deadline = Instant::now() + Duration::from_secs(10);
    while !stand.app.signer.is_saturated() {
        assert!(
            Instant::now() < deadline,
            "the sign-in never reached the signer"
        );
        tokio::time::sleep(Duration::from_millis(10)).await;
    }
    let started = Instant::now();
    let late = stand.submit_code(&second, "000000").await;
    assert_posted_error(&late, "temporarily_unavailable");
    assert!(
        started.elapsed() < Duration::from_secs(1),
        "answered at once"
    );

    hold.store(false, Ordering::Release);
    let done = signing.await.expect("joined").expect("answered");
    let token = answer(&done).get("id_token").expect("token").to_owned();
    let rp = stand.relying_party().await;
    rp.validate(&token, &expected())
        .expect("signed once the signer had room");
    stand.shutdown().await;
}

#[tokio::test]
async fn a_rotation_goes_next_active_retiring_gone_and_every_token_verifies_in_its_time() {
    let (_dir, t) = token();
    let a = kid(&t.add_key("first", &[0x01], true).expect("key"));
    let b = kid(&t.add_key("second", &[0x02], true).expect("key"));
    let signer = pkcs11_signer(&t, "key_id = \"01\"", &t.pin_file);
    let stand = Stand::start_with(&signer, "").await;
    let seed = stand.enroll(TotpParams::default());
    let state = stand.state_dir();

    assert_eq!(jwks_kids(&stand).await, std::slice::from_ref(&a));
    let t1 = sign_in(&stand, &seed).await.expect("token");
    assert_eq!(kid_of(&t1), a);

    let stage = StageArgs {
        id: Some("02".into()),
        ..StageArgs::default()
    };
    let report = admin::stage(&stand.app.config, &stage, stand.app.clock.now()).expect("staged");
    assert!(report.contains(&b), "{report}");
    assert!(stand.app.signer.refresh(&state).expect("ring read"));
    assert_eq!(
        jwks_kids(&stand).await,
        [a.clone(), b.clone()],
        "next is published"
    );
    let listing = admin::list(&stand.app.config, stand.app.clock.now()).expect("list");
    assert!(listing.contains(&format!("next     {b}")), "{listing}");
    assert!(listing.contains(&format!("active   {a}")), "{listing}");
    stand.app.clock.advance(60);
    let t2 = sign_in(&stand, &seed).await.expect("token");
    assert_eq!(kid_of(&t2), a, "the next key does not sign yet");

    stand.app.clock.advance(2 * DAY);
    assert_eq!(
        jwks_kids(&stand).await,
        [b.clone(), a.clone()],
        "a is retiring"
    );
    let t3 = sign_in(&stand, &seed).await.expect("token");
    assert_eq!(kid_of(&t3), b, "the new key signs after the overlap");
    let rp = stand.relying_party().await;
    for token in [&t1, &t2, &t3] {
        rp.validate(token, &expected())
            .expect("every token so far verifies");
    }

    stand.app.clock.advance(2 * DAY);
    assert_eq!(
        jwks_kids(&stand).await,
        std::slice::from_ref(&b),
        "a is gone"
    );
    let t4 = sign_in(&stand, &seed).await.expect("token");
    let rp = stand.relying_party().await;
    rp.validate(&t4, &expected())
        .expect("the new key's tokens verify");
    let err = rp
        .validate(&t1, &expected())
        .expect_err("a gone key verifies nothing");
    assert!(err.contains("not in the JWKS"), "{err}");
    stand.shutdown().await;
}

#[tokio::test]
async fn a_staged_key_stays_staged_across_a_restart() {
    let (_dir, t) = token();
    let a = kid(&t.add_key("first", &[0x01], true).expect("key"));
    let b = kid(&t.add_key("second", &[0x02], true).expect("key"));
    let entra = entra_sim::Authority::start()
        .await
        .expect("Entra simulator");
    let state = tempfile::tempdir().expect("tempdir");
    let signer = pkcs11_signer(&t, "key_id = \"01\"", &t.pin_file);
    let config = Stand::config_in(&entra, &state, &signer);

    let app = App::new(config.clone()).expect("first start");
    let stage = StageArgs {
        label: Some("second".into()),
        ..StageArgs::default()
    };
    admin::stage(&app.config, &stage, app.clock.now()).expect("staged");
    drop(app);

    let again = App::new(config).expect("restart");
    let kids: Vec<String> = again
        .signer
        .published_keys()
        .into_iter()
        .map(|k| k.kid)
        .collect();
    assert_eq!(kids, [a.clone(), b]);
    assert_eq!(again.signer.published().kid, a, "the old key still signs");
}

#[tokio::test]
async fn staging_a_key_that_is_not_on_the_token_changes_nothing() {
    let (_dir, t) = token();
    t.add_key("first", &[0x01], true).expect("key");
    let entra = entra_sim::Authority::start()
        .await
        .expect("Entra simulator");
    let state = tempfile::tempdir().expect("tempdir");
    let config = Stand::config_in(
        &entra,
        &state,
        &pkcs11_signer(&t, "key_id = \"01\"", &t.pin_file),
    );
    let app = App::new(config).expect("start");
    let ring = std::fs::read(state.path().join("state/signing/ring.json")).expect("ring");
    for args in [
        StageArgs {
            id: Some("09".into()),
            ..StageArgs::default()
        },
        StageArgs {
            id: Some("zz".into()),
            ..StageArgs::default()
        },
        StageArgs::default(),
    ] {
        let err = admin::stage(&app.config, &args, app.clock.now()).expect_err("refused");
        assert!(!err.to_string().is_empty());
    }
    let after = std::fs::read(state.path().join("state/signing/ring.json")).expect("ring");
    assert_eq!(ring, after, "the ring is untouched");
}

#[test]
fn hsm_status_and_test_sign_report_the_token_key_and_certificate() {
    let (dir, t) = token();
    let cert = t.add_key("signing", &[0x01], true).expect("key");
    let config = dir.path().join("vouch.toml");
    let signer = pkcs11_signer(&t, "key_label = \"signing\"", &t.pin_file);
    std::fs::write(
        &config,
        format!("[server]\nstate_dir = \"state\"\n{signer}"),
    )
    .expect("config");
    let config = config.to_str().expect("utf-8");

    let out = run_vouch(dir.path(), &["hsm", "status", "--config", config]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    for needle in [
        t.label.as_str(),
        "libsofthsm2.so",
        "no failed tries reported",
        "CN=vouch test signing",
        &kid(&cert),
        "expires",
    ] {
        assert!(stdout.contains(needle), "{needle} missing from:\n{stdout}");
    }

    let out = run_vouch(dir.path(), &["hsm", "test-sign", "--config", config]);
    let stdout = text(&out.stdout);
    assert!(out.status.success(), "{stdout}{}", text(&out.stderr));
    assert!(
        stdout.starts_with("ok ") && stdout.contains("verified"),
        "{stdout}"
    );
}

#[test]
fn hsm_commands_exit_1_with_the_reason_when_the_token_cannot_be_used() {
    let (dir, t) = token();
    t.add_key("signing", &[0x01], true).expect("key");
    let write = |name: &str, signer: String| {
        let path = dir.path().join(name);
        std::fs::write(&path, format!("[server]\nstate_dir = \"state\"\n{signer}"))
            .expect("config");
        path.to_str().expect("utf-8").to_owned()
    };
    let wrong = dir.path().join("wrong.pin");
    std::fs::write(&wrong, "000000").expect("pin");
    std::fs::set_permissions(&wrong, std::fs::Permissions::from_mode(0o600)).expect("chmod");
    let cases = [
        (
            write("pin.toml", pkcs11_signer(&t, "key_id = \"01\"", &wrong)),
            "CKR_PIN_INCORRECT",
        ),
        (
            write(
                "module.toml",
                pkcs11_signer(&t, "key_id = \"01\"", &t.pin_file)
                    .replace(&t.module.display().to_string(), "/nowhere/libp11.so"),
            ),
            "/nowhere/libp11.so",
        ),
        (
            write(
                "key.toml",
                pkcs11_signer(&t, "key_id = \"7f\"", &t.pin_file),
            ),
            "id 7f",
        ),
    ];
    for (config, reason) in cases {
        for command in ["status", "test-sign"] {
            let out = run_vouch(dir.path(), &["hsm", command, "--config", &config]);
            let stderr = text(&out.stderr);
            assert_eq!(out.status.code(), Some(1), "{config} {command}: {stderr}");
            assert!(stderr.contains(reason), "{reason} missing from: {stderr}");
        }
    }
    let bad = write("bad.toml", pkcs11_signer(&t, "", &t.pin_file));
    let out = run_vouch(dir.path(), &["hsm", "status", "--config", &bad]);
    assert_eq!(out.status.code(), Some(64), "{}", text(&out.stderr));
}

#[test]
fn keys_commands_take_a_software_key_from_next_to_active_and_keep_the_old_one_retiring() {
    let dir = tempfile::tempdir().expect("tempdir");
    let out = run_vouch(dir.path(), &["keys"]);
    let first = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(first.starts_with("active "), "{first}");
    let old = first.split_whitespace().nth(1).expect("kid").to_owned();

    let out = run_vouch(dir.path(), &["keys", "stage"]);
    let staged = text(&out.stdout);
    assert!(out.status.success(), "{}", text(&out.stderr));
    let new = staged.split_whitespace().nth(1).expect("kid").to_owned();
    assert!(staged.contains("signs from"), "{staged}");

    let out = run_vouch(dir.path(), &["keys", "show"]);
    let listing = text(&out.stdout);
    assert!(listing.contains(&format!("next     {new}")), "{listing}");
    assert!(listing.contains(&format!("active   {old}")), "{listing}");
    assert!(listing.contains("retiring at"), "{listing}");

    let out = run_vouch(dir.path(), &["keys", "stage"]);
    assert_eq!(out.status.code(), Some(64), "a second stage is refused");
    assert!(
        text(&out.stderr).contains("already staged"),
        "{}",
        text(&out.stderr)
    );

    let out = run_vouch(dir.path(), &["keys", "promote"]);
    assert!(out.status.success(), "{}", text(&out.stderr));
    assert!(text(&out.stdout).contains("warning: it was published only"));
    let out = run_vouch(dir.path(), &["keys"]);
    let listing = text(&out.stdout);
    assert!(listing.contains(&format!("active   {new}")), "{listing}");
    assert!(listing.contains(&format!("retiring {old}")), "{listing}");
    assert!(listing.contains("gone at"), "{listing}");
}

#[test]
fn a_pin_from_systemd_credentials_is_read_from_the_credentials_directory_only() {
    let (dir, t) = token();
    t.add_key("signing", &[0x01], true).expect("key");
    let credentials = dir.path().join("credentials");
    std::fs::create_dir(&credentials).expect("dir");
    std::fs::copy(&t.pin_file, credentials.join("hsm-pin")).expect("credential");
    std::fs::set_permissions(
        credentials.join("hsm-pin"),
        std::fs::Permissions::from_mode(0o400),
    )
    .expect("chmod");
    let signer = pkcs11_signer(&t, "key_id = \"01\"", Path::new("unused"))
        .replace("pin_file = \"unused\"", "pin_credential = \"hsm-pin\"");
    let config = dir.path().join("vouch.toml");
    std::fs::write(
        &config,
        format!("[server]\nstate_dir = \"state\"\n{signer}"),
    )
    .expect("config");
    let args = [
        "hsm",
        "test-sign",
        "--config",
        config.to_str().expect("utf-8"),
    ];

    let out = Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(args)
        .env("CREDENTIALS_DIRECTORY", &credentials)
        .output()
        .expect("vouch runs");
    assert!(out.status.success(), "{}", text(&out.stderr));

    let out = Command::new(env!("CARGO_BIN_EXE_vouch"))
        .args(args)
        .env_remove("CREDENTIALS_DIRECTORY")
        .output()
        .expect("vouch runs");
    assert_eq!(out.status.code(), Some(1));
    assert!(
        text(&out.stderr).contains("LoadCredential"),
        "{}",
        text(&out.stderr)
    );
}
