//! How long a PACS may stay silent before we give up on it. A hospital's IT can widen them for a
//! slow link (or the tests narrow them) with `GROUNDGLASS_PACS_TIMEOUT_S`, which sets both.

use std::time::Duration;

/// The variable that overrides both timeouts, in whole seconds (at least 1).
pub const TIMEOUT_VARIABLE: &str = "GROUNDGLASS_PACS_TIMEOUT_S";

/// Connecting, and the first byte of an answer (HTTP) or of each PDU (DIMSE).
pub fn answer() -> Duration {
    overridden().unwrap_or(Duration::from_secs(20))
}

/// Between two reads of an HTTP answer's body: a transfer that stalls this long is given up.
pub fn read() -> Duration {
    overridden().unwrap_or(Duration::from_secs(60))
}

fn overridden() -> Option<Duration> {
    let text = std::env::var(TIMEOUT_VARIABLE).ok()?;
    match text.trim().parse::<u64>() {
        Ok(seconds) if seconds >= 1 => Some(Duration::from_secs(seconds)),
        // A value that is not a count of seconds keeps the defaults rather than no timeout.
        _ => None,
    }
}
