//! CRC-16/ARC, the checksum of SIA DC-09 (PROTOCOLS.md §1.2).
//!
//! Polynomial 0x8005 processed reflected (0xA001), init 0, no final XOR. The table is generated at
//! compile time rather than copied: the table printed in SIA DC-07 has a typo at entry 101.

const TABLE: [u16; 256] = build_table();

const fn build_table() -> [u16; 256] {
    let mut table = [0u16; 256];
    let mut i = 0;
    while i < 256 {
        let mut crc = i as u16;
        let mut bit = 0;
        while bit < 8 {
            crc = if crc & 1 != 0 {
                (crc >> 1) ^ 0xA001
            } else {
                crc >> 1
            };
            bit += 1;
        }
        table[i] = crc;
        i += 1;
    }
    table
}

/// Continues a CRC-16/ARC over `data`, starting from `crc` (0 for a fresh checksum).
pub fn crc16_arc_update(crc: u16, data: &[u8]) -> u16 {
    data.iter().fold(crc, |crc, &b| {
        (crc >> 8) ^ TABLE[usize::from((crc ^ u16::from(b)) & 0xFF)]
    })
}

/// CRC-16/ARC of `data`.
pub fn crc16_arc(data: &[u8]) -> u16 {
    crc16_arc_update(0, data)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn check_value() {
        assert_eq!(crc16_arc(b"123456789"), 0xBB3D);
    }

    #[test]
    fn dc07_table_erratum_entry_101_is_eb01() {
        // "Entry 101" counts from 1: index 100. DC-07 printed 0xBE01 there.
        assert_eq!(TABLE[100], 0xEB01);
    }

    #[test]
    fn update_composes() {
        let whole = crc16_arc(b"\"ACK\"0001L0#1002[]");
        let parts = crc16_arc_update(crc16_arc(b"\"ACK\"0001"), b"L0#1002[]");
        assert_eq!(whole, parts);
        assert_eq!(whole, 0x9E58);
    }
}
