//! Drawing: a pure function of the console's state and the last snapshot. Every frame is
//! drawn whole into ratatui's buffer, which sends only the cells that changed, so the screen
//! does not flicker; at 80×24 every view fits.

use ratatui::Frame;
use ratatui::layout::{Constraint, Layout, Rect};
use ratatui::style::{Color, Modifier, Style, Stylize as _};
use ratatui::text::{Line, Span};
use ratatui::widgets::{Block, Borders, Cell, Clear, Paragraph, Row, Sparkline, Table, Tabs, Wrap};

use crate::app::{App, KEYS, Tab, Typing};
use crate::snapshot::{Link, Snapshot};

pub fn render(frame: &mut Frame, app: &App, snapshot: &Snapshot) {
    let banner_height = if matches!(snapshot.link, Link::Down { .. }) {
        3
    } else {
        1
    };
    let [tabs, banner, body, footer] = Layout::vertical([
        Constraint::Length(1),
        Constraint::Length(banner_height),
        Constraint::Min(0),
        Constraint::Length(1),
    ])
    .areas(frame.area());

    let titles = Tab::ALL
        .iter()
        .enumerate()
        .map(|(i, t)| format!("{} {}", i + 1, t.title()));
    let selected = Tab::ALL.iter().position(|t| *t == app.tab).unwrap_or(0);
    let tab_bar = Tabs::new(titles)
        .select(selected)
        .highlight_style(Style::new().add_modifier(Modifier::REVERSED));
    frame.render_widget(tab_bar, tabs);
    frame.render_widget(link_banner(snapshot), banner);

    match app.tab {
        Tab::Dashboard => dashboard(frame, body, snapshot),
        Tab::Tenants => tenants(frame, body, snapshot),
        Tab::Keys => keys(frame, body, snapshot),
        Tab::Enrolments => enrolments(frame, body, app, snapshot),
        Tab::Feed => feed(frame, body, app, snapshot),
        Tab::Trust => trust(frame, body, snapshot),
    }
    frame.render_widget(footer_line(app, snapshot), footer);

    if app.help {
        help(frame, body);
    }
    if let Some(confirm) = &app.confirm {
        let text = format!("{}\n\ny yes    n no", confirm.question);
        dialog(frame, body, "Confirm", &text);
    } else if let Some(message) = app.message(snapshot) {
        dialog(frame, body, "Appliance answered (c to close)", message);
    }
}

fn link_banner(snapshot: &Snapshot) -> Paragraph<'_> {
    match &snapshot.link {
        Link::Connecting => Paragraph::new(format!("connecting to {}…", snapshot.socket)),
        Link::Up => {
            let s = &snapshot.status;
            Paragraph::new(format!(
                "connected · vouch {} · up {} · {} · log {}",
                s.version,
                duration(s.uptime_secs),
                s.issuer,
                s.log_filter
            ))
        }
        Link::Down { reason, fix } => Paragraph::new(vec![
            Line::from(reason.as_str()).fg(Color::Red).bold(),
            Line::from(fix.as_str()),
            Line::from("retrying every second"),
        ])
        .wrap(Wrap { trim: true }),
    }
}

fn footer_line<'a>(app: &'a App, snapshot: &Snapshot) -> Paragraph<'a> {
    match &app.typing {
        Some(Typing::Filter) => {
            Paragraph::new(format!("filter: {}▏ (Enter keep, Esc clear)", app.input))
        }
        Some(Typing::Enrol) => {
            Paragraph::new(format!("enrol TID OID [UPN]: {}▏ (Enter, Esc)", app.input))
        }
        None => {
            let filter = if app.filter.is_empty() {
                String::new()
            } else {
                format!(" · filter \"{}\"", app.filter)
            };
            let total = snapshot.total();
            Paragraph::new(format!(
                "? help · q quit · Tab views · / filter{filter} · {total} sign-ins"
            ))
            .fg(Color::DarkGray)
        }
    }
}

/// `1d 02:03:04`-style for uptimes and ages.
pub fn duration(secs: u64) -> String {
    let (d, h, m, s) = (secs / 86_400, secs / 3600 % 24, secs / 60 % 60, secs % 60);
    if d > 0 {
        format!("{d}d {h:02}:{m:02}:{s:02}")
    } else {
        format!("{h:02}:{m:02}:{s:02}")
    }
}

/// A latency in the unit that keeps it short: µs below a millisecond, else ms.
fn micros(us: u64) -> String {
    if us < 1000 {
        format!("{us}µs")
    } else {
        format!("{:.1}ms", us as f64 / 1000.0)
    }
}

fn clock(unix: i64) -> String {
    let t = unix.rem_euclid(86_400);
    format!("{:02}:{:02}:{:02}", t / 3600, t / 60 % 60, t % 60)
}

fn boxed(title: &str) -> Block<'_> {
    Block::new().borders(Borders::ALL).title(title)
}

fn dashboard(frame: &mut Frame, area: Rect, s: &Snapshot) {
    let [chart, middle, bottom] = Layout::vertical([
        Constraint::Length(6),
        Constraint::Length(7),
        Constraint::Min(3),
    ])
    .areas(area);

    let rates = &s.counters.per_second;
    let now = rates.last().copied().unwrap_or(0);
    let title = format!(
        "Sign-ins/s, last {} s · now {now}/s · total {}",
        rates.len(),
        s.total()
    );
    let width = chart.width.saturating_sub(2) as usize;
    let shown = &rates[rates.len().saturating_sub(width)..];
    frame.render_widget(
        Sparkline::default()
            .block(boxed(&title))
            .data(shown)
            .fg(Color::Green),
        chart,
    );

    let [outcomes, latency, signer] = Layout::horizontal([
        Constraint::Percentage(32),
        Constraint::Percentage(38),
        Constraint::Percentage(30),
    ])
    .areas(middle);
    let rows = s
        .counters
        .by_outcome
        .iter()
        .map(|(k, v)| Row::new([k.clone(), v.to_string()]));
    let table =
        Table::new(rows, [Constraint::Min(10), Constraint::Length(7)]).block(boxed("Outcomes"));
    frame.render_widget(table, outcomes);

    let header = Row::new(["step", "p50", "p90", "p99"]).bold();
    let rows = ["hint", "factor", "signing"].map(|step| {
        let p = s.counters.latency_us.get(step);
        let ms = |q: &str| {
            p.and_then(|p| p.get(q))
                .map_or("-".to_owned(), |us| micros(*us))
        };
        Row::new([step.to_owned(), ms("p50"), ms("p90"), ms("p99")])
    });
    let widths = [
        Constraint::Length(7),
        Constraint::Length(6),
        Constraint::Length(6),
        Constraint::Length(6),
    ];
    frame.render_widget(
        Table::new(rows, widths)
            .header(header)
            .block(boxed("Latency")),
        latency,
    );

    let sig = &s.status.signer;
    let lines = vec![
        Line::from(sig.summary()),
        Line::from(format!("queue {}/{}", sig.in_flight, sig.capacity)),
        Line::from(format!("workers {}", sig.workers)),
        Line::from(format!(
            "in flight {}/{}",
            s.status.signins_in_flight, s.status.max_signins_in_flight
        )),
        Line::from(format!("completed {}", s.status.transactions_completed)),
    ];
    frame.render_widget(Paragraph::new(lines).block(boxed("Signer")), signer);

    let [left, errors] =
        Layout::horizontal([Constraint::Percentage(55), Constraint::Percentage(45)]).areas(bottom);
    let [caches, revocation] =
        Layout::vertical([Constraint::Min(3), Constraint::Length(3)]).areas(left);
    let checks = &s.status.revocation;
    let line = Line::from(checks.line());
    let line = if checks.all_fresh() {
        line
    } else {
        line.fg(Color::Red)
    };
    frame.render_widget(Paragraph::new(line).block(boxed("Revocation")), revocation);
    let rows = s.tenants.iter().map(|t| {
        let cache = t.entra_keys.clone().unwrap_or_default();
        let age = cache.age_secs.map_or("never".to_owned(), duration);
        let state = if cache.last_error.is_some() {
            "error"
        } else {
            "ok"
        };
        Row::new([
            short(&t.name, 14),
            cache.keys.to_string(),
            age,
            state.to_owned(),
        ])
    });
    let widths = [
        Constraint::Min(10),
        Constraint::Length(4),
        Constraint::Length(9),
        Constraint::Length(5),
    ];
    let table = Table::new(rows, widths)
        .header(Row::new(["tenant", "keys", "age", ""]).bold())
        .block(boxed("Entra keys"));
    frame.render_widget(table, caches);

    let mut reasons: Vec<_> = s.counters.errors_by_reason.iter().collect();
    reasons.sort_by(|a, b| b.1.cmp(a.1));
    let rows = reasons
        .into_iter()
        .map(|(k, v)| Row::new([k.clone(), v.to_string()]));
    let table = Table::new(rows, [Constraint::Min(10), Constraint::Length(6)])
        .block(boxed("Errors by reason"));
    frame.render_widget(table, errors);
}

fn trust(frame: &mut Frame, area: Rect, s: &Snapshot) {
    let blank = String::new;
    let mut rows = Vec::new();
    for store in &s.trust_stores {
        let tenants = match &store.tenants {
            serde_json::Value::Array(ids) => format!("{} tenant(s)", ids.len()),
            _ => "every tenant".to_owned(),
        };
        rows.push(
            Row::new([
                store.name.clone(),
                format!("{tenants} · amr {} · {} root(s)", store.amr, store.roots),
                format!("OCSP {}", store.ocsp),
                format!("{} links", store.chain_cache),
                blank(),
                blank(),
            ])
            .bold(),
        );
        if store.ocsp != "off" {
            let answers = format!(
                "OCSP: {} answers cached, {} responders failing",
                store.ocsp_answers_cached, store.ocsp_failing
            );
            rows.push(Row::new([
                blank(),
                answers,
                blank(),
                blank(),
                blank(),
                blank(),
            ]));
        }
        if store.crls.is_empty() {
            let none = "no CRL source".to_owned();
            rows.push(Row::new([
                blank(),
                none,
                blank(),
                blank(),
                blank(),
                blank(),
            ]));
        }
        for crl in &store.crls {
            let state = match crl.state.as_str() {
                "fresh" => "fresh",
                "stale" => "STALE",
                _ => "NOT LOADED",
            };
            let detail = match (&crl.last_error, &crl.next_update) {
                (Some(error), _) => error.clone(),
                (None, Some(next)) => next.clone(),
                (None, None) => "-".to_owned(),
            };
            let row = Row::new([
                blank(),
                ending(&crl.source, 32),
                state.to_owned(),
                crl.age_secs
                    .map_or("-".into(), |a| duration(a.max(0) as u64)),
                crl.entries.map_or("-".into(), |e| e.to_string()),
                detail,
            ]);
            rows.push(if crl.state == "fresh" {
                row
            } else {
                row.fg(Color::Red)
            });
        }
    }
    let widths = [
        Constraint::Length(10),
        Constraint::Min(16),
        Constraint::Length(10),
        Constraint::Length(11),
        Constraint::Length(7),
        Constraint::Length(22),
    ];
    let header = Row::new([
        "store",
        "source",
        "state",
        "age",
        "entries",
        "next update / error",
    ]);
    let title = format!(
        "Trust stores ({}) · {}",
        s.trust_stores.len(),
        s.status.revocation.line()
    );
    frame.render_widget(
        Table::new(rows, widths)
            .header(header.bold())
            .block(boxed(&title)),
        area,
    );
}

/// The end of `text` within `max` characters, where paths and URLs keep their file name.
fn ending(text: &str, max: usize) -> String {
    let count = text.chars().count();
    if count <= max {
        return text.to_owned();
    }
    let kept: String = text.chars().skip(count - max.saturating_sub(1)).collect();
    format!("…{kept}")
}

fn short(text: &str, max: usize) -> String {
    if text.chars().count() <= max {
        return text.to_owned();
    }
    let mut cut: String = text.chars().take(max.saturating_sub(1)).collect();
    cut.push('…');
    cut
}

fn tenants(frame: &mut Frame, area: Rect, s: &Snapshot) {
    let rows = s.tenants.iter().map(|t| {
        let cache = t.entra_keys.clone().unwrap_or_default();
        let authority = t
            .test_authority
            .clone()
            .unwrap_or_else(|| "Microsoft".into());
        Row::new([
            t.id.clone(),
            t.cloud.clone(),
            cache.keys.to_string(),
            cache.age_secs.map_or("never".into(), duration),
            cache.fetches.to_string(),
            cache.last_error.unwrap_or(authority),
        ])
    });
    let widths = [
        Constraint::Length(36),
        Constraint::Length(7),
        Constraint::Length(4),
        Constraint::Length(9),
        Constraint::Length(7),
        Constraint::Min(10),
    ];
    let header = Row::new([
        "tenant",
        "cloud",
        "keys",
        "age",
        "fetches",
        "source / last error",
    ])
    .bold();
    let title = format!("Tenants ({})", s.tenants.len());
    frame.render_widget(
        Table::new(rows, widths).header(header).block(boxed(&title)),
        area,
    );
}

fn keys(frame: &mut Frame, area: Rect, s: &Snapshot) {
    let sig = &s.status.signer;
    let mut lines = Vec::new();
    if s.keys.ring.is_empty() {
        let staged = s.keys.staged_kid.as_deref().unwrap_or("(none)");
        lines.push(Line::from(vec![
            Span::from("active   ").bold(),
            Span::from(s.keys.signing_kid.as_str()),
        ]));
        lines.push(Line::from(vec![
            Span::from("next     ").bold(),
            Span::from(staged),
        ]));
    }
    for key in &s.keys.ring {
        let next = match (&key.next_state, &key.next_at) {
            (Some(state), Some(at)) => format!("{state} at {at}"),
            _ => "until a new key is staged".into(),
        };
        lines.push(Line::from(vec![
            Span::from(format!("{:<9}", key.state)).bold(),
            Span::from(format!("{}  {}  ({next})", key.kid, key.location)),
        ]));
    }
    lines.extend([
        Line::from(""),
        Line::from(format!(
            "signer   {} · {} workers · queue {}/{} · {}",
            sig.backends_line(),
            sig.workers,
            sig.in_flight,
            sig.capacity,
            sig.health()
        )),
        Line::from(format!(
            "audit    record {} · {}",
            s.status
                .audit
                .head_seq
                .map_or("-".into(), |n| n.to_string()),
            short(&s.status.audit.head_hash, 16)
        )),
        Line::from(""),
        Line::from("s stage the next key · p promote the staged key (each asks first)")
            .fg(Color::DarkGray),
        Line::from("A staged key is published at once and signs after the overlap (48 h).")
            .fg(Color::DarkGray),
    ]);
    frame.render_widget(
        Paragraph::new(lines)
            .block(boxed("Token-signing keys"))
            .wrap(Wrap { trim: true }),
        area,
    );
}

fn enrolments(frame: &mut Frame, area: Rect, app: &App, s: &Snapshot) {
    let selected = app.selected.min(s.enrolments.len().saturating_sub(1));
    let rows = s.enrolments.iter().enumerate().map(|(i, e)| {
        let row = Row::new([
            e.oid.clone(),
            e.upn.clone().unwrap_or_else(|| "-".into()),
            e.methods.join(","),
            e.tid.clone(),
        ]);
        if i == selected { row.reversed() } else { row }
    });
    let widths = [
        Constraint::Length(36),
        Constraint::Min(16),
        Constraint::Length(7),
        Constraint::Length(36),
    ];
    let title = format!(
        "Enrolments ({}) · / find · e enrol TOTP · x revoke it \
         · f key link · i keys · X revoke keys",
        s.enrolments.len()
    );
    let table = Table::new(rows, widths)
        .header(Row::new(["oid", "upn", "methods", "tenant"]).bold())
        .block(boxed(&title));
    frame.render_widget(table, area);
}

fn feed(frame: &mut Frame, area: Rect, app: &App, s: &Snapshot) {
    let filter = app.filter.to_ascii_lowercase();
    let shown = s.recent.iter().filter(|r| {
        filter.is_empty()
            || [&r.outcome, &r.reason, &r.tid, &r.oid]
                .iter()
                .any(|f| f.to_ascii_lowercase().contains(&filter))
            || r.amr.as_deref().is_some_and(|a| a.contains(&filter))
    });
    let rows = shown.map(|r| {
        let colour = if r.outcome == "token" {
            Color::Green
        } else {
            Color::Yellow
        };
        Row::new([
            Cell::from(clock(r.time)),
            Cell::from(r.outcome.clone()).fg(colour),
            Cell::from(r.amr.clone().unwrap_or_default()),
            Cell::from(r.oid.clone()),
            Cell::from(short(&r.tid, 8)),
            Cell::from(r.reason.clone()),
        ])
    });
    let widths = [
        Constraint::Length(8),
        Constraint::Length(23),
        Constraint::Length(4),
        Constraint::Length(8),
        Constraint::Length(8),
        Constraint::Min(10),
    ];
    let header = Row::new(["time", "outcome", "amr", "oid", "tenant", "reason"]).bold();
    let table = Table::new(rows, widths)
        .header(header)
        .block(boxed("Sign-ins, newest first"));
    frame.render_widget(table, area);
}

fn centered(area: Rect, width: u16, height: u16) -> Rect {
    let width = width.min(area.width);
    let height = height.min(area.height);
    Rect {
        x: area.x + (area.width - width) / 2,
        y: area.y + (area.height - height) / 2,
        width,
        height,
    }
}

fn dialog(frame: &mut Frame, area: Rect, title: &str, text: &str) {
    // Room for the wrapped text inside the 70-column box, at least the usual eight rows.
    let rows = text.chars().count() / 64 + 4;
    let place = centered(area, 70, u16::try_from(rows).unwrap_or(u16::MAX).max(8));
    frame.render_widget(Clear, place);
    let paragraph = Paragraph::new(text.to_owned())
        .wrap(Wrap { trim: true })
        .block(boxed(title));
    frame.render_widget(paragraph, place);
}

fn help(frame: &mut Frame, area: Rect) {
    let place = centered(area, 76, KEYS.len() as u16 + 2);
    frame.render_widget(Clear, place);
    let rows = KEYS.iter().map(|(k, what)| Row::new([*k, *what]));
    let table = Table::new(rows, [Constraint::Length(16), Constraint::Min(10)])
        .block(boxed("Keys (? or Esc to close)"));
    frame.render_widget(table, place);
}

#[cfg(test)]
mod tests {
    use std::collections::BTreeMap;

    use ratatui::Terminal;
    use ratatui::backend::TestBackend;

    use super::*;
    use crate::app::Confirm;
    use crate::client::Action;
    use crate::snapshot::{
        Backend, Counters, CrlSource, Enrolment, KeyCache, Keys, Recent, Revocation, RingKey,
        Signer, Status, Tenant, TrustStore,
    };

    const TID: &str = "14c2f153-90a7-4689-9db7-9543bf084dad";

    fn fixture() -> Snapshot {
        let mut per_second = vec![0; 120];
        per_second[119] = 7;
        let latency = |p50, p90, p99| {
            BTreeMap::from([
                ("p50".into(), p50),
                ("p90".into(), p90),
                ("p99".into(), p99),
            ])
        };
        Snapshot {
            link: Link::Up,
            socket: "/run/vouch/admin.sock".into(),
            status: Status {
                version: "0.1.0".into(),
                uptime_secs: 3725,
                issuer: "https://mfa.example.com".into(),
                log_filter: "info".into(),
                signer: Signer {
                    backends: vec![Backend {
                        name: "software".into(),
                        up: true,
                        stopped: false,
                    }],
                    kid: "kid-now".into(),
                    workers: 2,
                    capacity: 64,
                    in_flight: 3,
                    healthy: true,
                },
                signins_in_flight: 5,
                max_signins_in_flight: 1024,
                transactions_completed: 41,
                ..Status::default()
            },
            counters: Counters {
                by_outcome: BTreeMap::from([("token".into(), 40), ("access_denied".into(), 2)]),
                errors_by_reason: BTreeMap::from([("too many wrong codes".into(), 2)]),
                per_second,
                latency_us: BTreeMap::from([
                    ("hint".into(), latency(40, 60, 90)),
                    ("signing".into(), latency(900, 1500, 2500)),
                ]),
                ..Counters::default()
            },
            recent: vec![
                Recent {
                    time: 3600 * 9 + 61,
                    tid: TID.into(),
                    oid: "951ddb04".into(),
                    amr: Some("otp".into()),
                    outcome: "token".into(),
                    reason: "factor proven".into(),
                },
                Recent {
                    time: 3600 * 9 + 62,
                    tid: TID.into(),
                    oid: "0badc0de".into(),
                    amr: None,
                    outcome: "access_denied".into(),
                    reason: "user cancelled".into(),
                },
            ],
            tenants: vec![Tenant {
                id: TID.into(),
                name: "Contoso".into(),
                cloud: "global".into(),
                test_authority: None,
                entra_keys: Some(KeyCache {
                    keys: 3,
                    age_secs: Some(65),
                    fetches: 2,
                    last_error: None,
                }),
            }],
            keys: Keys {
                signing_kid: "kid-now".into(),
                staged_kid: Some("kid-next".into()),
                ring: vec![
                    RingKey {
                        kid: "kid-now".into(),
                        state: "active".into(),
                        location: "software key-1".into(),
                        next_state: None,
                        next_at: None,
                    },
                    RingKey {
                        kid: "kid-next".into(),
                        state: "next".into(),
                        location: "software key-2".into(),
                        next_state: Some("active".into()),
                        next_at: Some("2026-12-06 10:00:00 UTC".into()),
                    },
                ],
            },
            enrolments: vec![
                Enrolment {
                    tid: TID.into(),
                    oid: "951ddb04-b16d-45f3-bbf7-b0fa18fa7aee".into(),
                    upn: Some("ada@contoso.com".into()),
                    methods: vec!["totp".into()],
                },
                Enrolment {
                    tid: TID.into(),
                    oid: "6f1c3a2b-0d4e-4f5a-8b7c-9d0e1f2a3b4c".into(),
                    upn: None,
                    methods: vec!["totp".into()],
                },
            ],
            trust_stores: Vec::new(),
            message: None,
        }
    }

    fn screen(app: &App, snapshot: &Snapshot, width: u16, height: u16) -> String {
        let mut terminal = Terminal::new(TestBackend::new(width, height)).expect("terminal");
        terminal
            .draw(|frame| render(frame, app, snapshot))
            .expect("draw");
        let buffer = terminal.backend().buffer();
        (0..height)
            .map(|y| {
                (0..width)
                    .map(|x| buffer[(x, y)].symbol().to_owned())
                    .collect::<String>()
            })
            .collect::<Vec<_>>()
            .join("\n")
    }

    fn view(tab: Tab) -> App {
        App {
            tab,
            ..App::default()
        }
    }

    #[test]
    fn the_dashboard_shows_rates_outcomes_latency_signer_caches_and_errors_at_80x24() {
        let text = screen(&App::default(), &fixture(), 80, 24);
        for expected in [
            "connected · vouch 0.1.0 · up 01:02:05",
            "now 7/s · total 42",
            "token",
            "40",
            "access_denied",
            "signing",
            "40µs",
            "900µs",
            "2.5ms",
            "queue 3/64",
            "backend up · healthy",
            "in flight 5/1024",
            "Contoso",
            "00:01:05",
            "too many wrong codes",
            "? help · q quit",
        ] {
            assert!(text.contains(expected), "{expected:?} missing from\n{text}");
        }
    }

    #[test]
    fn a_down_appliance_is_named_with_its_fix_on_every_view() {
        let mut snapshot = fixture();
        snapshot.link = Link::Down {
            reason: "The appliance is not running: nothing answers at /run/vouch/admin.sock."
                .into(),
            fix: "Start it (systemctl start vouch, or vouch serve).".into(),
        };
        for tab in Tab::ALL {
            let text = screen(&view(tab), &snapshot, 80, 24);
            assert!(text.contains("The appliance is not running"), "{text}");
            assert!(text.contains("systemctl start vouch"), "{text}");
        }
    }

    #[test]
    fn the_tenants_view_lists_each_tenant_and_its_key_cache() {
        let text = screen(&view(Tab::Tenants), &fixture(), 120, 24);
        assert!(text.contains(TID) && text.contains("global"), "{text}");
        assert!(
            text.contains("00:01:05") && text.contains("Microsoft"),
            "{text}"
        );
    }

    #[test]
    fn the_keys_view_shows_signing_and_staged_keys_and_a_promotion_asks_first() {
        let mut app = view(Tab::Keys);
        let text = screen(&app, &fixture(), 80, 24);
        assert!(
            text.contains("kid-now") && text.contains("kid-next"),
            "{text}"
        );
        assert!(
            text.contains("active at 2026-12-06 10:00:00 UTC") && text.contains("next "),
            "{text}"
        );
        app.confirm = Some(Confirm {
            question: "Promote kid-next to signing key now?".into(),
            action: Action::PromoteKey,
        });
        let text = screen(&app, &fixture(), 80, 24);
        assert!(
            text.contains("Promote kid-next") && text.contains("y yes"),
            "{text}"
        );
    }

    #[test]
    fn a_signing_backend_that_is_down_shows_by_name_in_the_keys_view() {
        let app = view(Tab::Keys);
        let mut snapshot = fixture();
        snapshot.status.signer.backends = vec![
            Backend {
                name: "hsm-a".into(),
                up: true,
                stopped: false,
            },
            Backend {
                name: "hsm-b".into(),
                up: false,
                stopped: false,
            },
        ];
        let text = screen(&app, &snapshot, 100, 24);
        assert!(text.contains("hsm-a up, hsm-b DOWN"), "{text}");
        let dashboard = screen(&App::default(), &snapshot, 80, 24);
        assert!(dashboard.contains("1/2 up · healthy"), "{dashboard}");

        snapshot.status.signer.backends[0].up = false;
        snapshot.status.signer.healthy = false;
        let text = screen(&app, &snapshot, 100, 24);
        assert!(text.contains("NO BACKEND UP"), "{text}");
    }

    #[test]
    fn a_stale_crl_shows_on_the_dashboard_and_in_the_trust_view() {
        let mut snapshot = fixture();
        snapshot.status.revocation = Revocation {
            trust_stores: 1,
            crl_sources: 2,
            crl_stale: 1,
            crl_not_loaded: 0,
        };
        snapshot.trust_stores = vec![TrustStore {
            name: "cards".into(),
            tenants: serde_json::json!("shared"),
            amr: "sc".into(),
            roots: 1,
            ocsp: "off".into(),
            crls: vec![
                CrlSource {
                    source: "/etc/vouch/pki/issuing.crl".into(),
                    state: "fresh".into(),
                    age_secs: Some(3600),
                    next_update: Some("2026-12-05T09:00:00Z".into()),
                    entries: Some(12),
                    ..CrlSource::default()
                },
                CrlSource {
                    source: "http://pki.contoso.example/root.crl".into(),
                    state: "stale".into(),
                    age_secs: Some(9 * 86_400),
                    entries: Some(0),
                    ..CrlSource::default()
                },
            ],
            ..TrustStore::default()
        }];
        let dashboard = screen(&App::default(), &snapshot, 80, 24);
        assert!(
            dashboard.contains("CRLs 1/2 fresh · 1 STALE"),
            "{dashboard}"
        );
        assert!(dashboard.contains("Contoso"), "{dashboard}");

        let text = screen(&view(Tab::Trust), &snapshot, 100, 24);
        for expected in [
            "cards",
            "every tenant · amr sc",
            "issuing.crl",
            "2026-12-05T09:00:00Z",
            "root.crl",
            "STALE",
            "9d 00:00:00",
        ] {
            assert!(text.contains(expected), "{expected:?} missing from\n{text}");
        }
    }

    #[test]
    fn the_enrolments_view_marks_the_selected_user() {
        let mut app = view(Tab::Enrolments);
        app.selected = 1;
        let mut terminal = Terminal::new(TestBackend::new(100, 24)).expect("terminal");
        terminal
            .draw(|frame| render(frame, &app, &fixture()))
            .expect("draw");
        let buffer = terminal.backend().buffer();
        let row_of = |needle: &str| {
            (0..24u16).find(|y| {
                let line: String = (0..100u16).map(|x| buffer[(x, *y)].symbol()).collect();
                line.contains(needle)
            })
        };
        let selected = row_of("6f1c3a2b").expect("second user shown");
        let other = row_of("951ddb04").expect("first user shown");
        let reversed = |y| buffer[(40, y)].modifier.contains(Modifier::REVERSED);
        assert!(reversed(selected) && !reversed(other));
        let text = screen(&app, &fixture(), 100, 24);
        let first = text.lines().find(|l| l.contains("951ddb04")).expect("row");
        assert!(
            first.contains("ada@contoso.com"),
            "the UPN is shown: {first}"
        );
    }

    #[test]
    fn the_feed_shows_outcomes_newest_first_and_filters() {
        let mut app = view(Tab::Feed);
        let text = screen(&app, &fixture(), 80, 24);
        assert!(
            text.contains("09:01:01") && text.contains("factor proven"),
            "{text}"
        );
        assert!(text.contains("user cancelled"), "{text}");
        app.filter = "cancel".into();
        let text = screen(&app, &fixture(), 80, 24);
        assert!(
            text.contains("user cancelled") && !text.contains("factor proven"),
            "{text}"
        );
        assert!(text.contains("filter \"cancel\""), "{text}");
    }

    #[test]
    fn help_lists_every_key_at_80x24() {
        let app = App {
            help: true,
            ..App::default()
        };
        let text = screen(&app, &fixture(), 80, 24);
        for (key, _) in KEYS {
            assert!(text.contains(key), "{key:?} missing from\n{text}");
        }
    }

    #[test]
    fn an_answer_from_the_appliance_shows_until_it_is_cleared() {
        let mut snapshot = fixture();
        snapshot.message = Some("Staged kid-next.".into());
        let mut app = App::default();
        assert!(screen(&app, &snapshot, 80, 24).contains("Staged kid-next."));
        app.dismissed = snapshot.message.clone();
        assert!(!screen(&app, &snapshot, 80, 24).contains("Staged kid-next."));
    }

    #[test]
    fn every_view_draws_in_a_tiny_terminal_without_panicking() {
        for tab in Tab::ALL {
            for (w, h) in [(1, 1), (20, 5), (80, 24), (200, 60)] {
                let _ = screen(&view(tab), &fixture(), w, h);
            }
        }
    }
}
