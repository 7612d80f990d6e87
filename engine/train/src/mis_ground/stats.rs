//! Intervals for accuracies and for the difference of two decoders on the same questions.

/// z for a two-sided 95 % interval.
const Z: f64 = 1.959_964;

/// Wilson's 95 % interval for `hits` of `n` (better than the normal one near 0 and 1 and for
/// small n).
pub fn wilson(hits: usize, n: usize) -> Option<[f64; 2]> {
    if n == 0 {
        return None;
    }
    let (k, n) = (hits as f64, n as f64);
    let p = k / n;
    let z2 = Z * Z;
    let centre = (p + z2 / (2.0 * n)) / (1.0 + z2 / n);
    let half = Z / (1.0 + z2 / n) * (p * (1.0 - p) / n + z2 / (4.0 * n * n)).sqrt();
    Some([(centre - half).max(0.0), (centre + half).min(1.0)])
}

/// The mean of the paired differences `b - a` (each question answered by both) and its 95 %
/// interval (normal approximation on the per-question differences, which accounts for the two
/// decoders agreeing on most questions).
pub fn paired_difference(pairs: &[(bool, bool)]) -> Option<(f64, [f64; 2])> {
    let n = pairs.len();
    if n == 0 {
        return None;
    }
    let d: Vec<f64> = pairs
        .iter()
        .map(|(a, b)| f64::from(u8::from(*b)) - f64::from(u8::from(*a)))
        .collect();
    let mean = d.iter().sum::<f64>() / n as f64;
    if n == 1 {
        return Some((mean, [mean, mean]));
    }
    let var = d.iter().map(|x| (x - mean).powi(2)).sum::<f64>() / (n - 1) as f64;
    let half = Z * (var / n as f64).sqrt();
    Some((mean, [mean - half, mean + half]))
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn wilson_matches_known_values() {
        // 80 of 100: (0.711, 0.867), as in Newcombe (1998).
        let [lo, hi] = wilson(80, 100).expect("interval");
        assert!(
            (lo - 0.7112).abs() < 1e-3 && (hi - 0.8666).abs() < 1e-3,
            "{lo} {hi}"
        );
        let [lo, hi] = wilson(0, 10).expect("interval");
        assert!(lo == 0.0 && (hi - 0.2775).abs() < 1e-3, "{hi}");
        assert_eq!(wilson(0, 0), None);
    }

    #[test]
    fn paired_differences_of_identical_decoders_are_zero() {
        let same: Vec<(bool, bool)> = (0..50).map(|i| (i % 3 == 0, i % 3 == 0)).collect();
        assert_eq!(paired_difference(&same), Some((0.0, [0.0, 0.0])));
        // 10 of 100 flipped to right, none to wrong: +0.10, interval clear of zero.
        let better: Vec<(bool, bool)> = (0..100).map(|i| (i >= 10, true)).collect();
        let (d, [lo, hi]) = paired_difference(&better).expect("difference");
        assert!(
            (d - 0.1).abs() < 1e-12 && lo > 0.04 && hi < 0.16,
            "{d} {lo} {hi}"
        );
    }
}
