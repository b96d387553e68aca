//! What one stored event changes in its site's state (issue #5): the arming of a partition,
//! the state of a zone, a "not ready" episode, a cancel at the panel, duress. A pure function
//! of the event's decoded fields, so the writer can turn it into updates inside the
//! transaction that stores the event, and every node derives the same state.
//!
//! The rules follow PROTOCOLS.md §6 and the code tables of §4: arming from the OP/CL family
//! (SIA) and Contact ID 40x/441/442/456 with qualifier 1 = opening, 3 = closing; zones from
//! alarm, trouble, tamper, bypass events and their restores; "not ready" only from what panels
//! actually report (fail to arm, exit errors, forced arming and forced points), never invented.

use crate::store::EventRow;

/// A partition's arming.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum Arming {
    Disarmed,
    ArmedAway,
    /// Armed stay / perimeter / partial.
    ArmedStay,
}

impl Arming {
    /// Stable snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Disarmed => "disarmed",
            Self::ArmedAway => "armed_away",
            Self::ArmedStay => "armed_stay",
        }
    }
}

/// A zone's state.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum ZoneState {
    Normal,
    Alarm,
    Trouble,
    Tamper,
    Bypassed,
}

impl ZoneState {
    /// Stable snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::Normal => "normal",
            Self::Alarm => "alarm",
            Self::Trouble => "trouble",
            Self::Tamper => "tamper",
            Self::Bypassed => "bypassed",
        }
    }

    /// The state of a stored name.
    pub fn from_name(name: &str) -> Option<Self> {
        [
            Self::Normal,
            Self::Alarm,
            Self::Trouble,
            Self::Tamper,
            Self::Bypassed,
        ]
        .into_iter()
        .find(|s| s.name() == name)
    }

    /// Whether a zone in this state makes its partition not ready to arm.
    pub fn blocks_arming(self) -> bool {
        matches!(self, Self::Alarm | Self::Trouble | Self::Tamper)
    }
}

/// Why the panel reported the partition not ready.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum NotReady {
    /// Contact ID 454/455, SIA `CI`: arming failed.
    FailToArm,
    /// Contact ID 374/457, SIA `EA`/`EE`: a zone still open when the exit delay ended.
    ExitError,
    /// SIA `CF`/`NF`/`CW`: armed with zones not ready.
    ForcedArming,
    /// SIA `XW`: a zone forced out at arming.
    ForcedPoint,
}

impl NotReady {
    /// Stable snake_case name.
    pub fn name(self) -> &'static str {
        match self {
            Self::FailToArm => "fail_to_arm",
            Self::ExitError => "exit_error",
            Self::ForcedArming => "forced_arming",
            Self::ForcedPoint => "forced_point",
        }
    }
}

/// What one event changes.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Delta {
    /// The partition's new arming, and by which user.
    pub arming: Option<(Arming, Option<String>)>,
    /// The zone's new state.
    pub zone: Option<(String, ZoneState)>,
    /// A not-ready episode (with the zone, when the panel named one).
    pub not_ready: Option<(NotReady, Option<String>)>,
    /// Cancelled or aborted at the panel (Contact ID 406, SIA BC/FC/OC/AB, OR), by this user.
    pub cancel: Option<Option<String>>,
    /// A duress code was used (Contact ID 121, SIA HA): never an ordinary opening.
    pub duress: bool,
}

/// A zone, partition or user number without leading zeros: Contact ID writes zone 5 as
/// `005`, SIA as `5`, and both must land on the same zone.
fn number(s: &str) -> String {
    let t = s.trim_start_matches('0');
    if t.is_empty() && !s.is_empty() {
        "0".into()
    } else {
        t.to_owned()
    }
}

/// The partition an event belongs to (`""`: the panel gave none; Contact ID group `00` is
/// "no group" too).
pub fn partition(e: &EventRow) -> String {
    match e.partition.as_deref().map(number) {
        Some(p) if p != "0" => p,
        _ => String::new(),
    }
}

/// What `e` changes in its site's state.
pub fn delta(e: &EventRow) -> Delta {
    let code = e.code.as_deref().unwrap_or("");
    match e.scheme {
        Some("contact_id") => contact_id(e, code),
        Some("sia") => sia(e, code),
        _ => Delta::default(),
    }
}

fn user(e: &EventRow) -> Option<String> {
    e.user_no.as_deref().map(number)
}

fn zone(e: &EventRow) -> Option<String> {
    e.zone.as_deref().map(number)
}

/// Alarm, trouble, tamper and bypass events of a zone, and their restores.
fn zone_change(e: &EventRow, restore: bool) -> Option<(String, ZoneState)> {
    let z = zone(e)?;
    let state = if restore {
        ZoneState::Normal
    } else {
        match (e.class, e.kind) {
            ("bypass", _) => ZoneState::Bypassed,
            ("unbypass", _) => ZoneState::Normal,
            (_, Some("tamper")) => ZoneState::Tamper,
            ("alarm", _) => ZoneState::Alarm,
            ("trouble" | "supervisory", _) => ZoneState::Trouble,
            ("restore", _) => ZoneState::Normal,
            _ => return None,
        }
    };
    Some((z, state))
}

fn contact_id(e: &EventRow, code: &str) -> Delta {
    let mut d = Delta::default();
    let q = e.qualifier.as_deref();
    // Qualifier 6 is a status report of a condition still present: evidence, not a change
    // of arming; for zones it repeats the state, which is harmless.
    let opening = q == Some("1");
    let closing = q == Some("3");
    match code {
        "400" | "401" | "403" | "407" | "408" | "409" if opening || closing => {
            let a = if opening {
                Arming::Disarmed
            } else {
                Arming::ArmedAway
            };
            d.arming = Some((a, user(e)));
        }
        "441" | "442" | "456" if opening || closing => {
            let a = if opening {
                Arming::Disarmed
            } else {
                Arming::ArmedStay
            };
            d.arming = Some((a, user(e)));
        }
        "406" => d.cancel = Some(user(e)),
        "121" => d.duress = true,
        "454" | "455" => d.not_ready = Some((NotReady::FailToArm, None)),
        "374" => d.not_ready = Some((NotReady::ExitError, zone(e))),
        "457" => d.not_ready = Some((NotReady::ExitError, None)),
        _ => {
            if e.class == "bypass" || code.starts_with("57") {
                // 570–574: qualifier 1 bypassed, 3 unbypassed.
                if let Some(z) = zone(e) {
                    let s = if closing {
                        ZoneState::Normal
                    } else {
                        ZoneState::Bypassed
                    };
                    d.zone = Some((z, s));
                }
            } else if matches!(e.class, "alarm" | "trouble" | "supervisory" | "restore") {
                d.zone = zone_change(e, closing);
            }
        }
    }
    d
}

fn sia(e: &EventRow, code: &str) -> Delta {
    let mut d = Delta::default();
    match code {
        "OP" | "OA" | "OQ" | "OS" | "OG" => d.arming = Some((Arming::Disarmed, user(e))),
        "OR" => {
            d.arming = Some((Arming::Disarmed, user(e)));
            d.cancel = Some(user(e));
        }
        "CL" | "CA" | "CQ" | "CS" => d.arming = Some((Arming::ArmedAway, user(e))),
        "CG" | "NL" => d.arming = Some((Arming::ArmedStay, user(e))),
        "CF" | "CW" => {
            d.arming = Some((Arming::ArmedAway, user(e)));
            d.not_ready = Some((NotReady::ForcedArming, None));
        }
        "NF" => {
            d.arming = Some((Arming::ArmedStay, user(e)));
            d.not_ready = Some((NotReady::ForcedArming, None));
        }
        "XW" => d.not_ready = Some((NotReady::ForcedPoint, zone(e))),
        "CI" => d.not_ready = Some((NotReady::FailToArm, None)),
        "EA" => d.not_ready = Some((NotReady::ExitError, zone(e))),
        "EE" => d.not_ready = Some((NotReady::ExitError, None)),
        "OC" | "AB" | "BC" | "FC" => d.cancel = Some(user(e)),
        "HA" => d.duress = true,
        "BB" | "FB" | "UB" => d.zone = zone(e).map(|z| (z, ZoneState::Bypassed)),
        "BU" | "FU" | "UU" => d.zone = zone(e).map(|z| (z, ZoneState::Normal)),
        _ => d.zone = zone_change(e, e.class == "restore"),
    }
    d
}

/// A partition's new arming, ready to upsert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct PartitionRow {
    pub account: String,
    pub partition: String,
    pub arming: &'static str,
    pub user_no: Option<String>,
    pub changed_at: i64,
    pub code: Option<String>,
    pub frame_ref: String,
    pub seq_in_frame: i32,
}

/// A zone's new state, ready to upsert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct ZoneRow {
    pub account: String,
    pub zone: String,
    pub partition: String,
    pub state: &'static str,
    pub since: i64,
    pub code: Option<String>,
    pub frame_ref: String,
    pub seq_in_frame: i32,
    /// An earlier event of the same batch put the zone in another state (or partition), so
    /// this row is the zone's state whatever is stored: written even where the stored row
    /// already has this state. Otherwise a stored row in this state is kept, with its `since`
    /// and event, those that entered the state.
    pub replaces: bool,
}

/// A not-ready episode, ready to insert.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct NotReadyRow {
    pub account: String,
    pub partition: String,
    pub reason: &'static str,
    pub zone: Option<String>,
    pub at: i64,
    pub code: Option<String>,
    pub frame_ref: String,
    pub seq_in_frame: i32,
}

/// The state changes of the events committed together, coalesced to one row per partition
/// and per zone, so a batch costs one upsert per partition and zone it touched (and a
/// database that refuses one row twice in one upsert never sees it). A partition's last
/// change wins. A zone's row is the same as applying its events one by one: a report of the
/// state the zone is already in changes nothing, so the row is the event that entered the
/// zone's final state (see [`ZoneRow::replaces`]) — whichever way the events were batched.
#[derive(Debug, Clone, Default, PartialEq, Eq)]
pub struct Changes {
    pub partitions: Vec<PartitionRow>,
    pub zones: Vec<ZoneRow>,
    pub not_ready: Vec<NotReadyRow>,
}

impl Changes {
    /// Nothing to write.
    pub fn is_empty(&self) -> bool {
        self.partitions.is_empty() && self.zones.is_empty() && self.not_ready.is_empty()
    }
}

/// `later`, the zone's row for events after those `held` stands for, folded into it: the row
/// for all of them, as if applied one by one. Still in the state an earlier event entered:
/// that event stays the zone's; a different state (or a row that replaces whatever is stored)
/// replaces it, and with it whatever the database holds. Folding a stored row with the row of
/// events it already reflects changes nothing, so a row may be applied twice.
pub fn fold_zone(held: &mut ZoneRow, later: ZoneRow) {
    if later.replaces || (held.state, &held.partition) != (later.state, &later.partition) {
        *held = ZoneRow {
            replaces: true,
            ..later
        };
    }
}

/// The changes `rows` (in commit order) make.
pub fn changes<'a>(rows: impl IntoIterator<Item = &'a EventRow>) -> Changes {
    use foldhash::{HashMap, HashMapExt};
    use std::collections::hash_map::Entry;
    let mut out = Changes::default();
    // Keyed by the event's own account: one copy fewer per row than an owned key.
    let mut part_at: HashMap<(&str, String), usize> = HashMap::new();
    let mut zone_at: HashMap<(&str, String), usize> = HashMap::new();
    for e in rows {
        let d = delta(e);
        if d == Delta::default() {
            continue;
        }
        let p = partition(e);
        if let Some((arming, user_no)) = d.arming {
            let row = PartitionRow {
                account: e.account.clone(),
                partition: p.clone(),
                arming: arming.name(),
                user_no,
                changed_at: e.received_at,
                code: e.code.clone(),
                frame_ref: e.frame_ref.clone(),
                seq_in_frame: e.seq_in_frame,
            };
            match part_at.entry((e.account.as_str(), p.clone())) {
                Entry::Occupied(i) => out.partitions[*i.get()] = row,
                Entry::Vacant(v) => {
                    v.insert(out.partitions.len());
                    out.partitions.push(row);
                }
            }
        }
        if let Some((zone, state)) = d.zone {
            let row = ZoneRow {
                account: e.account.clone(),
                zone: zone.clone(),
                partition: p.clone(),
                state: state.name(),
                since: e.received_at,
                code: e.code.clone(),
                frame_ref: e.frame_ref.clone(),
                seq_in_frame: e.seq_in_frame,
                replaces: false,
            };
            match zone_at.entry((e.account.as_str(), zone)) {
                Entry::Occupied(i) => fold_zone(&mut out.zones[*i.get()], row),
                Entry::Vacant(v) => {
                    v.insert(out.zones.len());
                    out.zones.push(row);
                }
            }
        }
        if let Some((reason, zone)) = d.not_ready {
            out.not_ready.push(NotReadyRow {
                account: e.account.clone(),
                partition: p,
                reason: reason.name(),
                zone,
                at: e.received_at,
                code: e.code.clone(),
                frame_ref: e.frame_ref.clone(),
                seq_in_frame: e.seq_in_frame,
            });
        }
    }
    out
}

#[cfg(test)]
mod tests {
    use vakt_protocol::event::{decode_payload, sia_events, Event};
    use vakt_protocol::sia_dcs::parse_sia_data;

    use super::*;
    use crate::pipeline::event_row;

    fn cid(data: &str) -> EventRow {
        let p = decode_payload(vakt_protocol::dc09::TokenKind::AdmCid, data.as_bytes()).unwrap();
        let e = &p.events()[0];
        event_row(&EventRow::default(), 0, e)
    }

    fn sia(data: &str) -> Vec<EventRow> {
        let d = parse_sia_data(data.as_bytes()).unwrap();
        sia_events(&d)
            .iter()
            .map(|e: &Event<'_>| event_row(&EventRow::default(), 0, e))
            .collect()
    }

    #[test]
    fn contact_id_arming_by_qualifier() {
        let d = delta(&cid("#1234|3401 02 007"));
        assert_eq!(d.arming, Some((Arming::ArmedAway, Some("7".into()))));
        assert_eq!(partition(&cid("#1234|3401 02 007")), "2");
        let d = delta(&cid("#1234|1401 02 007"));
        assert_eq!(d.arming, Some((Arming::Disarmed, Some("7".into()))));
        let d = delta(&cid("#1234|3441 01 003"));
        assert_eq!(d.arming.unwrap().0, Arming::ArmedStay);
        // A status report (qualifier 6) is not an arming change.
        assert_eq!(delta(&cid("#1234|6401 01 003")).arming, None);
    }

    #[test]
    fn contact_id_zones_not_ready_cancel_duress() {
        let d = delta(&cid("#1234|1131 01 015"));
        assert_eq!(d.zone, Some(("15".into(), ZoneState::Alarm)));
        let d = delta(&cid("#1234|3131 01 015"));
        assert_eq!(d.zone, Some(("15".into(), ZoneState::Normal)));
        let d = delta(&cid("#1234|1570 01 004"));
        assert_eq!(d.zone, Some(("4".into(), ZoneState::Bypassed)));
        assert_eq!(
            delta(&cid("#1234|1454 01 000")).not_ready,
            Some((NotReady::FailToArm, None))
        );
        assert_eq!(
            delta(&cid("#1234|1374 01 009")).not_ready,
            Some((NotReady::ExitError, Some("9".into())))
        );
        assert_eq!(
            delta(&cid("#1234|1406 01 003")).cancel,
            Some(Some("3".into()))
        );
        let d = delta(&cid("#1234|1121 01 003"));
        assert!(d.duress);
        assert_eq!(d.arming, None, "duress is never an ordinary opening");
    }

    #[test]
    fn a_batch_keeps_the_last_change_of_each_partition_and_zone() {
        let mut rows = sia("#1234|Nri1/BA5/BR5/CL12/XW7");
        rows.push(cid("#1234|1131 01 005"));
        for r in &mut rows {
            r.account = "1234".into();
        }
        let c = changes(&rows);
        assert_eq!(c.zones.len(), 1, "{c:?}");
        assert_eq!(c.zones[0].state, "alarm");
        assert_eq!(c.zones[0].zone, "5");
        assert_eq!(c.partitions.len(), 1);
        assert_eq!(c.partitions[0].arming, "armed_away");
        assert_eq!(c.not_ready.len(), 1);
        assert_eq!(c.not_ready[0].reason, "forced_point");
        assert!(changes(&sia("#1234|Nri1/RP")).is_empty());
    }

    #[test]
    fn sia_arming_zones_and_not_ready() {
        let rows = sia("#1234|Nri1/CL12/BA5/BR5/TA6/BB7/BU7");
        let d: Vec<Delta> = rows.iter().map(delta).collect();
        assert_eq!(d[0].arming.as_ref().unwrap().0, Arming::ArmedAway);
        assert_eq!(d[1].zone, Some(("5".into(), ZoneState::Alarm)));
        assert_eq!(d[2].zone, Some(("5".into(), ZoneState::Normal)));
        assert_eq!(d[3].zone.as_ref().unwrap().1, ZoneState::Tamper);
        assert_eq!(d[4].zone, Some(("7".into(), ZoneState::Bypassed)));
        assert_eq!(d[5].zone, Some(("7".into(), ZoneState::Normal)));
        let d = delta(&sia("#1234|Nri1/CF3")[0]);
        assert_eq!(d.not_ready, Some((NotReady::ForcedArming, None)));
        assert_eq!(d.arming.unwrap().0, Arming::ArmedAway);
        let d = delta(&sia("#1234|Nri1/XW12")[0]);
        assert_eq!(
            d.not_ready,
            Some((NotReady::ForcedPoint, Some("12".into())))
        );
        let d = delta(&sia("#1234|Nri1/OR3")[0]);
        assert_eq!(d.arming.unwrap().0, Arming::Disarmed);
        assert!(d.cancel.is_some());
        assert!(delta(&sia("#1234|Nri1/HA3")[0]).duress);
    }

    /// Numbered as one batch: event i received at i seconds, as seq_in_frame i.
    fn batch(data: &str) -> Vec<EventRow> {
        let mut rows = sia(data);
        for (i, r) in rows.iter_mut().enumerate() {
            r.seq_in_frame = i as i32;
            r.received_at = i as i64 * 1_000_000;
        }
        rows
    }

    #[test]
    fn a_zone_changed_twice_in_a_batch_is_the_event_that_entered_its_last_state() {
        // Alarm, restore, alarm again: the last alarm entered the state, and the row must
        // replace a stored alarm row (applied one by one, the restore would have).
        let c = changes(&batch("#1234|Nri1/BA5/BR5/BA5"));
        assert_eq!(c.zones.len(), 1, "{c:?}");
        let z = &c.zones[0];
        assert_eq!((z.state, z.seq_in_frame, z.since), ("alarm", 2, 2_000_000));
        assert!(z.replaces);
        // The same state twice: the first report entered it, and a stored row in that state
        // stays (the second report changes nothing, applied one by one).
        let c = changes(&batch("#1234|Nri1/BA6/BA6"));
        let z = &c.zones[0];
        assert_eq!((z.state, z.seq_in_frame, z.since), ("alarm", 0, 0));
        assert!(!z.replaces);
        // Moved to another partition in the same state: replaces.
        let c = changes(&batch("#1234|Nri1/BA7/ri2/BA7"));
        let z = &c.zones[0];
        assert_eq!((z.partition.as_str(), z.seq_in_frame), ("2", 1));
        assert!(z.replaces);
    }
}
