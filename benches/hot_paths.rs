//! Criterion benchmarks of vouch's hot paths, each beside the raw primitive that bounds it.
//!
//! Every group measures a path and its primitive over the same key and input, so that one run
//! gives their ratio; on a shared machine the ratios travel better than the times:
//!
//! - `hint`: checking Entra's `id_token_hint`, against one RSA-2048 verify and against the
//!   `jsonwebtoken` crate validating the same hint;
//! - `token`: building and signing the `id_token`, against one RSA-2048 sign;
//! - `otp`: checking a TOTP code and spending its step, against one HMAC keyed with the seed;
//! - `authorize`: Entra's whole authorize request through [`App::handle`] without TLS, against
//!   one verify of its hint, and again with the Prometheus recorder installed;
//! - `otp_step`: the code post that completes a sign-in, against one RSA-2048 sign.
//!
//! Inputs are made once, outside the measured code; hints carry an `iat` fixed at setup. A
//! code is accepted once per user and step, so the TOTP benches move their clock one step
//! per iteration, and every measured code post is checked to have posted a token.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::hint::black_box;
use std::sync::Arc;
use std::time::Duration;

use aws_lc_rs::encoding::AsDer as _;
use aws_lc_rs::hmac;
use aws_lc_rs::rand::SystemRandom;
use aws_lc_rs::rsa::{KeyPair as RsaKeyPair, KeySize};
use aws_lc_rs::signature::{
    ParsedPublicKey, RSA_PKCS1_2048_8192_SHA256, RSA_PKCS1_SHA256, RsaPublicKeyComponents,
};
use bytes::Bytes;
use criterion::{BatchSize, BenchmarkId, Criterion, criterion_group, criterion_main};
use entra_sim::authority::{Authority, SigningKey, compact};
use entra_sim::unix_now;
use entra_sim::{APP_ID, CLIENT_ID, DEFAULT_CLAIMS, REDIRECT_URI, TENANT, USER_OID, USER_SUB};
use http::{Request, header};
use http_body_util::{BodyExt as _, Full};
use serde_json::{Value, json};
use tokio::runtime::Runtime;
use vouch::app::App;
use vouch::config::Config;
use vouch::eam::transaction::Transaction;
use vouch::factor::otp::{self, Algorithm, STEP_SECS, TotpParams, UsedSteps};
use vouch::jose::b64url_decode;
use vouch::jose::hint::{EntraKey, Expectations, UnverifiedHint};
use vouch::jose::token::{self, IdTokenClaims};
use vouch::signer::{SoftwareSigner, TokenSigner as _};

const ISSUER: &str = "https://vouch.test";
const ENTRA_HOST: &str = "https://login.microsoftonline.com";
const NONCE: &str = "AwABEgEAAAADAOz_BQD0_8Xk";

fn config() -> Criterion {
    Criterion::default()
        .warm_up_time(Duration::from_secs(1))
        .measurement_time(Duration::from_secs(3))
}

/// The signing input and the decoded signature of a compact JWS.
fn signed_parts(token: &str) -> (Vec<u8>, Vec<u8>) {
    let (input, signature) = token.rsplit_once('.').expect("a compact JWS");
    let signature = b64url_decode(signature, "signature").expect("base64url signature");
    (input.as_bytes().to_vec(), signature)
}

/// A member of a JWK, base64url-decoded.
fn jwk_part(jwk: &Value, name: &'static str) -> Vec<u8> {
    let text = jwk[name].as_str().expect(name);
    b64url_decode(text, name).expect(name)
}

/// The public key of a JWK, parsed once as vouch parses Entra's keys.
fn parsed_key(jwk: &Value) -> ParsedPublicKey {
    let (n, e) = (jwk_part(jwk, "n"), jwk_part(jwk, "e"));
    RsaPublicKeyComponents { n: &n, e: &e }
        .to_parsed_public_key(&RSA_PKCS1_2048_8192_SHA256)
        .expect("an RSA-2048 public key")
}

/// A hint shaped like Microsoft's example, signed by `key`, and the time it was issued.
fn example_hint(key: &SigningKey) -> (String, i64) {
    let iat = unix_now();
    let claims = json!({
        "ver": "2.0",
        "iss": format!("{ENTRA_HOST}/{TENANT}/v2.0"),
        "sub": USER_SUB,
        "aud": APP_ID,
        "exp": iat - 1,
        "iat": iat,
        "nbf": iat,
        "name": "Test User 2",
        "preferred_username": "testuser2@contoso.com",
        "oid": USER_OID,
        "tid": TENANT,
    });
    (compact(key, &Authority::hint_header(key), &claims), iat)
}

#[derive(serde::Deserialize)]
struct PeerClaims {
    sub: String,
    oid: String,
    tid: String,
}

/// The `jsonwebtoken` crate set up as a user would for a hint: RS256, `iss` and `aud`
/// checked, `exp` not, since Entra sends hints already expired.
fn peer_validator(jwk: &Value) -> (jsonwebtoken::DecodingKey, jsonwebtoken::Validation) {
    let (n, e) = (jwk["n"].as_str().expect("n"), jwk["e"].as_str().expect("e"));
    let key = jsonwebtoken::DecodingKey::from_rsa_components(n, e).expect("RSA components");
    let mut validation = jsonwebtoken::Validation::new(jsonwebtoken::Algorithm::RS256);
    validation.validate_exp = false;
    validation.set_required_spec_claims(&["iss", "aud", "sub"]);
    validation.set_issuer(&[format!("{ENTRA_HOST}/{TENANT}/v2.0")]);
    validation.set_audience(&[APP_ID]);
    (key, validation)
}

fn hint(c: &mut Criterion) {
    let signing_key = SigningKey::generate().expect("Entra key");
    let jwk = signing_key.jwk("entra");
    let (token, iat) = example_hint(&signing_key);
    let (input, signature) = signed_parts(&token);

    let raw = parsed_key(&jwk);
    let (n, e) = (jwk_part(&jwk, "n"), jwk_part(&jwk, "e"));
    let key = EntraKey::from_components(signing_key.kid.clone(), &n, &e).expect("Entra key");
    let issuer = format!("{ENTRA_HOST}/{TENANT}/v2.0");
    let audiences = [APP_ID];
    let expect = Expectations {
        issuer: &issuer,
        audiences: &audiences,
        now: iat + 1,
        max_age: 600,
        skew: 300,
    };
    let (peer_key, validation) = peer_validator(&jwk);

    let vouch = || UnverifiedHint::parse(&token).and_then(|h| h.verify(&key, &expect));
    let peer = || jsonwebtoken::decode::<PeerClaims>(&token, &peer_key, &validation);
    assert_eq!(vouch().expect("vouch accepts the hint").oid, USER_OID);
    assert!(raw.verify_sig(&input, &signature).is_ok());
    let claims = peer().expect("jsonwebtoken accepts the hint").claims;
    assert_eq!(
        [claims.sub, claims.oid, claims.tid],
        [USER_SUB, USER_OID, TENANT]
    );

    let mut group = c.benchmark_group("hint");
    group.measurement_time(Duration::from_secs(5));
    group.bench_function(BenchmarkId::new("path", "vouch"), |b| {
        b.iter(|| black_box(vouch()))
    });
    group.bench_function(BenchmarkId::new("primitive", "rsa2048_verify"), |b| {
        b.iter(|| black_box(raw.verify_sig(black_box(&input), black_box(&signature))))
    });
    group.bench_function(BenchmarkId::new("peer", "jsonwebtoken"), |b| {
        b.iter(|| black_box(peer()))
    });
    group.finish();
}

/// The claims vouch signs for the example user after an OTP sign-in.
fn id_token_claims(now: i64) -> IdTokenClaims<'static> {
    IdTokenClaims {
        iss: ISSUER,
        aud: CLIENT_ID,
        sub: USER_SUB,
        iat: now,
        nbf: now,
        exp: now + 300,
        nonce: Some(NONCE),
        acr: "possessionorinherence",
        amr: ["otp"],
    }
}

fn token(c: &mut Criterion) {
    let pkcs8 = RsaKeyPair::generate(KeySize::Rsa2048)
        .and_then(|k| k.as_der())
        .expect("RSA-2048 key");
    let signer =
        SoftwareSigner::new(pkcs8.as_ref(), b"bench certificate".to_vec()).expect("signer");
    let raw = RsaKeyPair::from_pkcs8(pkcs8.as_ref()).expect("the same key");
    let kid = signer.published().kid.clone();
    let claims = id_token_claims(unix_now());

    let issue = || {
        let input = token::signing_input(&kid, &claims);
        let signature = signer.sign(input.as_bytes()).expect("signature");
        token::assemble(input, &signature)
    };
    let input = token::signing_input(&kid, &claims);
    let (rng, mut signature) = (SystemRandom::new(), vec![0; raw.public_modulus_len()]);

    let mut group = c.benchmark_group("token");
    group.bench_function(BenchmarkId::new("path", "vouch"), |b| {
        b.iter(|| black_box(issue()))
    });
    group.bench_function(BenchmarkId::new("primitive", "rsa2048_sign"), |b| {
        b.iter(|| {
            raw.sign(
                &RSA_PKCS1_SHA256,
                &rng,
                black_box(input.as_bytes()),
                &mut signature,
            )
        })
    });
    group.finish();
}

fn otp(c: &mut Criterion) {
    let mut group = c.benchmark_group("otp");
    for algorithm in [Algorithm::Sha1, Algorithm::Sha256] {
        let params = TotpParams {
            algorithm,
            digits: 6,
        };
        let name = algorithm.name().to_ascii_lowercase();
        bench_totp(&mut group, &name, params);
        bench_hmac(&mut group, &name, algorithm);
    }
    group.finish();
}

/// A correct code checked over the window and its step spent; each iteration is one step
/// later than the last, so the replay guard accepts it as a real sign-in would.
fn bench_totp(group: &mut Group<'_>, name: &str, params: TotpParams) {
    let seed = vec![0x5a; params.algorithm.seed_len()];
    let used = UsedSteps::default();
    let user = format!("{TENANT}/{USER_OID}");
    let mut now = unix_now();
    let check = |(now, code): (i64, String)| {
        let step = otp::matching_step(&seed, params, &code, now)?;
        used.claim(&user, step, now)
    };
    group.bench_function(BenchmarkId::new("path", format!("totp_{name}")), |b| {
        let next = || {
            now += STEP_SECS;
            (now, otp::totp(&seed, params, now))
        };
        let accepted = |input| check(input).expect("accepted");
        b.iter_batched(next, accepted, BatchSize::SmallInput)
    });
}

fn bench_hmac(group: &mut Group<'_>, name: &str, algorithm: Algorithm) {
    let hmac_algorithm = match algorithm {
        Algorithm::Sha1 => hmac::HMAC_SHA1_FOR_LEGACY_USE_ONLY,
        Algorithm::Sha256 => hmac::HMAC_SHA256,
        Algorithm::Sha512 => hmac::HMAC_SHA512,
    };
    let seed = vec![0x5a; algorithm.seed_len()];
    let counter = u64::try_from(unix_now() / STEP_SECS)
        .unwrap_or(0)
        .to_be_bytes();
    let mac = || hmac::sign(&hmac::Key::new(hmac_algorithm, &seed), &counter);
    group.bench_function(BenchmarkId::new("primitive", format!("hmac_{name}")), |b| {
        b.iter(|| black_box(mac()))
    });
}

type Group<'a> = criterion::BenchmarkGroup<'a, criterion::measurement::WallTime>;

/// An appliance in this process that trusts the Entra simulator on loopback, with the
/// example user enrolled for TOTP.
struct Stand {
    runtime: Runtime,
    entra: Authority,
    app: Arc<App>,
    seed: Vec<u8>,
    _dir: tempfile::TempDir,
}

impl Stand {
    fn start() -> Stand {
        let runtime = tokio::runtime::Builder::new_multi_thread()
            .worker_threads(1)
            .enable_all()
            .build()
            .expect("runtime");
        let entra = runtime
            .block_on(Authority::start())
            .expect("Entra simulator");
        let dir = tempfile::tempdir().expect("state directory");
        let app = Arc::new(App::new(stand_config(&entra, &dir)).expect("appliance"));
        runtime.block_on(app.keys.refresh_all());

        let now = app.clock.now();
        let params = TotpParams::default();
        let store = &app.store;
        let seed = store
            .enroll_totp(TENANT, USER_OID, params, false, now)
            .expect("enrol");
        Stand {
            runtime,
            entra,
            app,
            seed,
            _dir: dir,
        }
    }

    fn post(&self, path: &str, form: &Bytes) -> Request<Full<Bytes>> {
        Request::post(path)
            .header(header::CONTENT_TYPE, "application/x-www-form-urlencoded")
            .body(Full::new(form.clone()))
            .expect("request")
    }

    fn handle(&self, req: Request<Full<Bytes>>) -> http::Response<Full<Bytes>> {
        self.runtime.block_on(self.app.clone().handle(req))
    }

    /// The status and text of the page the appliance answers `req` with.
    fn answer(&self, req: Request<Full<Bytes>>) -> (u16, String) {
        let page = self.handle(req);
        let status = page.status().as_u16();
        let body = self.runtime.block_on(page.into_body().collect());
        let body = body.expect("page body").to_bytes();
        (status, String::from_utf8_lossy(&body).into_owned())
    }
}

fn stand_config(entra: &Authority, dir: &tempfile::TempDir) -> Config {
    std::fs::write(dir.path().join("entra-ca.pem"), &entra.ca_pem).expect("CA file");
    let text = format!(
        r#"
        [server]
        issuer = "{ISSUER}"
        listen = ["127.0.0.1:0"]
        state_dir = "state"

        [[tenant]]
        id = "{TENANT}"
        app_id = "{APP_ID}"
        client_id = "{CLIENT_ID}"

        [tenant.test_authority]
        url = "{origin}"
        ca_file = "entra-ca.pem"
        "#,
        origin = entra.origin,
    );
    Config::parse(&text, "bench.toml", dir.path()).expect("stand configuration")
}

/// The form Entra's page posts for `hint`.
fn entra_form(hint: &str) -> Bytes {
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("scope", "openid")
        .append_pair("response_type", "id_token")
        .append_pair("response_mode", "form_post")
        .append_pair("client_id", CLIENT_ID)
        .append_pair("redirect_uri", REDIRECT_URI)
        .append_pair("nonce", NONCE)
        .append_pair("state", "rQQIARAAjZE9aMNAFMdfk1I")
        .append_pair("id_token_hint", hint)
        .append_pair("claims", DEFAULT_CLAIMS)
        .append_pair("client-request-id", "0f3c7a5e-1b2d-4e8f-9a6b-5c4d3e2f1a0b")
        .finish();
    Bytes::from(form)
}

/// The sealed transaction an OTP page carries.
fn sealed_transaction(page: &str) -> &str {
    let (_, rest) = page.split_once("name=\"txn\" value=\"").expect("OTP page");
    rest.split('"').next().expect("transaction")
}

fn authorize(c: &mut Criterion) {
    let stand = Stand::start();
    let hint = stand.entra.default_hint();
    let form = entra_form(&hint);
    let route = stand.app.routes.authorize.clone();
    let (status, page) = stand.answer(stand.post(&route, &form));
    assert_eq!(status, 200, "{page}");
    assert!(page.contains("Enter your code"), "not the OTP page: {page}");

    let raw = parsed_key(&stand.entra.current_key().jwk("entra"));
    let (input, signature) = signed_parts(&hint);
    let mut group = c.benchmark_group("authorize");
    group.bench_function(BenchmarkId::new("path", "vouch"), |b| {
        b.iter(|| stand.handle(stand.post(&route, &form)))
    });
    group.bench_function(BenchmarkId::new("primitive", "rsa2048_verify"), |b| {
        b.iter(|| black_box(raw.verify_sig(black_box(&input), black_box(&signature))))
    });
    // Last, since the recorder stays installed for the rest of the process.
    if vouch::oversight::metrics::install().is_ok() {
        group.bench_function(BenchmarkId::new("path", "vouch_with_metrics"), |b| {
            b.iter(|| stand.handle(stand.post(&route, &form)))
        });
    }
    group.finish();
}

/// A code post for a fresh transaction like `template`, one TOTP step after the last, so
/// that the transaction is unused and the code unspent.
fn next_code_post(stand: &Stand, template: &Transaction) -> Request<Full<Bytes>> {
    stand.app.clock.advance(STEP_SECS);
    let now = stand.app.clock.now();
    let mut txn = template.clone();
    let ttl = stand.app.config.transaction_ttl;
    (txn.id, txn.created, txn.expires) = (Transaction::new_id(), now, now + ttl);

    let sealed = stand.app.transactions.seal(&txn);
    let code = otp::totp(&stand.seed, TotpParams::default(), now);
    let form = form_urlencoded::Serializer::new(String::new())
        .append_pair("txn", &sealed)
        .append_pair("code", &code)
        .append_pair("action", "verify")
        .finish();
    stand.post(&stand.app.routes.otp, &Bytes::from(form))
}

/// The transaction an authorize request opens for the example user.
fn open_transaction(stand: &Stand) -> Transaction {
    let form = entra_form(&stand.entra.default_hint());
    let (_, page) = stand.answer(stand.post(&stand.app.routes.authorize, &form));
    let transactions = &stand.app.transactions;
    transactions
        .open(sealed_transaction(&page))
        .expect("a sealed transaction")
}

/// Whether a code post was answered with a token posted to Entra.
fn posts_token(stand: &Stand, req: Request<Full<Bytes>>) -> bool {
    let (status, page) = stand.answer(req);
    status == 200 && page.contains("name=\"id_token\"")
}

fn otp_step(c: &mut Criterion) {
    let stand = Stand::start();
    let template = open_transaction(&stand);
    assert!(posts_token(&stand, next_code_post(&stand, &template)));

    let key_file = stand.app.config.state_dir.join("signing/key.pk8");
    let pkcs8 = std::fs::read(key_file).expect("the appliance's signing key");
    let raw = RsaKeyPair::from_pkcs8(&pkcs8).expect("an RSA key");
    let (rng, mut signature) = (SystemRandom::new(), vec![0; raw.public_modulus_len()]);
    let kid = &stand.app.signer.published().kid;
    let input = token::signing_input(kid, &id_token_claims(unix_now()));

    let mut group = c.benchmark_group("otp_step");
    group.bench_function(BenchmarkId::new("path", "vouch"), |b| {
        let next = || next_code_post(&stand, &template);
        let signed_in = |req| assert!(posts_token(&stand, req), "a code post was refused");
        b.iter_batched(next, signed_in, BatchSize::PerIteration)
    });
    group.bench_function(BenchmarkId::new("primitive", "rsa2048_sign"), |b| {
        let input = input.as_bytes();
        b.iter(|| raw.sign(&RSA_PKCS1_SHA256, &rng, black_box(input), &mut signature))
    });
    group.finish();
}

criterion_group! {
    name = hot_paths;
    config = config();
    targets = hint, token, otp, authorize, otp_step
}
criterion_main!(hot_paths);
