//! Histograms as Envoy keeps them: integer samples (milliseconds, or plain
//! counts) in log-linear bins of two significant digits (Envoy's
//! circllhist bins: `[1.0, 1.1)`, `[12, 13)`, `[2000, 2100)`), quantiles
//! read from the bins the way Envoy's admin reports them, and Prometheus
//! buckets at Envoy's default bounds.
//!
//! Recording is one relaxed atomic add into the sample's bin and one into
//! the sum. Values below 100 have a bin each, allocated with the
//! histogram; each decade above (100..10^7) is allocated on its first
//! sample, so an idle histogram costs under 1 KB. Values from 10^7 up share
//! one overflow bin (reported as 10^7).
//!
//! Each histogram also keeps the bins of the last completed flush interval
//! (Envoy's `interval` quantiles): [`Histogram::flush`], called every
//! `stats_flush_interval`, moves the window.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::{Arc, Mutex, OnceLock};
use std::time::Duration;

/// Envoy's default histogram bucket upper bounds (Prometheus `le`).
pub const BUCKETS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];

/// Values below this have a bin each.
const LINEAR: usize = 100;
/// Decades with 90 bins each above the linear range (100..10^7).
const DECADES: usize = 5;
/// Bins in all: linear, decades, overflow.
pub(crate) const BINS: usize = LINEAR + 90 * DECADES + 1;
/// The smallest value in the overflow bin.
const OVERFLOW: u64 = 10_000_000;

/// The bin of a value.
fn bin_of(v: u64) -> usize {
    if v < LINEAR as u64 {
        return v as usize;
    }
    let mut lo = LINEAR as u64;
    let mut base = LINEAR;
    for _ in 0..DECADES {
        if v < lo * 10 {
            let unit = lo / 10;
            return base + (v / unit - 10) as usize;
        }
        lo *= 10;
        base += 90;
    }
    BINS - 1
}

/// A bin's lower edge and width, as Envoy's bins have them (0 is exact;
/// 1..9 are `[v, v + 0.1)`; 10..99 `[v, v + 1)`; then two digits).
fn bin_range(i: usize) -> (f64, f64) {
    if i == 0 {
        (0.0, 0.0)
    } else if i < 10 {
        (i as f64, 0.1)
    } else if i < LINEAR {
        (i as f64, 1.0)
    } else if i < BINS - 1 {
        let d = (i - LINEAR) / 90;
        let unit = 10f64.powi(d as i32 + 1);
        (((i - LINEAR) % 90 + 10) as f64 * unit, unit)
    } else {
        (OVERFLOW as f64, 0.0)
    }
}

#[derive(Debug, Default)]
struct Window {
    /// Bin counts at the last flush.
    at_flush: Vec<u64>,
    /// Bin counts recorded between the last two flushes.
    interval: Vec<u64>,
}

#[derive(Debug)]
struct Inner {
    linear: [AtomicU64; LINEAR],
    decades: [OnceLock<Box<[AtomicU64]>>; DECADES],
    overflow: AtomicU64,
    sum: AtomicU64,
    window: Mutex<Window>,
}

impl Default for Inner {
    fn default() -> Self {
        Inner {
            linear: std::array::from_fn(|_| AtomicU64::new(0)),
            decades: Default::default(),
            overflow: AtomicU64::new(0),
            sum: AtomicU64::new(0),
            window: Mutex::new(Window::default()),
        }
    }
}

/// A histogram of integer samples (Envoy records milliseconds, truncated).
#[derive(Clone, Debug, Default)]
pub struct Histogram(Arc<Inner>);

impl Histogram {
    /// Records a duration in whole milliseconds (Envoy truncates).
    #[inline]
    pub fn record(&self, d: Duration) {
        self.record_value(u64::try_from(d.as_millis()).unwrap_or(u64::MAX));
    }

    /// Records one sample.
    #[inline]
    pub fn record_value(&self, v: u64) {
        let i = bin_of(v);
        let slot = if i < LINEAR {
            &self.0.linear[i]
        } else if i < BINS - 1 {
            let d = (i - LINEAR) / 90;
            &self.0.decades[d].get_or_init(|| (0..90).map(|_| AtomicU64::new(0)).collect())
                [(i - LINEAR) % 90]
        } else {
            &self.0.overflow
        };
        slot.fetch_add(1, Ordering::Relaxed);
        self.0.sum.fetch_add(v, Ordering::Relaxed);
    }

    /// Every bin's count, in bin order.
    pub(crate) fn bins(&self) -> Vec<u64> {
        let mut out = Vec::with_capacity(BINS);
        out.extend(self.0.linear.iter().map(|c| c.load(Ordering::Relaxed)));
        for d in &self.0.decades {
            match d.get() {
                Some(b) => out.extend(b.iter().map(|c| c.load(Ordering::Relaxed))),
                None => out.extend(std::iter::repeat_n(0, 90)),
            }
        }
        out.push(self.0.overflow.load(Ordering::Relaxed));
        out
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.bins().iter().sum()
    }

    /// Sum of the samples.
    pub fn sum(&self) -> u64 {
        self.0.sum.load(Ordering::Relaxed)
    }

    /// Closes a flush interval: the samples since the previous flush become
    /// the interval that [`Histogram::interval_bins`] reports.
    pub fn flush(&self) {
        let now = self.bins();
        let mut w = self.0.window.lock().unwrap_or_else(|p| p.into_inner());
        let interval = if w.at_flush.len() == now.len() {
            now.iter()
                .zip(&w.at_flush)
                .map(|(a, b)| a.saturating_sub(*b))
                .collect()
        } else {
            now.clone()
        };
        w.interval = interval;
        w.at_flush = now;
    }

    /// Bin counts of the last completed flush interval (empty before the
    /// first flush).
    pub(crate) fn interval_bins(&self) -> Vec<u64> {
        self.0
            .window
            .lock()
            .unwrap_or_else(|p| p.into_inner())
            .interval
            .clone()
    }

    /// Quantile `q` (0..=1) of all samples, or `None` without samples.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        quantile(&self.bins(), q)
    }
}

/// Quantile `q` of binned samples, as Envoy's admin computes it: the
/// sample of rank `ceil(q * n)` (at least 1), placed inside its bin as if
/// the bin's samples were spread evenly (the j-th of c at
/// `lo + width * j / (c + 1)`).
pub(crate) fn quantile(bins: &[u64], q: f64) -> Option<f64> {
    let total: u64 = bins.iter().sum();
    if total == 0 {
        return None;
    }
    let rank = ((q * total as f64).ceil() as u64).clamp(1, total);
    let mut seen = 0u64;
    for (i, &c) in bins.iter().enumerate() {
        if c == 0 {
            continue;
        }
        if seen + c >= rank {
            let j = rank - seen;
            let (lo, width) = bin_range(i);
            return Some(lo + width * j as f64 / (c + 1) as f64);
        }
        seen += c;
    }
    None
}

/// Samples at or below each of Envoy's bucket bounds ([`BUCKETS`]), then
/// the total: a bin counts toward a bound when its lower edge is at or
/// below it, as in Envoy's Prometheus output.
pub(crate) fn cumulative_buckets(bins: &[u64]) -> ([u64; BUCKETS.len()], u64) {
    let mut out = [0u64; BUCKETS.len()];
    let mut running = 0u64;
    let mut b = 0;
    for (i, &c) in bins.iter().enumerate() {
        let (lo, _) = bin_range(i);
        while b < BUCKETS.len() && lo > BUCKETS[b] {
            out[b] = running;
            b += 1;
        }
        running += c;
    }
    while b < BUCKETS.len() {
        out[b] = running;
        b += 1;
    }
    (out, running)
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn bins_have_two_significant_digits() {
        assert_eq!(bin_of(0), 0);
        assert_eq!(bin_of(7), 7);
        assert_eq!(bin_of(99), 99);
        assert_eq!(bin_range(bin_of(2050)), (2000.0, 100.0));
        assert_eq!(bin_range(bin_of(259)), (250.0, 10.0));
        assert_eq!(bin_range(bin_of(9_999_999)), (9_900_000.0, 100_000.0));
        assert_eq!(bin_of(u64::MAX), BINS - 1);
        for v in [100u64, 999, 1000, 123_456] {
            let (lo, w) = bin_range(bin_of(v));
            assert!(lo <= v as f64 && (v as f64) < lo + w, "{v}: {lo} {w}");
        }
    }

    /// Figures taken from Envoy 1.40's /stats for the same samples.
    #[test]
    fn quantiles_match_envoy() {
        let h = Histogram::default();
        assert_eq!(h.quantile(0.5), None);
        h.record_value(1);
        assert_eq!(h.quantile(0.0), Some(1.05));
        // 6 zeros and 2 ones: P75 0, P90 1.0666...
        let h = Histogram::default();
        for v in [0, 0, 0, 0, 0, 0, 1, 1] {
            h.record_value(v);
        }
        assert_eq!(h.quantile(0.75), Some(0.0));
        assert_eq!(h.quantile(0.9), Some(1.0 + 0.1 * 2.0 / 3.0));
        // Two connections of ~2 s and two of 0: P75 2033.33, P90 2066.67.
        let h = Histogram::default();
        for v in [0, 0, 2050, 2051] {
            h.record_value(v);
        }
        assert_eq!(h.quantile(0.75), Some(2000.0 + 100.0 / 3.0));
        assert_eq!(h.quantile(0.9), Some(2000.0 + 200.0 / 3.0));
        assert_eq!(h.sum(), 4101);
    }

    #[test]
    fn durations_are_whole_milliseconds() {
        let h = Histogram::default();
        h.record(Duration::from_micros(999));
        h.record(Duration::from_micros(1_999));
        h.record(Duration::from_secs(7200));
        assert_eq!(h.count(), 3);
        let (b, total) = cumulative_buckets(&h.bins());
        assert_eq!(total, 3);
        assert_eq!(b[0], 1, "0 ms is at or below 0.5");
        assert_eq!(b[1], 2, "1 ms is at or below 1");
        assert_eq!(b[BUCKETS.len() - 1], 2, "2 h is above the last bound");
    }

    #[test]
    fn interval_is_the_last_flush_window() {
        let h = Histogram::default();
        h.record_value(3);
        assert!(h.interval_bins().is_empty());
        h.flush();
        assert_eq!(quantile(&h.interval_bins(), 1.0), Some(3.05));
        h.record_value(40);
        h.flush();
        assert_eq!(quantile(&h.interval_bins(), 0.0), Some(40.5));
        h.flush();
        assert_eq!(quantile(&h.interval_bins(), 0.0), None);
        assert_eq!(h.count(), 2);
    }
}
