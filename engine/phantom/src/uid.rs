//! Deterministic DICOM UIDs: "2.25." and a 128-bit number from a hash of the seed and the
//! purpose, so regenerating a phantom gives the same UIDs and different phantoms never collide.

/// FNV-1a, 128-bit: stable across platforms and versions, well spread.
fn fnv128(bytes: &[u8]) -> u128 {
    let mut h: u128 = 0x6c62_272e_07bb_0142_62b8_2175_6295_c58d;
    for &b in bytes {
        h ^= u128::from(b);
        h = h.wrapping_mul(0x0000_0000_0100_0000_0000_0000_0000_013b);
    }
    h
}

/// The UID for `purpose` (e.g. "study", "series/...", "instance/12").
pub fn uid(seed: u64, purpose: &str) -> String {
    format!(
        "2.25.{}",
        fnv128(format!("groundglass-phantom\n{seed}\n{purpose}").as_bytes())
    )
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn uids_are_valid_deterministic_and_distinct() {
        let a = uid(1, "study");
        assert_eq!(a, uid(1, "study"));
        assert_ne!(a, uid(2, "study"));
        assert_ne!(a, uid(1, "series"));
        assert!(a.len() <= 64, "{a}");
        assert!(a.bytes().all(|b| b.is_ascii_digit() || b == b'.'));
        // No leading zero in the number component.
        assert!(!a.starts_with("2.25.0") || a == "2.25.0");
    }
}
