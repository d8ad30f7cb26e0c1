//! Wall-clock time as the pipeline stamps it.

use std::time::{SystemTime, UNIX_EPOCH};

/// Now, in Unix nanoseconds (0 before 1970, saturated past 2554).
pub fn now_ns() -> u64 {
    SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map_or(0, |d| u64::try_from(d.as_nanos()).unwrap_or(u64::MAX))
}
