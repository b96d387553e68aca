//! The event-code catalogue (PROTOCOLS.md §3.4, §4.3, §4.4) as tables of data: meaning, class,
//! kind and what the address means, for Contact ID and SIA codes, and the mapping between them.
//!
//! Unknown codes are representable everywhere (class [`Class::Unknown`], raw code kept): an
//! unknown code is still something an operator must see.

/// What an event means for the operator.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum Class {
    /// An alarm: needs an operator.
    Alarm,
    /// A restore of an alarm or trouble.
    Restore,
    /// Opening: disarmed.
    Opening,
    /// Closing: armed.
    Closing,
    /// Cancel or abort by the user (the panel-side counterpart of a revoke).
    Cancel,
    /// A trouble (technical fault).
    Trouble,
    /// A zone bypassed.
    Bypass,
    /// A zone unbypassed.
    Unbypass,
    /// A test report.
    Test,
    /// A supervisory condition.
    Supervisory,
    /// Access control (door granted, denied, forced).
    Access,
    /// Information with no state change.
    Info,
    /// A supervision heartbeat (DC-09 `NULL`, receiver heartbeat).
    LinkTest,
    /// A code vakt does not know.
    Unknown,
}

impl Class {
    /// Stable snake_case name.
    pub fn name(&self) -> &'static str {
        use Class::*;
        match self {
            Alarm => "alarm",
            Restore => "restore",
            Opening => "opening",
            Closing => "closing",
            Cancel => "cancel",
            Trouble => "trouble",
            Bypass => "bypass",
            Unbypass => "unbypass",
            Test => "test",
            Supervisory => "supervisory",
            Access => "access",
            Info => "info",
            LinkTest => "link_test",
            Unknown => "unknown",
        }
    }

    /// Every class.
    pub const ALL: [Self; 14] = {
        use Class::*;
        [
            Alarm,
            Restore,
            Opening,
            Closing,
            Cancel,
            Trouble,
            Bypass,
            Unbypass,
            Test,
            Supervisory,
            Access,
            Info,
            LinkTest,
            Unknown,
        ]
    };

    /// The class whose [`Class::name`] this is (as read back from storage).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|c| c.name() == name)
    }
}

/// What an event is about: the kind of alarm, or the subject of a trouble.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
#[allow(missing_docs)]
pub enum Kind {
    Fire,
    Panic,
    HoldUp,
    Duress,
    Medical,
    Emergency,
    Burglary,
    Tamper,
    Gas,
    CarbonMonoxide,
    Water,
    Heat,
    Freeze,
    Sprinkler,
    Auxiliary,
    ExitError,
    WrongCode,
    Power,
    Battery,
    Communication,
    PhoneLine,
    Network,
    Expansion,
    Sounder,
    Sensor,
    System,
    Programming,
    Access,
}

impl Kind {
    /// Stable snake_case name.
    pub fn name(&self) -> &'static str {
        use Kind::*;
        match self {
            Fire => "fire",
            Panic => "panic",
            HoldUp => "hold_up",
            Duress => "duress",
            Medical => "medical",
            Emergency => "emergency",
            Burglary => "burglary",
            Tamper => "tamper",
            Gas => "gas",
            CarbonMonoxide => "carbon_monoxide",
            Water => "water",
            Heat => "heat",
            Freeze => "freeze",
            Sprinkler => "sprinkler",
            Auxiliary => "auxiliary",
            ExitError => "exit_error",
            WrongCode => "wrong_code",
            Power => "power",
            Battery => "battery",
            Communication => "communication",
            PhoneLine => "phone_line",
            Network => "network",
            Expansion => "expansion",
            Sounder => "sounder",
            Sensor => "sensor",
            System => "system",
            Programming => "programming",
            Access => "access",
        }
    }

    /// Every kind.
    pub const ALL: [Self; 28] = {
        use Kind::*;
        [
            Fire,
            Panic,
            HoldUp,
            Duress,
            Medical,
            Emergency,
            Burglary,
            Tamper,
            Gas,
            CarbonMonoxide,
            Water,
            Heat,
            Freeze,
            Sprinkler,
            Auxiliary,
            ExitError,
            WrongCode,
            Power,
            Battery,
            Communication,
            PhoneLine,
            Network,
            Expansion,
            Sounder,
            Sensor,
            System,
            Programming,
            Access,
        ]
    };

    /// The kind whose [`Kind::name`] this is (as read back from storage).
    pub fn from_name(name: &str) -> Option<Self> {
        Self::ALL.into_iter().find(|k| k.name() == name)
    }
}

/// What an event's address (Contact ID `CCC`, SIA address) identifies.
#[derive(Debug, Clone, Copy, PartialEq, Eq, Hash)]
pub enum AddressKind {
    /// A zone (point, sensor).
    Zone,
    /// A user number.
    User,
    /// An area (partition).
    Area,
    /// A door (access control).
    Door,
    /// Nothing in particular (often `000`).
    None,
}

impl AddressKind {
    /// Stable snake_case name.
    pub fn name(&self) -> &'static str {
        match self {
            Self::Zone => "zone",
            Self::User => "user",
            Self::Area => "area",
            Self::Door => "door",
            Self::None => "none",
        }
    }
}

/// How a Contact ID code's class follows from its qualifier (§3.3).
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum CidFamily {
    /// 1 = alarm, 3 = restore, 6 = alarm still present.
    Alarm,
    /// 1 = trouble, 3 = restore.
    Trouble,
    /// 1 = supervisory, 3 = restore.
    Supervisory,
    /// 1 = opening (disarm), 3 = closing (arm).
    OpenClose,
    /// Cancel by the user, whatever the qualifier.
    Cancel,
    /// 1 = bypass, 3 = unbypass.
    Bypass,
    /// A test, whatever the qualifier.
    Test,
    /// Information, whatever the qualifier.
    Info,
}

/// One Contact ID code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct CidCode {
    /// The 3-digit code.
    pub code: u16,
    /// What it means.
    pub meaning: &'static str,
    /// How the qualifier selects the class.
    pub family: CidFamily,
    /// Kind of alarm or subject.
    pub kind: Option<Kind>,
    /// What `CCC` identifies.
    pub address: AddressKind,
    /// SIA equivalent for qualifier 1 (new event / opening).
    pub sia_new: Option<&'static str>,
    /// SIA equivalent for qualifier 3 (restore / closing).
    pub sia_restore: Option<&'static str>,
}

/// One SIA code.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct SiaCode {
    /// The two-letter code.
    pub code: &'static str,
    /// What it means.
    pub meaning: &'static str,
    /// Its class.
    pub class: Class,
    /// Kind of alarm or subject.
    pub kind: Option<Kind>,
    /// What the address identifies.
    pub address: AddressKind,
}

use AddressKind as A;
use CidFamily as F;
use Kind as K;

macro_rules! cid {
    ($code:expr, $meaning:expr, $fam:ident, $kind:expr, $addr:ident, $new:expr, $restore:expr) => {
        CidCode {
            code: $code,
            meaning: $meaning,
            family: F::$fam,
            kind: $kind,
            address: A::$addr,
            sia_new: $new,
            sia_restore: $restore,
        }
    };
}

/// Contact ID codes, sorted by code (§3.4).
pub static CONTACT_ID: &[CidCode] = &[
    cid!(
        100,
        "medical",
        Alarm,
        Some(K::Medical),
        Zone,
        Some("MA"),
        Some("MH")
    ),
    cid!(
        101,
        "personal emergency",
        Alarm,
        Some(K::Emergency),
        Zone,
        Some("QA"),
        Some("QH")
    ),
    cid!(
        102,
        "fail to report in",
        Alarm,
        Some(K::Emergency),
        Zone,
        None,
        None
    ),
    cid!(
        110,
        "fire",
        Alarm,
        Some(K::Fire),
        Zone,
        Some("FA"),
        Some("FH")
    ),
    cid!(
        111,
        "smoke",
        Alarm,
        Some(K::Fire),
        Zone,
        Some("FA"),
        Some("FH")
    ),
    cid!(
        112,
        "combustion",
        Alarm,
        Some(K::Fire),
        Zone,
        Some("FA"),
        Some("FH")
    ),
    cid!(
        113,
        "water flow",
        Alarm,
        Some(K::Sprinkler),
        Zone,
        Some("WA"),
        Some("WH")
    ),
    cid!(
        114,
        "heat",
        Alarm,
        Some(K::Heat),
        Zone,
        Some("KA"),
        Some("KH")
    ),
    cid!(
        115,
        "pull station",
        Alarm,
        Some(K::Fire),
        Zone,
        Some("FA"),
        Some("FH")
    ),
    cid!(
        117,
        "flame",
        Alarm,
        Some(K::Fire),
        Zone,
        Some("FA"),
        Some("FH")
    ),
    cid!(
        118,
        "near alarm (fire)",
        Alarm,
        Some(K::Fire),
        Zone,
        None,
        None
    ),
    cid!(
        120,
        "panic",
        Alarm,
        Some(K::Panic),
        Zone,
        Some("PA"),
        Some("PH")
    ),
    cid!(
        121,
        "duress",
        Alarm,
        Some(K::Duress),
        User,
        Some("HA"),
        Some("HH")
    ),
    cid!(
        122,
        "silent panic (hold-up)",
        Alarm,
        Some(K::HoldUp),
        Zone,
        Some("HA"),
        Some("HH")
    ),
    cid!(
        123,
        "audible panic",
        Alarm,
        Some(K::Panic),
        Zone,
        Some("PA"),
        Some("PH")
    ),
    cid!(
        130,
        "burglary",
        Alarm,
        Some(K::Burglary),
        Zone,
        Some("BA"),
        Some("BH")
    ),
    cid!(
        131,
        "perimeter burglary",
        Alarm,
        Some(K::Burglary),
        Zone,
        Some("BA"),
        Some("BH")
    ),
    cid!(
        132,
        "interior burglary",
        Alarm,
        Some(K::Burglary),
        Zone,
        Some("BA"),
        Some("BH")
    ),
    cid!(
        133,
        "24-hour (safe)",
        Alarm,
        Some(K::Burglary),
        Zone,
        Some("BA"),
        Some("BH")
    ),
    cid!(
        134,
        "entry/exit burglary",
        Alarm,
        Some(K::Burglary),
        Zone,
        Some("BA"),
        Some("BH")
    ),
    cid!(
        135,
        "day/night burglary",
        Alarm,
        Some(K::Burglary),
        Zone,
        Some("BA"),
        Some("BH")
    ),
    cid!(
        136,
        "outdoor burglary",
        Alarm,
        Some(K::Burglary),
        Zone,
        Some("BA"),
        Some("BH")
    ),
    cid!(
        137,
        "tamper",
        Alarm,
        Some(K::Tamper),
        Zone,
        Some("TA"),
        Some("TR")
    ),
    cid!(
        139,
        "intrusion verifier (confirmed)",
        Alarm,
        Some(K::Burglary),
        Zone,
        Some("BA"),
        Some("BH")
    ),
    cid!(
        140,
        "general alarm",
        Alarm,
        Some(K::Burglary),
        Zone,
        Some("BA"),
        Some("BH")
    ),
    cid!(
        143,
        "expansion module failure",
        Trouble,
        Some(K::Expansion),
        Zone,
        Some("ET"),
        Some("ER")
    ),
    cid!(
        144,
        "sensor tamper",
        Alarm,
        Some(K::Tamper),
        Zone,
        Some("TA"),
        Some("TR")
    ),
    cid!(
        145,
        "expansion module tamper",
        Alarm,
        Some(K::Tamper),
        Zone,
        None,
        None
    ),
    cid!(
        146,
        "silent burglary",
        Alarm,
        Some(K::Burglary),
        Zone,
        Some("HA"),
        Some("HH")
    ),
    cid!(
        147,
        "sensor supervision failure",
        Trouble,
        Some(K::Sensor),
        Zone,
        None,
        None
    ),
    cid!(
        150,
        "24-hour non-burglary (auxiliary)",
        Alarm,
        Some(K::Auxiliary),
        Zone,
        Some("UA"),
        Some("UH")
    ),
    cid!(
        151,
        "gas detected",
        Alarm,
        Some(K::Gas),
        Zone,
        Some("GA"),
        Some("GH")
    ),
    cid!(
        154,
        "water leakage",
        Alarm,
        Some(K::Water),
        Zone,
        Some("WA"),
        Some("WH")
    ),
    cid!(
        158,
        "high temperature",
        Alarm,
        Some(K::Heat),
        Zone,
        Some("KA"),
        Some("KH")
    ),
    cid!(
        159,
        "low temperature (freeze)",
        Alarm,
        Some(K::Freeze),
        Zone,
        Some("ZA"),
        Some("ZH")
    ),
    cid!(
        162,
        "carbon monoxide",
        Alarm,
        Some(K::CarbonMonoxide),
        Zone,
        Some("GA"),
        Some("GH")
    ),
    cid!(
        200,
        "fire supervisory",
        Supervisory,
        Some(K::Fire),
        Zone,
        None,
        None
    ),
    cid!(
        300,
        "system trouble",
        Trouble,
        Some(K::System),
        Zone,
        Some("YX"),
        Some("YZ")
    ),
    cid!(
        301,
        "AC loss (mains)",
        Trouble,
        Some(K::Power),
        Zone,
        Some("AT"),
        Some("AR")
    ),
    cid!(
        302,
        "low system battery",
        Trouble,
        Some(K::Battery),
        Zone,
        Some("YT"),
        Some("YR")
    ),
    cid!(
        305,
        "system reset",
        Info,
        Some(K::System),
        Zone,
        Some("YW"),
        None
    ),
    cid!(
        306,
        "panel programming changed",
        Info,
        Some(K::Programming),
        Zone,
        Some("YX"),
        None
    ),
    cid!(
        309,
        "battery test failure",
        Trouble,
        Some(K::Battery),
        Zone,
        Some("YT"),
        Some("YR")
    ),
    cid!(
        311,
        "battery missing/dead",
        Trouble,
        Some(K::Battery),
        Zone,
        Some("YM"),
        Some("YR")
    ),
    cid!(
        320,
        "sounder/relay trouble",
        Trouble,
        Some(K::Sounder),
        Zone,
        Some("RC"),
        Some("RO")
    ),
    cid!(
        321,
        "bell 1 trouble",
        Trouble,
        Some(K::Sounder),
        Zone,
        Some("YX"),
        Some("YZ")
    ),
    cid!(
        333,
        "expansion module failure",
        Trouble,
        Some(K::Expansion),
        Zone,
        Some("ET"),
        Some("ER")
    ),
    cid!(
        341,
        "module tamper",
        Trouble,
        Some(K::Tamper),
        Zone,
        Some("ET"),
        Some("ER")
    ),
    cid!(
        344,
        "RF receiver jam",
        Trouble,
        Some(K::Communication),
        Zone,
        Some("YC"),
        Some("YK")
    ),
    cid!(
        350,
        "communication trouble",
        Trouble,
        Some(K::Communication),
        Zone,
        Some("YC"),
        Some("YK")
    ),
    cid!(
        351,
        "telco 1 fault",
        Trouble,
        Some(K::PhoneLine),
        Zone,
        Some("LT"),
        Some("LR")
    ),
    cid!(
        354,
        "failure to communicate event",
        Trouble,
        Some(K::Communication),
        Zone,
        Some("YC"),
        Some("YK")
    ),
    cid!(
        373,
        "fire loop trouble",
        Trouble,
        Some(K::Fire),
        Zone,
        Some("FT"),
        Some("FJ")
    ),
    cid!(
        374,
        "exit error alarm (zone)",
        Alarm,
        Some(K::ExitError),
        Zone,
        Some("EA"),
        None
    ),
    cid!(
        380,
        "sensor trouble",
        Trouble,
        Some(K::Sensor),
        Zone,
        Some("YX"),
        Some("YZ")
    ),
    cid!(
        381,
        "loss of RF supervision",
        Trouble,
        Some(K::Sensor),
        Zone,
        Some("YC"),
        Some("YK")
    ),
    cid!(
        383,
        "sensor tamper",
        Trouble,
        Some(K::Tamper),
        Zone,
        Some("TA"),
        None
    ),
    cid!(
        384,
        "RF low battery",
        Trouble,
        Some(K::Battery),
        Zone,
        Some("XT"),
        Some("XR")
    ),
    cid!(
        393,
        "maintenance alert (detector dirty)",
        Trouble,
        Some(K::Sensor),
        Zone,
        Some("YX"),
        Some("YZ")
    ),
    cid!(
        400,
        "open/close",
        OpenClose,
        None,
        User,
        Some("OP"),
        Some("CL")
    ),
    cid!(
        401,
        "open/close by user",
        OpenClose,
        None,
        User,
        Some("OP"),
        Some("CL")
    ),
    cid!(
        402,
        "group open/close",
        OpenClose,
        None,
        User,
        Some("OB"),
        Some("CB")
    ),
    cid!(
        403,
        "automatic open/close",
        OpenClose,
        None,
        User,
        Some("OA"),
        Some("CA")
    ),
    cid!(406, "cancel", Cancel, None, User, Some("OC"), Some("OC")),
    cid!(
        407,
        "remote arm/disarm",
        OpenClose,
        None,
        User,
        Some("OQ"),
        Some("CQ")
    ),
    cid!(
        408,
        "quick arm",
        OpenClose,
        None,
        User,
        Some("OP"),
        Some("CL")
    ),
    cid!(
        409,
        "keyswitch open/close",
        OpenClose,
        None,
        Zone,
        Some("OS"),
        Some("CS")
    ),
    cid!(411, "callback request", Info, None, None, None, None),
    cid!(
        412,
        "successful download/access",
        Info,
        Some(K::Programming),
        None,
        Some("RB"),
        None
    ),
    cid!(
        441,
        "armed stay",
        OpenClose,
        None,
        User,
        Some("CG"),
        Some("CG")
    ),
    cid!(
        442,
        "keyswitch armed stay",
        OpenClose,
        None,
        Zone,
        None,
        None
    ),
    cid!(451, "early open/close", OpenClose, None, User, None, None),
    cid!(452, "late open/close", OpenClose, None, User, None, None),
    cid!(453, "failed to open", Info, None, User, Some("OI"), None),
    cid!(454, "failed to close", Info, None, User, Some("CI"), None),
    cid!(455, "auto-arm failed", Info, None, User, None, None),
    cid!(
        456,
        "partial arm",
        OpenClose,
        None,
        User,
        Some("OG"),
        Some("CG")
    ),
    cid!(
        457,
        "exit error (user)",
        Alarm,
        Some(K::ExitError),
        User,
        Some("EE"),
        None
    ),
    cid!(
        459,
        "recent close",
        Alarm,
        Some(K::Burglary),
        User,
        Some("CR"),
        None
    ),
    cid!(
        461,
        "wrong code entry",
        Alarm,
        Some(K::WrongCode),
        Zone,
        Some("DD"),
        None
    ),
    cid!(
        462,
        "legal code entry",
        Info,
        Some(K::Access),
        User,
        Some("DO"),
        None
    ),
    cid!(
        570,
        "zone/sensor bypass",
        Bypass,
        None,
        Zone,
        Some("BB"),
        Some("BU")
    ),
    cid!(
        571,
        "fire bypass",
        Bypass,
        Some(K::Fire),
        Zone,
        Some("FB"),
        Some("FU")
    ),
    cid!(572, "24-hour zone bypass", Bypass, None, Zone, None, None),
    cid!(
        573,
        "burglary zone bypass",
        Bypass,
        Some(K::Burglary),
        Zone,
        Some("BB"),
        Some("BU")
    ),
    cid!(574, "group bypass", Bypass, None, User, None, None),
    cid!(
        601,
        "manual trigger test",
        Test,
        None,
        Zone,
        Some("RX"),
        None
    ),
    cid!(
        602,
        "periodic test report",
        Test,
        None,
        Zone,
        Some("RP"),
        None
    ),
    cid!(
        603,
        "periodic RF transmission",
        Test,
        None,
        Zone,
        None,
        None
    ),
    cid!(
        604,
        "fire test",
        Test,
        Some(K::Fire),
        User,
        Some("FX"),
        Some("FK")
    ),
    cid!(
        607,
        "walk test mode",
        Test,
        None,
        User,
        Some("TS"),
        Some("TE")
    ),
    cid!(
        608,
        "periodic test, system trouble present",
        Test,
        None,
        Zone,
        Some("TX"),
        None
    ),
    cid!(621, "event log reset", Info, None, None, None, None),
    cid!(625, "time/date reset", Info, None, User, Some("JT"), None),
    cid!(
        627,
        "program mode entry",
        Info,
        Some(K::Programming),
        None,
        Some("LB"),
        None
    ),
    cid!(
        628,
        "program mode exit",
        Info,
        Some(K::Programming),
        None,
        Some("LX"),
        None
    ),
    cid!(654, "system inactivity", Info, None, None, Some("NA"), None),
];

macro_rules! sia {
    ($code:expr, $meaning:expr, $class:ident, $kind:expr, $addr:ident) => {
        SiaCode {
            code: $code,
            meaning: $meaning,
            class: Class::$class,
            kind: $kind,
            address: A::$addr,
        }
    };
}

/// SIA codes, sorted by code (§4.4).
pub static SIA: &[SiaCode] = &[
    sia!("AB", "abort", Cancel, None, User),
    sia!("AR", "AC restoral", Restore, Some(K::Power), Zone),
    sia!("AT", "AC trouble", Trouble, Some(K::Power), Zone),
    sia!("BA", "burglary alarm", Alarm, Some(K::Burglary), Zone),
    sia!("BB", "burglary bypass", Bypass, Some(K::Burglary), Zone),
    sia!("BC", "burglary cancel", Cancel, Some(K::Burglary), User),
    sia!(
        "BH",
        "burglary alarm restore",
        Restore,
        Some(K::Burglary),
        Zone
    ),
    sia!(
        "BJ",
        "burglary trouble restore",
        Restore,
        Some(K::Burglary),
        Zone
    ),
    sia!("BR", "burglary restoral", Restore, Some(K::Burglary), Zone),
    sia!(
        "BS",
        "burglary supervisory",
        Supervisory,
        Some(K::Burglary),
        Zone
    ),
    sia!("BT", "burglary trouble", Trouble, Some(K::Burglary), Zone),
    sia!("BU", "burglary unbypass", Unbypass, Some(K::Burglary), Zone),
    sia!("BV", "burglary verified", Alarm, Some(K::Burglary), Area),
    sia!("BX", "burglary test", Test, Some(K::Burglary), Zone),
    sia!("CA", "automatic closing", Closing, None, Area),
    sia!("CF", "forced closing", Closing, None, User),
    sia!("CG", "partial arm", Closing, None, Area),
    sia!("CI", "fail to close", Info, None, Area),
    sia!("CL", "closing report", Closing, None, User),
    sia!("CQ", "remote closing", Closing, None, User),
    sia!("CR", "recent closing", Alarm, Some(K::Burglary), User),
    sia!("CS", "keyswitch closing", Closing, None, Zone),
    sia!("CT", "late to open", Info, None, Area),
    sia!("CW", "was force armed", Closing, None, Area),
    sia!("DD", "access denied", Access, Some(K::Access), Door),
    sia!("DF", "door forced", Access, Some(K::Access), Door),
    sia!("DG", "access granted", Access, Some(K::Access), Door),
    sia!("EA", "exit alarm", Alarm, Some(K::ExitError), Zone),
    sia!("EE", "exit error", Alarm, Some(K::ExitError), User),
    sia!(
        "ER",
        "expansion restoral",
        Restore,
        Some(K::Expansion),
        Zone
    ),
    sia!("ET", "expansion trouble", Trouble, Some(K::Expansion), Zone),
    sia!("FA", "fire alarm", Alarm, Some(K::Fire), Zone),
    sia!("FB", "fire bypass", Bypass, Some(K::Fire), Zone),
    sia!("FC", "fire cancel", Cancel, Some(K::Fire), User),
    sia!("FH", "fire alarm restore", Restore, Some(K::Fire), Zone),
    sia!("FJ", "fire trouble restore", Restore, Some(K::Fire), Zone),
    sia!("FR", "fire restoral", Restore, Some(K::Fire), Zone),
    sia!("FS", "fire supervisory", Supervisory, Some(K::Fire), Zone),
    sia!("FT", "fire trouble", Trouble, Some(K::Fire), Zone),
    sia!("FU", "fire unbypass", Unbypass, Some(K::Fire), Zone),
    sia!("FX", "fire test", Test, Some(K::Fire), Zone),
    sia!("GA", "gas alarm", Alarm, Some(K::Gas), Zone),
    sia!("GH", "gas alarm restore", Restore, Some(K::Gas), Zone),
    sia!("HA", "hold-up alarm (duress)", Alarm, Some(K::HoldUp), Zone),
    sia!(
        "HH",
        "hold-up alarm restore",
        Restore,
        Some(K::HoldUp),
        Zone
    ),
    sia!("HR", "hold-up restoral", Restore, Some(K::HoldUp), Zone),
    sia!("JA", "user code tamper", Alarm, Some(K::WrongCode), Zone),
    sia!("JD", "date changed", Info, None, User),
    sia!("JT", "time changed", Info, None, User),
    sia!("KA", "heat alarm", Alarm, Some(K::Heat), Zone),
    sia!("KH", "heat alarm restore", Restore, Some(K::Heat), Zone),
    sia!(
        "LB",
        "local programming begin",
        Info,
        Some(K::Programming),
        None
    ),
    sia!(
        "LR",
        "phone line restoral",
        Restore,
        Some(K::PhoneLine),
        Zone
    ),
    sia!(
        "LT",
        "phone line trouble",
        Trouble,
        Some(K::PhoneLine),
        Zone
    ),
    sia!(
        "LX",
        "local programming ended",
        Info,
        Some(K::Programming),
        None
    ),
    sia!("MA", "medical alarm", Alarm, Some(K::Medical), Zone),
    sia!(
        "MH",
        "medical alarm restore",
        Restore,
        Some(K::Medical),
        Zone
    ),
    sia!("MR", "medical restoral", Restore, Some(K::Medical), Zone),
    sia!("NA", "no activity", Info, None, Zone),
    sia!("NF", "forced perimeter arm", Closing, None, Area),
    sia!("NL", "perimeter (stay) armed", Closing, None, Area),
    sia!("NR", "network restoral", Restore, Some(K::Network), Zone),
    sia!("NT", "network failure", Trouble, Some(K::Network), Zone),
    sia!("OA", "automatic opening", Opening, None, Area),
    sia!("OC", "cancel report", Cancel, None, User),
    sia!("OG", "partial disarm", Opening, None, Area),
    sia!("OI", "fail to open", Info, None, Area),
    sia!("OP", "opening report", Opening, None, User),
    sia!("OQ", "remote opening", Opening, None, User),
    sia!("OR", "disarm from alarm", Opening, None, User),
    sia!("OS", "keyswitch opening", Opening, None, Zone),
    sia!("OT", "late to close", Info, None, Area),
    sia!("PA", "panic alarm", Alarm, Some(K::Panic), Zone),
    sia!("PH", "panic alarm restore", Restore, Some(K::Panic), Zone),
    sia!("PR", "panic restoral", Restore, Some(K::Panic), Zone),
    sia!("QA", "emergency alarm", Alarm, Some(K::Emergency), Zone),
    sia!(
        "QH",
        "emergency alarm restore",
        Restore,
        Some(K::Emergency),
        Zone
    ),
    sia!(
        "RB",
        "remote programming begin",
        Info,
        Some(K::Programming),
        None
    ),
    sia!("RP", "automatic test", Test, None, None),
    sia!("RR", "power up", Info, Some(K::System), None),
    sia!(
        "RS",
        "remote programming success",
        Info,
        Some(K::Programming),
        None
    ),
    sia!(
        "RU",
        "remote programming fail",
        Info,
        Some(K::Programming),
        None
    ),
    sia!("RX", "manual test", Test, None, User),
    sia!("TA", "tamper alarm", Alarm, Some(K::Tamper), Zone),
    sia!("TE", "test end", Test, None, User),
    sia!("TR", "tamper restoral", Restore, Some(K::Tamper), Zone),
    sia!("TS", "test start", Test, None, User),
    sia!("TT", "tamper trouble", Trouble, Some(K::Tamper), Zone),
    sia!("TX", "test report", Test, None, Zone),
    sia!("UA", "untyped zone alarm", Alarm, Some(K::Auxiliary), Zone),
    sia!(
        "UJ",
        "untyped zone trouble restore",
        Restore,
        Some(K::Auxiliary),
        Zone
    ),
    sia!(
        "UR",
        "untyped zone restoral",
        Restore,
        Some(K::Auxiliary),
        Zone
    ),
    sia!(
        "UT",
        "untyped zone trouble",
        Trouble,
        Some(K::Auxiliary),
        Zone
    ),
    sia!("WA", "water alarm", Alarm, Some(K::Water), Zone),
    sia!("WH", "water alarm restore", Restore, Some(K::Water), Zone),
    sia!(
        "XR",
        "transmitter battery restoral",
        Restore,
        Some(K::Battery),
        Zone
    ),
    sia!(
        "XT",
        "transmitter battery trouble",
        Trouble,
        Some(K::Battery),
        Zone
    ),
    sia!("XW", "forced point", Info, None, Zone),
    sia!(
        "YC",
        "communications fail",
        Trouble,
        Some(K::Communication),
        Zone
    ),
    sia!(
        "YK",
        "communications restoral",
        Restore,
        Some(K::Communication),
        Zone
    ),
    sia!(
        "YM",
        "system battery missing",
        Trouble,
        Some(K::Battery),
        Zone
    ),
    sia!("YN", "invalid report", Info, Some(K::System), Zone),
    sia!("YP", "power supply trouble", Trouble, Some(K::Power), Zone),
    sia!("YQ", "power supply restored", Restore, Some(K::Power), Zone),
    sia!(
        "YR",
        "system battery restoral",
        Restore,
        Some(K::Battery),
        Zone
    ),
    sia!(
        "YS",
        "communications trouble",
        Trouble,
        Some(K::Communication),
        Zone
    ),
    sia!(
        "YT",
        "system battery trouble",
        Trouble,
        Some(K::Battery),
        Zone
    ),
    sia!("YW", "watchdog reset", Info, Some(K::System), Zone),
    sia!("YX", "service required", Trouble, Some(K::System), Zone),
    sia!("YY", "status report", Info, None, Zone),
    sia!("YZ", "service completed", Restore, Some(K::System), Zone),
    sia!("ZA", "freeze alarm", Alarm, Some(K::Freeze), Zone),
    sia!("ZH", "freeze alarm restore", Restore, Some(K::Freeze), Zone),
];

/// The Contact ID code, if catalogued.
pub fn contact_id(code: u16) -> Option<&'static CidCode> {
    CONTACT_ID
        .binary_search_by_key(&code, |c| c.code)
        .ok()
        .map(|i| &CONTACT_ID[i])
}

/// Position + 1 in [`SIA`] of each two-letter code, indexed by `(first - 'A') * 26 + (second -
/// 'A')`; 0 = not catalogued. Built at compile time: a lookup is one array read and no string
/// comparison (it runs for every SIA event received).
static SIA_INDEX: [u8; 26 * 26] = {
    let mut index = [0u8; 26 * 26];
    let mut i = 0;
    while i < SIA.len() {
        index[catalogued_slot(SIA[i].code)] = (i + 1) as u8;
        i += 1;
    }
    index
};

/// Where a two-letter code (`AA`–`ZZ`) sits in the tables indexed by SIA code; `None` for
/// anything else.
const fn slot(code: &[u8]) -> Option<usize> {
    match code {
        &[a @ b'A'..=b'Z', b @ b'A'..=b'Z'] => Some((a - b'A') as usize * 26 + (b - b'A') as usize),
        _ => None,
    }
}

/// [`slot`] for a code of the catalogue, which must have one (checked at compile time).
const fn catalogued_slot(code: &str) -> usize {
    match slot(code.as_bytes()) {
        Some(i) => i,
        None => panic!("a catalogued SIA code is two capital letters"),
    }
}

/// The SIA code, if catalogued.
pub fn sia(code: &str) -> Option<&'static SiaCode> {
    sia_bytes(code.as_bytes())
}

/// [`sia`] for a code as bytes.
pub fn sia_bytes(code: &[u8]) -> Option<&'static SiaCode> {
    let at = SIA_INDEX[slot(code)?];
    (at > 0).then(|| &SIA[usize::from(at) - 1])
}

/// A SIA code outside the table read by the family pattern (§4.3): first letter the kind of
/// zone, second the condition (`GT` gas trouble, `KR` heat restoral, …). `None` if the pattern
/// does not apply.
pub fn sia_by_pattern(code: &str) -> Option<(Class, Option<Kind>)> {
    sia_pattern_bytes(code.as_bytes())
}

/// [`sia_by_pattern`] for a code as bytes.
pub fn sia_pattern_bytes(b: &[u8]) -> Option<(Class, Option<Kind>)> {
    if b.len() != 2 {
        return None;
    }
    let kind = match b[0] {
        b'B' => K::Burglary,
        b'F' => K::Fire,
        b'P' => K::Panic,
        b'H' => K::HoldUp,
        b'M' => K::Medical,
        b'Q' => K::Emergency,
        b'G' => K::Gas,
        b'K' => K::Heat,
        b'W' => K::Water,
        b'Z' => K::Freeze,
        b'S' => K::Sprinkler,
        b'T' => K::Tamper,
        b'U' => K::Auxiliary,
        b'E' => K::Expansion,
        b'Y' => K::System,
        b'A' => K::Power,
        _ => return None,
    };
    let class = match b[1] {
        b'A' => Class::Alarm,
        b'H' | b'R' | b'J' => Class::Restore,
        b'T' => Class::Trouble,
        b'S' => Class::Supervisory,
        b'B' => Class::Bypass,
        b'U' => Class::Unbypass,
        b'X' => Class::Test,
        b'C' => Class::Cancel,
        _ => return None,
    };
    Some((class, Some(kind)))
}

impl CidCode {
    /// The class for a qualifier digit (1 new/opening, 3 restore/closing, 6 still present).
    pub fn class(&self, qualifier: u8) -> Class {
        match (self.family, qualifier) {
            (F::Alarm, b'3') | (F::Trouble, b'3') | (F::Supervisory, b'3') => Class::Restore,
            (F::Alarm, _) => Class::Alarm,
            (F::Trouble, _) => Class::Trouble,
            (F::Supervisory, _) => Class::Supervisory,
            (F::OpenClose, b'3') => Class::Closing,
            (F::OpenClose, _) => Class::Opening,
            (F::Cancel, _) => Class::Cancel,
            (F::Bypass, b'3') => Class::Unbypass,
            (F::Bypass, _) => Class::Bypass,
            (F::Test, _) => Class::Test,
            (F::Info, _) => Class::Info,
        }
    }

    /// The SIA code for this event with the given qualifier digit.
    pub fn to_sia(&self, qualifier: u8) -> Option<&'static str> {
        if qualifier == b'3' {
            self.sia_restore
        } else {
            self.sia_new
        }
    }
}

/// The Contact ID code and qualifier digit for a SIA code: the first catalogued Contact ID code
/// that maps to it (so `FA` gives 110 fire, not 111 smoke).
pub fn sia_to_contact_id(code: &str) -> Option<(u16, u8)> {
    let (at, qualifier) = SIA_TO_CID[slot(code.as_bytes())?];
    (at > 0).then(|| (CONTACT_ID[usize::from(at) - 1].code, qualifier))
}

/// For each two-letter SIA code (indexed as [`SIA_INDEX`]), position + 1 in [`CONTACT_ID`] of
/// the first code that maps to it and the qualifier digit; 0 = none. Built at compile time: a
/// scan of the table's strings was a thousand instructions or more for every SIA event.
static SIA_TO_CID: [(u16, u8); 26 * 26] = {
    let mut index = [(0u16, 0u8); 26 * 26];
    let mut i = 0;
    while i < CONTACT_ID.len() {
        // In table order, the new-event code before the restore code: the first match wins.
        if let Some(code) = CONTACT_ID[i].sia_new {
            if index[catalogued_slot(code)].0 == 0 {
                index[catalogued_slot(code)] = ((i + 1) as u16, b'1');
            }
        }
        if let Some(code) = CONTACT_ID[i].sia_restore {
            if index[catalogued_slot(code)].0 == 0 {
                index[catalogued_slot(code)] = ((i + 1) as u16, b'3');
            }
        }
        i += 1;
    }
    index
};

#[cfg(test)]
mod tests {
    #[test]
    fn names_read_back_to_what_they_name() {
        for c in super::Class::ALL {
            assert_eq!(super::Class::from_name(c.name()), Some(c));
        }
        for k in super::Kind::ALL {
            assert_eq!(super::Kind::from_name(k.name()), Some(k));
        }
        assert_eq!(super::Class::from_name("nonsense"), None);
    }

    use super::*;

    #[test]
    fn sia_to_contact_id_finds_what_a_scan_of_the_table_finds() {
        for a in b'A'..=b'Z' {
            for b in b'A'..=b'Z' {
                let code = String::from_utf8(vec![a, b]).unwrap();
                let scan = CONTACT_ID.iter().find_map(|c| {
                    if c.sia_new == Some(code.as_str()) {
                        Some((c.code, b'1'))
                    } else if c.sia_restore == Some(code.as_str()) {
                        Some((c.code, b'3'))
                    } else {
                        None
                    }
                });
                assert_eq!(sia_to_contact_id(&code), scan, "{code}");
            }
        }
        assert_eq!(sia_to_contact_id("FA"), Some((110, b'1')));
        assert_eq!(sia_to_contact_id("BH"), Some((130, b'3')));
        for odd in ["", "F", "fa", "FAA", "F1", "ÅA"] {
            assert_eq!(sia_to_contact_id(odd), None, "{odd:?}");
        }
    }

    #[test]
    fn tables_are_sorted_for_binary_search() {
        assert!(CONTACT_ID.windows(2).all(|w| w[0].code < w[1].code));
        assert!(
            SIA.windows(2).all(|w| w[0].code < w[1].code),
            "SIA table out of order"
        );
    }

    #[test]
    fn qualifier_decides_open_close() {
        let c = contact_id(401).expect("catalogued");
        assert_eq!(c.class(b'1'), Class::Opening);
        assert_eq!(c.class(b'3'), Class::Closing);
        assert_eq!(contact_id(130).map(|c| c.class(b'3')), Some(Class::Restore));
        assert_eq!(
            contact_id(570).map(|c| c.class(b'3')),
            Some(Class::Unbypass)
        );
        assert_eq!(contact_id(406).map(|c| c.class(b'1')), Some(Class::Cancel));
    }

    #[test]
    fn mapping_both_ways() {
        assert_eq!(contact_id(121).and_then(|c| c.to_sia(b'1')), Some("HA"));
        assert_eq!(sia_to_contact_id("FA"), Some((110, b'1')));
        assert_eq!(sia_to_contact_id("CL"), Some((400, b'3')));
        assert_eq!(sia("KR"), None);
        assert_eq!(
            sia_by_pattern("KR"),
            Some((Class::Restore, Some(Kind::Heat)))
        );
    }

    #[test]
    fn every_mapped_sia_code_is_catalogued_or_patterned() {
        for c in CONTACT_ID {
            for s in [c.sia_new, c.sia_restore].into_iter().flatten() {
                assert!(
                    sia(s).is_some()
                        || sia_by_pattern(s).is_some()
                        || matches!(s, "OB" | "CB" | "RC" | "RO" | "FK" | "DO"),
                    "{} -> {s}",
                    c.code
                );
            }
        }
    }
}
