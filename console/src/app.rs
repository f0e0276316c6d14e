//! The console's state and what each key does. Rendering is elsewhere ([`crate::ui`]) and
//! reads this state and a [`Snapshot`] without changing either.

use ratatui::crossterm::event::{KeyCode, KeyEvent, KeyEventKind, KeyModifiers};

use crate::client::Action;
use crate::snapshot::Snapshot;

/// The views, in tab order.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Tab {
    Dashboard,
    Tenants,
    Keys,
    Enrolments,
    Feed,
    Trust,
}

impl Tab {
    pub const ALL: [Tab; 6] = [
        Tab::Dashboard,
        Tab::Tenants,
        Tab::Keys,
        Tab::Enrolments,
        Tab::Feed,
        Tab::Trust,
    ];

    pub fn title(self) -> &'static str {
        match self {
            Tab::Dashboard => "Dashboard",
            Tab::Tenants => "Tenants",
            Tab::Keys => "Keys",
            Tab::Enrolments => "Enrolments",
            Tab::Feed => "Feed",
            Tab::Trust => "Trust",
        }
    }

    fn index(self) -> usize {
        Tab::ALL.iter().position(|t| *t == self).unwrap_or(0)
    }
}

/// An action waiting for the operator's yes.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Confirm {
    pub question: String,
    pub action: Action,
}

/// Text the operator is typing, and what it is for.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Typing {
    /// The filter of the current view.
    Filter,
    /// `TID OID` of a user to enrol.
    Enrol,
}

/// Every key the console answers, for the help view.
pub const KEYS: [(&str, &str); 19] = [
    ("Tab / Shift-Tab", "next / previous view"),
    ("1-6", "go to a view"),
    ("←→ or h l", "previous / next view"),
    ("↑↓ or k j", "move the selection"),
    ("/", "filter the view (Enrolments: find by oid or tenant)"),
    ("Esc", "clear the filter, close a dialog"),
    ("Enter", "finish typing"),
    ("s", "Keys: stage the next signing key"),
    ("p", "Keys: promote the staged key"),
    ("R", "reload the appliance's configuration"),
    ("e", "Enrolments: enrol a user for TOTP (type TID OID)"),
    ("x", "Enrolments: revoke the selected user's TOTP"),
    (
        "f",
        "Enrolments: a security-key enrolment link for the selected user",
    ),
    ("i", "Enrolments: list the selected user's security keys"),
    ("X", "Enrolments: revoke the selected user's security keys"),
    ("y / n", "answer a confirmation"),
    ("c", "clear the last message"),
    ("?", "show or hide this help"),
    ("q / Ctrl-C", "quit"),
];

#[derive(Debug, Clone, PartialEq, Eq)]
pub struct App {
    pub tab: Tab,
    pub selected: usize,
    pub filter: String,
    pub typing: Option<Typing>,
    pub input: String,
    pub help: bool,
    pub confirm: Option<Confirm>,
    pub quit: bool,
    /// Messages cleared by the operator; a new one shows again.
    pub dismissed: Option<String>,
}

impl Default for App {
    fn default() -> Self {
        App {
            tab: Tab::Dashboard,
            selected: 0,
            filter: String::new(),
            typing: None,
            input: String::new(),
            help: false,
            confirm: None,
            quit: false,
            dismissed: None,
        }
    }
}

impl App {
    /// Answers one key; an action is for the appliance.
    pub fn handle_event(&mut self, key: KeyEvent, snapshot: &Snapshot) -> Option<Action> {
        if key.kind == KeyEventKind::Release {
            return None;
        }
        if key.code == KeyCode::Char('c') && key.modifiers.contains(KeyModifiers::CONTROL) {
            self.quit = true;
            return None;
        }
        if self.confirm.is_some() {
            return self.answer_confirm(key.code);
        }
        if self.typing.is_some() {
            return self.type_key(key.code);
        }
        if self.help {
            self.help = !matches!(key.code, KeyCode::Char('?' | 'q') | KeyCode::Esc);
            return None;
        }
        self.command(key, snapshot)
    }

    fn answer_confirm(&mut self, code: KeyCode) -> Option<Action> {
        match code {
            KeyCode::Char('y' | 'Y') => self.confirm.take().map(|c| c.action),
            KeyCode::Char('n' | 'N') | KeyCode::Esc => {
                self.confirm = None;
                None
            }
            _ => None,
        }
    }

    fn type_key(&mut self, code: KeyCode) -> Option<Action> {
        let typing = self.typing.clone()?;
        match code {
            KeyCode::Esc => {
                self.typing = None;
                self.input.clear();
                if typing == Typing::Filter {
                    self.filter.clear();
                    return self.find_action();
                }
            }
            KeyCode::Enter => {
                self.typing = None;
                let text = std::mem::take(&mut self.input);
                return match typing {
                    Typing::Enrol => self.ask_enrol(&text),
                    Typing::Filter => {
                        self.filter = text;
                        self.find_action()
                    }
                };
            }
            KeyCode::Backspace => {
                self.input.pop();
            }
            KeyCode::Char(c) if self.input.len() < 200 => self.input.push(c),
            _ => {}
        }
        if typing == Typing::Filter {
            self.filter.clone_from(&self.input);
            self.selected = 0;
            return self.find_action();
        }
        None
    }

    fn find_action(&self) -> Option<Action> {
        (self.tab == Tab::Enrolments).then(|| Action::Find(self.filter.clone()))
    }

    fn ask_enrol(&mut self, text: &str) -> Option<Action> {
        let mut words = text.split_whitespace();
        let (tid, oid, upn, rest) = (words.next(), words.next(), words.next(), words.next());
        if let (Some(tid), Some(oid), None) = (tid, oid, rest) {
            let who = match upn {
                Some(upn) => format!("{oid} ({upn})"),
                None => oid.to_owned(),
            };
            self.confirm = Some(Confirm {
                question: format!("Enrol {who} in {tid} for TOTP?"),
                action: Action::EnrolTotp {
                    tid: tid.to_owned(),
                    oid: oid.to_owned(),
                    upn: upn.map(str::to_owned),
                },
            });
        }
        None
    }

    fn command(&mut self, key: KeyEvent, snapshot: &Snapshot) -> Option<Action> {
        match key.code {
            KeyCode::Char('q') => self.quit = true,
            KeyCode::Char('?') => self.help = true,
            KeyCode::Tab | KeyCode::Right | KeyCode::Char('l') => self.go(1),
            KeyCode::BackTab | KeyCode::Left | KeyCode::Char('h') => self.go(Tab::ALL.len() - 1),
            KeyCode::Char(c @ '1'..='6') => {
                self.switch(Tab::ALL[c as usize - '1' as usize]);
            }
            KeyCode::Down | KeyCode::Char('j') => self.selected = self.selected.saturating_add(1),
            KeyCode::Up | KeyCode::Char('k') => self.selected = self.selected.saturating_sub(1),
            KeyCode::Char('/') => {
                self.typing = Some(Typing::Filter);
                self.input.clone_from(&self.filter);
            }
            KeyCode::Esc => {
                self.filter.clear();
                return self.find_action();
            }
            KeyCode::Char('c') => self.dismissed.clone_from(&snapshot.message),
            KeyCode::Char('R') => self.ask("Reload the appliance's configuration?", Action::Reload),
            KeyCode::Char('s') if self.tab == Tab::Keys => {
                self.ask("Stage a new signing key?", Action::StageKey);
            }
            KeyCode::Char('p') if self.tab == Tab::Keys => {
                if let Some(kid) = &snapshot.keys.staged_kid {
                    let question = format!("Promote {kid} to signing key now?");
                    self.ask(&question, Action::PromoteKey);
                }
            }
            KeyCode::Char('e') if self.tab == Tab::Enrolments => {
                self.typing = Some(Typing::Enrol);
                self.input.clear();
            }
            KeyCode::Char(c @ ('f' | 'i' | 'X')) if self.tab == Tab::Enrolments => {
                return self.key_action(c, snapshot);
            }
            KeyCode::Char('x') if self.tab == Tab::Enrolments => {
                if let Some(user) = snapshot.enrolments.get(self.selected) {
                    self.ask(
                        &format!("Revoke TOTP of {} in {}?", user.oid, user.tid),
                        Action::Revoke {
                            tid: user.tid.clone(),
                            oid: user.oid.clone(),
                        },
                    );
                }
            }
            _ => {}
        }
        None
    }

    /// A security-key action on the selected user: a link and the revocation ask first;
    /// listing the keys does not.
    fn key_action(&mut self, key: char, snapshot: &Snapshot) -> Option<Action> {
        let user = snapshot.enrolments.get(self.selected)?;
        let (tid, oid) = (user.tid.clone(), user.oid.clone());
        match key {
            'f' => {
                let question = format!("Issue a security-key enrolment link for {oid}?");
                let upn = user.upn.clone();
                self.ask(&question, Action::FidoLink { tid, oid, upn });
            }
            'X' => {
                let question = format!("Revoke every security key of {oid} in {tid}?");
                self.ask(&question, Action::RevokeKeys { tid, oid });
            }
            _ => return Some(Action::FidoKeys { tid, oid }),
        }
        None
    }

    fn ask(&mut self, question: &str, action: Action) {
        self.confirm = Some(Confirm {
            question: question.to_owned(),
            action,
        });
    }

    fn go(&mut self, step: usize) {
        let next = (self.tab.index() + step) % Tab::ALL.len();
        self.switch(Tab::ALL[next]);
    }

    fn switch(&mut self, tab: Tab) {
        if tab != self.tab {
            self.tab = tab;
            self.selected = 0;
            self.filter.clear();
        }
    }

    /// The message to show, unless the operator cleared it.
    pub fn message<'a>(&self, snapshot: &'a Snapshot) -> Option<&'a str> {
        let message = snapshot.message.as_deref()?;
        (self.dismissed.as_deref() != Some(message)).then_some(message)
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn press(app: &mut App, snapshot: &Snapshot, code: KeyCode) -> Option<Action> {
        app.handle_event(KeyEvent::from(code), snapshot)
    }

    #[test]
    fn tab_arrows_and_numbers_move_between_views_and_q_quits() {
        let (mut app, s) = (App::default(), Snapshot::default());
        press(&mut app, &s, KeyCode::Tab);
        assert_eq!(app.tab, Tab::Tenants);
        press(&mut app, &s, KeyCode::Char('h'));
        press(&mut app, &s, KeyCode::Left);
        assert_eq!(app.tab, Tab::Trust);
        press(&mut app, &s, KeyCode::Char('3'));
        assert_eq!(app.tab, Tab::Keys);
        press(&mut app, &s, KeyCode::Char('q'));
        assert!(app.quit);
    }

    #[test]
    fn a_key_action_happens_only_after_yes() {
        let (mut app, mut s) = (App::default(), Snapshot::default());
        app.tab = Tab::Keys;
        assert_eq!(press(&mut app, &s, KeyCode::Char('s')), None);
        assert!(app.confirm.is_some());
        assert_eq!(press(&mut app, &s, KeyCode::Char('n')), None);
        assert!(app.confirm.is_none());
        press(&mut app, &s, KeyCode::Char('s'));
        assert_eq!(
            press(&mut app, &s, KeyCode::Char('y')),
            Some(Action::StageKey)
        );

        assert_eq!(press(&mut app, &s, KeyCode::Char('p')), None);
        assert!(app.confirm.is_none(), "nothing staged, nothing to promote");
        s.keys.staged_kid = Some("next".into());
        press(&mut app, &s, KeyCode::Char('p'));
        assert_eq!(
            press(&mut app, &s, KeyCode::Char('y')),
            Some(Action::PromoteKey)
        );
    }

    #[test]
    fn the_enrolment_filter_finds_as_it_is_typed_and_esc_clears_it() {
        let (mut app, s) = (App::default(), Snapshot::default());
        app.tab = Tab::Enrolments;
        press(&mut app, &s, KeyCode::Char('/'));
        press(&mut app, &s, KeyCode::Char('9'));
        let found = press(&mut app, &s, KeyCode::Char('5'));
        assert_eq!(found, Some(Action::Find("95".into())));
        press(&mut app, &s, KeyCode::Enter);
        assert_eq!(app.filter, "95");
        assert_eq!(
            press(&mut app, &s, KeyCode::Esc),
            Some(Action::Find(String::new()))
        );
    }

    #[test]
    fn enrol_and_revoke_ask_first_and_name_the_user() {
        let (mut app, mut s) = (App::default(), Snapshot::default());
        app.tab = Tab::Enrolments;
        press(&mut app, &s, KeyCode::Char('e'));
        for c in "t1 o1 ada@contoso.com".chars() {
            press(&mut app, &s, KeyCode::Char(c));
        }
        press(&mut app, &s, KeyCode::Enter);
        let question = &app.confirm.as_ref().expect("asks").question;
        assert!(question.contains("o1 (ada@contoso.com)") && question.contains("t1"));
        let enrol = press(&mut app, &s, KeyCode::Char('y'));
        assert_eq!(
            enrol,
            Some(Action::EnrolTotp {
                tid: "t1".into(),
                oid: "o1".into(),
                upn: Some("ada@contoso.com".into()),
            })
        );

        s.enrolments = vec![crate::snapshot::Enrolment {
            tid: "t".into(),
            oid: "o".into(),
            upn: None,
            methods: vec!["totp".into()],
        }];
        press(&mut app, &s, KeyCode::Char('x'));
        let revoke = press(&mut app, &s, KeyCode::Char('y'));
        assert_eq!(
            revoke,
            Some(Action::Revoke {
                tid: "t".into(),
                oid: "o".into()
            })
        );
    }

    #[test]
    fn security_key_links_and_revocations_ask_first_and_listing_does_not() {
        let (mut app, mut s) = (App::default(), Snapshot::default());
        app.tab = Tab::Enrolments;
        assert_eq!(
            press(&mut app, &s, KeyCode::Char('f')),
            None,
            "no user selected"
        );
        assert!(app.confirm.is_none());
        s.enrolments = vec![crate::snapshot::Enrolment {
            tid: "t".into(),
            oid: "o".into(),
            upn: Some("ada@contoso.com".into()),
            methods: vec!["fido".into()],
        }];
        let listed = press(&mut app, &s, KeyCode::Char('i'));
        let (tid, oid) = (String::from("t"), String::from("o"));
        assert_eq!(
            listed,
            Some(Action::FidoKeys {
                tid: tid.clone(),
                oid: oid.clone()
            })
        );

        press(&mut app, &s, KeyCode::Char('f'));
        let link = press(&mut app, &s, KeyCode::Char('y'));
        let upn = Some("ada@contoso.com".into());
        let (t, o) = (tid.clone(), oid.clone());
        assert_eq!(
            link,
            Some(Action::FidoLink {
                tid: t,
                oid: o,
                upn
            })
        );

        press(&mut app, &s, KeyCode::Char('X'));
        assert!(
            app.confirm
                .as_ref()
                .expect("asks")
                .question
                .contains("every security key")
        );
        assert_eq!(press(&mut app, &s, KeyCode::Char('n')), None);
        press(&mut app, &s, KeyCode::Char('X'));
        let revoke = press(&mut app, &s, KeyCode::Char('y'));
        assert_eq!(revoke, Some(Action::RevokeKeys { tid, oid }));
    }

    #[test]
    fn help_opens_with_question_mark_and_swallows_other_keys() {
        let (mut app, s) = (App::default(), Snapshot::default());
        press(&mut app, &s, KeyCode::Char('?'));
        assert!(app.help);
        press(&mut app, &s, KeyCode::Tab);
        assert_eq!(app.tab, Tab::Dashboard);
        press(&mut app, &s, KeyCode::Esc);
        assert!(!app.help);
    }
}
