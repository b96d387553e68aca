//! CRC-16/ARC, the checksum of SIA DC-09 (PROTOCOLS.md §1.2): polynomial 0x8005 reflected,
//! init 0, no final XOR. Computed with the `crc` crate's 16-way sliced tables (the hot path
//! checks every received frame and writes every ACK). The tables are generated, not copied:
//! the table printed in SIA DC-07 has a typo at entry 101.

use crc::{Crc, Table, CRC_16_ARC};

static ARC: Crc<u16, Table<16>> = Crc::<u16, Table<16>>::new(&CRC_16_ARC);

/// CRC-16/ARC of `data`.
pub fn crc16_arc(data: &[u8]) -> u16 {
    ARC.checksum(data)
}

/// CRC-16/ARC of `data` followed by `more` (e.g. a body and the CR that ELDES counts).
pub fn crc16_arc_concat(data: &[u8], more: &[u8]) -> u16 {
    let mut d = ARC.digest();
    d.update(data);
    d.update(more);
    d.finalize()
}

#[cfg(test)]
mod tests {
    use super::*;

    /// The textbook bit-at-a-time definition, to check the fast one against.
    fn reference(data: &[u8]) -> u16 {
        let mut crc = 0u16;
        for &b in data {
            crc ^= u16::from(b);
            for _ in 0..8 {
                crc = if crc & 1 != 0 {
                    (crc >> 1) ^ 0xA001
                } else {
                    crc >> 1
                };
            }
        }
        crc
    }

    #[test]
    fn check_value() {
        assert_eq!(crc16_arc(b"123456789"), 0xBB3D);
    }

    #[test]
    fn dc07_table_erratum_entry_101_is_eb01() {
        // "Entry 101" counts from 1: the CRC of the single byte 100. DC-07 printed 0xBE01.
        assert_eq!(reference(&[100]), 0xEB01);
        assert_eq!(crc16_arc(&[100]), 0xEB01);
    }

    #[test]
    fn matches_the_definition_on_all_lengths() {
        let data: Vec<u8> = (0..300u32).map(|i| (i * 7 + 3) as u8).collect();
        for n in 0..data.len() {
            assert_eq!(crc16_arc(&data[..n]), reference(&data[..n]), "length {n}");
        }
        assert_eq!(
            crc16_arc_concat(b"\"ACK\"0001", b"L0#1002[]"),
            crc16_arc(b"\"ACK\"0001L0#1002[]")
        );
    }
}
