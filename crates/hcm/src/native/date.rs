//! The `date` header value (RFC 9110 IMF-fixdate), formatted once a second
//! per thread.

use std::cell::RefCell;
use std::time::{SystemTime, UNIX_EPOCH};

thread_local! {
    static CACHE: RefCell<(u64, Vec<u8>)> = const { RefCell::new((u64::MAX, Vec::new())) };
}

/// Now, as `Tue, 15 Nov 1994 08:12:31 GMT`.
pub(crate) fn now() -> Vec<u8> {
    let mut v = Vec::with_capacity(29);
    push_now(&mut v);
    v
}

/// Appends now's date to `out` without allocating (Envoy puts `date` on
/// every response it sends).
pub(crate) fn push_now(out: &mut Vec<u8>) {
    let secs = SystemTime::now()
        .duration_since(UNIX_EPOCH)
        .map(|d| d.as_secs())
        .unwrap_or(0);
    CACHE.with(|c| {
        let mut c = c.borrow_mut();
        if c.0 != secs {
            *c = (secs, format(secs).into_bytes());
        }
        out.extend_from_slice(&c.1);
    })
}

fn format(secs: u64) -> String {
    const DAYS: [&str; 7] = ["Thu", "Fri", "Sat", "Sun", "Mon", "Tue", "Wed"];
    const MONTHS: [&str; 12] = [
        "Jan", "Feb", "Mar", "Apr", "May", "Jun", "Jul", "Aug", "Sep", "Oct", "Nov", "Dec",
    ];
    let days = secs / 86_400;
    let rem = secs % 86_400;
    let (year, month, day) = crate::access_log::civil(days);
    format!(
        "{}, {day:02} {} {year} {:02}:{:02}:{:02} GMT",
        DAYS[(days % 7) as usize],
        MONTHS[(month - 1) as usize],
        rem / 3600,
        (rem / 60) % 60,
        rem % 60
    )
}

#[cfg(test)]
mod tests {
    #[test]
    fn imf_fixdate() {
        assert_eq!(super::format(784_887_151), "Tue, 15 Nov 1994 08:12:31 GMT");
        assert_eq!(super::format(0), "Thu, 01 Jan 1970 00:00:00 GMT");
    }
}
