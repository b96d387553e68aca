//! The alarm queue's rules (issue #5): which events need an operator, in what order, and what
//! a batch of events does to a site's open alarms. Pure functions of the decoded fields; the
//! store applies the [`Plan`] in the transaction that stores the events, so every node sharing
//! a database builds the same queue.
//!
//! An alarm-class event opens an alarm for its site, or joins the site's newest open alarm when
//! that was opened within the join window (a burglary followed by more zones is one incident,
//! not ten). Joining writes nothing unless it raises the alarm's priority: a fire during a
//! burglary alarm moves that alarm up the queue. A cancel or abort at the panel marks the open
//! alarm and leaves it for an operator to close; so does the restore of a communication failure.

use crate::site_state::delta;
use crate::store::EventRow;

/// What an alarm is about, in queue order: [`Category::priority`] 1 is worked first.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Category {
    Fire,
    HoldUp,
    /// A duress code: the user is being forced. Never shown as an ordinary opening.
    Duress,
    Panic,
    /// Medical and personal emergencies.
    Medical,
    /// Gas and carbon monoxide.
    Gas,
    Burglary,
    /// Water, freeze and auxiliary alarms.
    Environmental,
    Tamper,
    /// Troubles: power, battery, sensors, lines, sounders…
    Technical,
    /// Communication failures: the panel's own reports and missed supervision.
    Supervision,
}

impl Category {
    /// Stable snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Fire => "fire",
            Self::HoldUp => "hold_up",
            Self::Duress => "duress",
            Self::Panic => "panic",
            Self::Medical => "medical",
            Self::Gas => "gas",
            Self::Burglary => "burglary",
            Self::Environmental => "environmental",
            Self::Tamper => "tamper",
            Self::Technical => "technical",
            Self::Supervision => "supervision",
        }
    }

    /// 1 (first) to 7: fire, hold-up, duress and panic; medical; gas and CO; burglary (and
    /// environmental); tamper; technical troubles; supervision failures.
    pub fn priority(self) -> i32 {
        match self {
            Self::Fire | Self::HoldUp | Self::Duress | Self::Panic => 1,
            Self::Medical => 2,
            Self::Gas => 3,
            Self::Burglary | Self::Environmental => 4,
            Self::Tamper => 5,
            Self::Technical => 6,
            Self::Supervision => 7,
        }
    }
}

/// The category of an event that needs an operator; `None` for everything else (openings,
/// closings, restores, tests, bypasses, status reports).
pub fn category(e: &EventRow) -> Option<Category> {
    category_with(e, delta(e).duress)
}

/// [`category`], given whether the event is a duress (from its [`delta`], which [`plan`]
/// computes once per event).
fn category_with(e: &EventRow, duress: bool) -> Option<Category> {
    // Contact ID qualifier 6 reports a condition that is still present (status at arming):
    // the alarm it belongs to was raised when the condition began.
    if e.scheme == Some("contact_id") && e.qualifier.as_deref() == Some("6") {
        return None;
    }
    let kind = e.kind.unwrap_or("");
    match e.class {
        "alarm" => Some(match kind {
            _ if duress => Category::Duress,
            "duress" => Category::Duress,
            "fire" | "heat" | "sprinkler" => Category::Fire,
            "hold_up" => Category::HoldUp,
            "panic" => Category::Panic,
            "medical" | "emergency" => Category::Medical,
            "gas" | "carbon_monoxide" => Category::Gas,
            "tamper" | "wrong_code" => Category::Tamper,
            "water" | "freeze" | "auxiliary" => Category::Environmental,
            _ => Category::Burglary,
        }),
        "trouble" | "supervisory" => Some(match kind {
            "communication" => Category::Supervision,
            "tamper" => Category::Tamper,
            _ => Category::Technical,
        }),
        _ => None,
    }
}

/// The event that opens (or raises) an alarm.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Trigger {
    pub category: Category,
    pub at: i64,
    pub code: Option<String>,
    pub zone: Option<String>,
    pub partition: Option<String>,
    pub meaning: Option<&'static str>,
    pub frame_ref: String,
    pub seq_in_frame: i32,
    /// Position in the batch (commit order).
    pub index: usize,
}

/// A cancel or abort at the panel, or a communication restore.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Mark {
    pub user: Option<String>,
    pub at: i64,
    pub code: Option<String>,
    pub index: usize,
}

/// What one batch does to one site's alarms.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct SiteAlarms {
    /// The first alarm-class event of the batch (what a new alarm shows as its start).
    pub first: Option<Trigger>,
    /// The highest-priority alarm-class event (earliest of equals).
    pub top: Option<Trigger>,
    /// The last cancel at the panel.
    pub cancel: Option<Mark>,
    /// The last communication restore.
    pub restore: Option<Mark>,
}

/// A batch's alarm work, per site, in the order the sites first appear.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Plan {
    pub sites: Vec<(String, SiteAlarms)>,
}

impl Plan {
    /// Nothing to do.
    pub fn is_empty(&self) -> bool {
        self.sites.is_empty()
    }

    /// The accounts whose open alarms the plan needs to know.
    pub fn accounts(&self) -> impl Iterator<Item = &str> {
        self.sites.iter().map(|(a, _)| a.as_str())
    }
}

/// The alarm work of `rows` (in commit order).
pub fn plan<'a>(rows: impl IntoIterator<Item = &'a EventRow>) -> Plan {
    let mut out = Plan::default();
    let mut at: foldhash::HashMap<&str, usize> = foldhash::HashMapExt::new();
    for (index, e) in rows.into_iter().enumerate() {
        let d = delta(e);
        let cat = category_with(e, d.duress);
        let restore = e.class == "restore" && e.kind == Some("communication");
        if cat.is_none() && d.cancel.is_none() && !restore {
            continue;
        }
        let i = *at.entry(e.account.as_str()).or_insert_with(|| {
            out.sites.push((e.account.clone(), SiteAlarms::default()));
            out.sites.len() - 1
        });
        let s = &mut out.sites[i].1;
        if let Some(category) = cat {
            let t = Trigger {
                category,
                at: e.received_at,
                code: e.code.clone(),
                zone: e.zone.clone(),
                partition: e.partition.clone(),
                meaning: e.meaning,
                frame_ref: e.frame_ref.clone(),
                seq_in_frame: e.seq_in_frame,
                index,
            };
            if s.top
                .as_ref()
                .is_none_or(|top| category.priority() < top.category.priority())
            {
                s.top = Some(t.clone());
            }
            s.first.get_or_insert(t);
        }
        let mark = |user| Mark {
            user,
            at: e.received_at,
            code: e.code.clone(),
            index,
        };
        if let Some(user) = d.cancel {
            s.cancel = Some(mark(user));
        }
        if restore {
            s.restore = Some(mark(None));
        }
    }
    out
}

/// A site's newest open alarm, as the store found it.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct OpenAlarm {
    pub id: i64,
    pub priority: i32,
    pub opened_at: i64,
}

/// Which alarm a mark applies to.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Target {
    /// The alarm this batch opens.
    New,
    /// An alarm that was already open.
    Existing(i64),
}

/// What to write for one site.
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct Steps<'a> {
    /// Open a new alarm with this start, at the priority of `top`.
    pub open: Option<(&'a Trigger, &'a Trigger)>,
    /// Raise open alarm `id` to the trigger's category.
    pub raise: Option<(i64, &'a Trigger)>,
    /// Mark an alarm cancelled at the panel.
    pub cancel: Option<(Target, &'a Mark)>,
}

/// The steps for one site, given its newest open alarm before the batch and the earliest
/// opening time of an alarm that may still be joined.
pub fn steps(s: &SiteAlarms, open: Option<OpenAlarm>, join_after: i64) -> Steps<'_> {
    let mut out = Steps::default();
    let joinable = open.filter(|o| o.opened_at >= join_after);
    if let (Some(first), Some(top)) = (&s.first, &s.top) {
        match joinable {
            Some(o) if top.category.priority() < o.priority => out.raise = Some((o.id, top)),
            Some(_) => {}
            None => out.open = Some((first, top)),
        }
    }
    // A cancel applies to the alarm open when it arrived: the new one if it came after that
    // alarm's first event, else the one already open (if any).
    if let Some(c) = &s.cancel {
        let target = match (&out.open, open) {
            (Some((first, _)), _) if c.index > first.index => Some(Target::New),
            (_, Some(o)) => Some(Target::Existing(o.id)),
            _ => None,
        };
        out.cancel = target.map(|t| (t, c));
    }
    out
}

#[cfg(test)]
mod tests {
    use vakt_protocol::event::{decode_payload, sia_events};
    use vakt_protocol::sia_dcs::parse_sia_data;

    use super::*;
    use crate::pipeline::event_row;

    const ALL: [Category; 11] = [
        Category::Fire,
        Category::HoldUp,
        Category::Duress,
        Category::Panic,
        Category::Medical,
        Category::Gas,
        Category::Burglary,
        Category::Environmental,
        Category::Tamper,
        Category::Technical,
        Category::Supervision,
    ];

    fn row(account: &str, e: &vakt_protocol::event::Event<'_>, at: i64) -> EventRow {
        let base = EventRow {
            account: account.into(),
            received_at: at,
            frame_ref: format!("f{at}"),
            ..EventRow::default()
        };
        event_row(&base, 0, e)
    }

    fn cid(account: &str, data: &str, at: i64) -> EventRow {
        let p = decode_payload(vakt_protocol::dc09::TokenKind::AdmCid, data.as_bytes()).unwrap();
        row(account, &p.events()[0], at)
    }

    fn sia(account: &str, data: &str, at: i64) -> EventRow {
        let d = parse_sia_data(data.as_bytes()).unwrap();
        row(account, &sia_events(&d)[0], at)
    }

    #[test]
    fn categories_and_priorities() {
        let c = |d: &str| category(&cid("1", d, 0));
        assert_eq!(c("#1234|1110 01 001"), Some(Category::Fire));
        assert_eq!(c("#1234|1121 01 003"), Some(Category::Duress));
        assert_eq!(c("#1234|1120 01 001"), Some(Category::Panic));
        assert_eq!(c("#1234|1100 01 001"), Some(Category::Medical));
        assert_eq!(c("#1234|1151 01 001"), Some(Category::Gas));
        assert_eq!(c("#1234|1130 01 001"), Some(Category::Burglary));
        assert_eq!(c("#1234|1137 01 001"), Some(Category::Tamper));
        assert_eq!(c("#1234|1301 00 000"), Some(Category::Technical));
        assert_eq!(c("#1234|1354 00 000"), Some(Category::Supervision));
        // Restores, openings, tests and status reports need no operator.
        assert_eq!(c("#1234|3130 01 001"), None);
        assert_eq!(c("#1234|1401 01 001"), None);
        assert_eq!(c("#1234|1602 00 000"), None);
        assert_eq!(c("#1234|6130 01 001"), None);
        let s = |d: &str| category(&sia("1", d, 0));
        assert_eq!(s("#1234|NFA1"), Some(Category::Fire));
        assert_eq!(s("#1234|NHA1"), Some(Category::Duress));
        assert_eq!(s("#1234|NBA1"), Some(Category::Burglary));
        assert_eq!(s("#1234|NYC"), Some(Category::Supervision));
        assert_eq!(s("#1234|NBR1"), None);
        assert!(Category::Fire.priority() < Category::Medical.priority());
        assert!(Category::Medical.priority() < Category::Gas.priority());
        assert!(Category::Gas.priority() < Category::Burglary.priority());
        assert!(Category::Burglary.priority() < Category::Tamper.priority());
        assert!(Category::Tamper.priority() < Category::Technical.priority());
        assert!(Category::Technical.priority() < Category::Supervision.priority());
        let names: std::collections::HashSet<_> = ALL.iter().map(|c| c.name()).collect();
        assert_eq!(names.len(), ALL.len(), "names are distinct");
    }

    #[test]
    fn a_batch_opens_once_per_site_at_its_top_priority() {
        let rows = [
            cid("A", "#1234|1130 01 001", 1),
            cid("B", "#1234|1130 01 001", 2),
            cid("A", "#1234|1110 01 002", 3),
            cid("A", "#1234|3130 01 001", 4),
        ];
        let p = plan(&rows);
        assert_eq!(p.accounts().collect::<Vec<_>>(), ["A", "B"]);
        let a = &p.sites[0].1;
        assert_eq!(a.first.as_ref().unwrap().category, Category::Burglary);
        assert_eq!(a.top.as_ref().unwrap().category, Category::Fire);
        let st = steps(a, None, 0);
        let (first, top) = st.open.unwrap();
        assert_eq!((first.at, top.at), (1, 3));
        assert!(plan(&[cid("A", "#1234|1401 01 001", 1)]).is_empty());
    }

    #[test]
    fn joins_within_the_window_and_raises_priority() {
        let open = OpenAlarm {
            id: 7,
            priority: Category::Burglary.priority(),
            opened_at: 100,
        };
        let p = plan(&[cid("A", "#1234|1130 01 001", 200)]);
        let a = &p.sites[0].1;
        assert_eq!(
            steps(a, Some(open), 50),
            Steps::default(),
            "joined, nothing written"
        );
        assert!(
            steps(a, Some(open), 150).open.is_some(),
            "too old: a new alarm"
        );
        let p = plan(&[cid("A", "#1234|1110 01 001", 200)]);
        let st = steps(&p.sites[0].1, Some(open), 50);
        assert_eq!(
            st.raise.map(|(id, t)| (id, t.category)),
            Some((7, Category::Fire))
        );
    }

    #[test]
    fn a_cancel_marks_the_alarm_open_when_it_came() {
        let open = OpenAlarm {
            id: 7,
            priority: 4,
            opened_at: 0,
        };
        // Alarm then cancel in one batch, no alarm before: the new one.
        let p = plan(&[
            cid("A", "#1234|1130 01 001", 1),
            cid("A", "#1234|1406 01 003", 2),
        ]);
        let st = steps(&p.sites[0].1, None, 0);
        let (t, m) = st.cancel.unwrap();
        assert_eq!((t, m.user.as_deref()), (Target::New, Some("3")));
        // Cancel then a new alarm (window passed): the cancel was for the old one.
        let p = plan(&[
            cid("A", "#1234|1406 01 003", 5),
            cid("A", "#1234|1130 01 001", 6),
        ]);
        let st = steps(&p.sites[0].1, Some(open), 1);
        assert!(st.open.is_some());
        assert_eq!(st.cancel.unwrap().0, Target::Existing(7));
        // SIA OR (disarm after alarm) cancels too; nothing open: nothing to mark.
        let p = plan(&[sia("A", "#1234|NOR3", 1)]);
        assert!(p.sites[0].1.cancel.is_some());
        assert_eq!(steps(&p.sites[0].1, None, 0).cancel, None);
    }
}
