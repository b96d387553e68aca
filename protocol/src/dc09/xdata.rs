//! Extended data blocks `[X…]` after the data block (PROTOCOLS.md §1.9). Every block is kept
//! raw; the known identifiers get a name and, where useful, a typed reading.

use crate::dc09::timestamp::Timestamp;

/// One x-data block: identifier letter and raw value.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct XData<'a> {
    /// The identifier letter (`A`–`Z`).
    pub id: u8,
    /// The value as received (may be 8-bit text).
    pub value: &'a [u8],
}

/// What an x-data identifier means.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum XDataKind {
    /// `A` authentication hash.
    Authentication,
    /// `C` supervision category.
    SupervisionCategory,
    /// `G` network path (2026 edition).
    NetworkPath,
    /// `H` time of occurrence of the event.
    TimeOfOccurrence,
    /// `I` alarm text.
    Text,
    /// `J`: network path (pysiaalarm) or JSON (2026 edition); sources disagree, kept raw.
    PathOrJson,
    /// `K` key change request.
    KeyChange,
    /// `L` location on site.
    Location,
    /// `M` MAC address of the panel.
    Mac,
    /// `N` network (hardware) address.
    NetworkAddress,
    /// `O` building name.
    Building,
    /// `P` programming data.
    Programming,
    /// `R` room.
    Room,
    /// `S` site name.
    Site,
    /// `T` alarm trigger (F fire, G gas, W water, S sensor, C contact, M manual).
    Trigger,
    /// `V` verification URL.
    VerificationUrl,
    /// `X` longitude.
    Longitude,
    /// `Y` latitude.
    Latitude,
    /// `Z` altitude.
    Altitude,
    /// Any other letter.
    Unknown,
}

impl XDataKind {
    /// Stable snake_case name.
    pub fn name(&self) -> &'static str {
        use XDataKind::*;
        match self {
            Authentication => "authentication",
            SupervisionCategory => "supervision_category",
            NetworkPath => "network_path",
            TimeOfOccurrence => "time_of_occurrence",
            Text => "text",
            PathOrJson => "path_or_json",
            KeyChange => "key_change",
            Location => "location",
            Mac => "mac",
            NetworkAddress => "network_address",
            Building => "building",
            Programming => "programming",
            Room => "room",
            Site => "site",
            Trigger => "trigger",
            VerificationUrl => "verification_url",
            Longitude => "longitude",
            Latitude => "latitude",
            Altitude => "altitude",
            Unknown => "unknown",
        }
    }
}

impl XData<'_> {
    /// What the identifier means.
    pub fn kind(&self) -> XDataKind {
        use XDataKind::*;
        match self.id {
            b'A' => Authentication,
            b'C' => SupervisionCategory,
            b'G' => NetworkPath,
            b'H' => TimeOfOccurrence,
            b'I' => Text,
            b'J' => PathOrJson,
            b'K' => KeyChange,
            b'L' => Location,
            b'M' => Mac,
            b'N' => NetworkAddress,
            b'O' => Building,
            b'P' => Programming,
            b'R' => Room,
            b'S' => Site,
            b'T' => Trigger,
            b'V' => VerificationUrl,
            b'X' => Longitude,
            b'Y' => Latitude,
            b'Z' => Altitude,
            _ => Unknown,
        }
    }

    /// For `H`: the event's time of occurrence, when it is a valid DC-09 time.
    pub fn time_of_occurrence(&self) -> Option<Timestamp> {
        (self.id == b'H')
            .then(|| Timestamp::parse(self.value))
            .flatten()
    }

    /// For `M`: the 12-hex-digit MAC address.
    pub fn mac(&self) -> Option<&str> {
        let ok = self.id == b'M'
            && self.value.len() == 12
            && self.value.iter().all(u8::is_ascii_hexdigit);
        ok.then(|| crate::parse::ascii(self.value))
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn typed_readings() {
        let h = XData {
            id: b'H',
            value: b"13:14:15,02-15-2006",
        };
        assert_eq!(h.kind(), XDataKind::TimeOfOccurrence);
        assert_eq!(
            h.time_of_occurrence().map(|t| t.to_string()),
            Some("13:14:15,02-15-2006".into())
        );
        let m = XData {
            id: b'M',
            value: b"0026B9E4268B",
        };
        assert_eq!(m.mac(), Some("0026B9E4268B"));
        assert_eq!(
            XData {
                id: b'Q',
                value: b"x"
            }
            .kind(),
            XDataKind::Unknown
        );
    }
}
