//! Short real loads: a stand prepared by the tool, the appliance served in this process from
//! the stand's configuration, and a closed loop whose every token must validate, for each
//! factor.

#![allow(clippy::unwrap_used, clippy::expect_used)]

use std::sync::Arc;
use std::time::Duration;

use vouch::app::App;
use vouch::config::Config;
use vouch::server::Server;
use vouch_loadtest::cli::{Appliance, Common, Load, RunPlan};
use vouch_loadtest::flow::Factor;
use vouch_loadtest::report::RunReport;
use vouch_loadtest::session::Session;
use vouch_loadtest::stand::{Stand, free_loopback_port};
use vouch_loadtest::{bound, run};

const USERS: usize = 60;

fn ports() -> [std::net::SocketAddr; 3] {
    [(); 3].map(|()| free_loopback_port().unwrap())
}

async fn appliance(stand: &Stand) -> Server {
    let config = Config::load(&stand.config_path()).expect("the stand's configuration");
    let tls = vouch::provision::tls_config(&config.state_dir, None).expect("TLS");
    let app = Arc::new(App::new(config).expect("app"));
    Server::start(app, tls, &[stand.manifest.appliance])
        .await
        .expect("server")
}

/// A two-second closed loop of four virtual users proving `factor` against a fresh stand.
async fn short_run(factor: Factor) -> RunReport {
    let dir = tempfile::tempdir().unwrap();
    Stand::prepare(dir.path(), USERS, ports()).unwrap();
    short_run_in(dir.path(), factor).await
}

/// A two-second closed loop against an appliance started for the run from the stand in `dir`
/// and stopped after it.
async fn short_run_in(dir: &std::path::Path, factor: Factor) -> RunReport {
    let stand = Stand::load(dir).unwrap();
    let addr = stand.manifest.appliance;
    let server = appliance(&stand).await;

    let common = Common {
        appliance: Appliance::Target {
            addr,
            pid: Some(std::process::id()),
        },
        dir: Some(dir.to_owned()),
        users: USERS,
        json: None,
    };
    let session = Session::open(&common, false, factor).await;
    let session = Arc::new(session.expect("session"));
    let plan = RunPlan {
        common,
        load: Load::Closed { concurrent: 4 },
        duration: Duration::from_secs(2),
        new_connection: false,
        http1: false,
        factor,
    };
    let bound = bound::measure(Duration::from_millis(20), factor).unwrap();
    let report = run::run(&plan, session.clone(), &bound).await;
    session.close().await;
    server.shutdown().await;
    report.expect("the run")
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_closed_loop_completes_sign_ins_whose_every_token_validates() {
    let report = short_run(Factor::Otp).await;
    assert_eq!(report.errors_total, 0, "{}", report.text());
    assert!(report.signins_ok >= 24, "{}", report.text());
    assert_eq!(report.tokens_validated, report.signins_ok);
    assert_eq!(report.latency.signin.count, report.signins_ok);
    assert_eq!(report.latency.otp.count, report.signins_ok);
    assert_eq!(report.latency.choose.count, 0, "OTP hints offer TOTP alone");
    assert!(report.efficiency.is_some_and(|e| e.cpu_cores_used > 0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_mobile_pki_loop_chooses_the_phone_and_every_hwk_token_validates() {
    let report = short_run(Factor::MobilePki).await;
    assert_eq!(report.errors_total, 0, "{}", report.text());
    assert!(report.signins_ok >= 12, "{}", report.text());
    assert_eq!(report.factor, "mobile-pki");
    let steps = report.latency;
    for step in [steps.choose, steps.phone, steps.answer, steps.signin] {
        assert_eq!(step.count, report.signins_ok, "{}", report.text());
    }
    assert_eq!(steps.otp.count, 0);
    assert!(report.efficiency.is_some_and(|e| e.cpu_cores_used > 0.0));
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn a_short_smart_card_loop_presents_each_users_card_and_every_sc_token_validates() {
    let report = short_run(Factor::SmartCard).await;
    assert_eq!(report.errors_total, 0, "{}", report.text());
    assert!(report.signins_ok >= 12, "{}", report.text());
    assert_eq!(report.factor, "smart-card");
    let steps = report.latency;
    for step in [steps.choose, steps.card, steps.signin] {
        assert_eq!(step.count, report.signins_ok, "{}", report.text());
    }
    assert_eq!(steps.otp.count + steps.phone.count + steps.key.count, 0);
}

#[tokio::test(flavor = "multi_thread", worker_threads = 2)]
async fn security_key_loads_validate_every_fido_token_and_counters_carry_across_restarts() {
    let dir = tempfile::tempdir().unwrap();
    Stand::prepare(dir.path(), USERS, ports()).unwrap();
    for run in ["first", "second, on a restarted appliance"] {
        let report = short_run_in(dir.path(), Factor::Fido).await;
        assert_eq!(report.errors_total, 0, "{run} run: {}", report.text());
        assert!(report.signins_ok >= 12, "{run} run: {}", report.text());
        assert_eq!(report.factor, "fido");
        let steps = report.latency;
        assert_eq!(steps.key.count, report.signins_ok, "{}", report.text());
        assert_eq!(
            steps.choose.count + steps.otp.count,
            0,
            "key holders have one factor"
        );
    }
}
