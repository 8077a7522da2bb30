//! A fixed-bucket latency histogram with Envoy's default bucket bounds
//! (milliseconds). Recording is two relaxed atomic adds.

use std::sync::atomic::{AtomicU64, Ordering};
use std::sync::Arc;

/// Envoy's default histogram bucket upper bounds, in milliseconds.
pub const BUCKETS: [f64; 19] = [
    0.5, 1.0, 5.0, 10.0, 25.0, 50.0, 100.0, 250.0, 500.0, 1000.0, 2500.0, 5000.0, 10000.0, 30000.0,
    60000.0, 300000.0, 600000.0, 1800000.0, 3600000.0,
];

#[derive(Debug, Default)]
struct Inner {
    /// One count per bucket plus one for values above the last bound.
    counts: [AtomicU64; BUCKETS.len() + 1],
    /// Sum in microseconds.
    sum_us: AtomicU64,
}

/// A histogram of durations in milliseconds.
#[derive(Clone, Debug, Default)]
pub struct Histogram(Arc<Inner>);

impl Histogram {
    /// Records one duration.
    pub fn record(&self, d: std::time::Duration) {
        let ms = d.as_secs_f64() * 1000.0;
        let i = BUCKETS
            .iter()
            .position(|b| ms <= *b)
            .unwrap_or(BUCKETS.len());
        self.0.counts[i].fetch_add(1, Ordering::Relaxed);
        self.0.sum_us.fetch_add(
            d.as_micros().min(u128::from(u64::MAX)) as u64,
            Ordering::Relaxed,
        );
    }

    /// Per-bucket counts (not cumulative), the overflow bucket last.
    pub fn counts(&self) -> Vec<u64> {
        self.0
            .counts
            .iter()
            .map(|c| c.load(Ordering::Relaxed))
            .collect()
    }

    /// Number of samples.
    pub fn count(&self) -> u64 {
        self.counts().iter().sum()
    }

    /// Sum of samples in milliseconds.
    pub fn sum_ms(&self) -> f64 {
        self.0.sum_us.load(Ordering::Relaxed) as f64 / 1000.0
    }

    /// Approximate quantile `q` (0..=1), interpolating inside a bucket.
    pub fn quantile(&self, q: f64) -> Option<f64> {
        let counts = self.counts();
        let total: u64 = counts.iter().sum();
        if total == 0 {
            return None;
        }
        let target = q * total as f64;
        let mut seen = 0u64;
        for (i, c) in counts.iter().enumerate() {
            if *c == 0 {
                continue;
            }
            if (seen + c) as f64 >= target {
                let lo = if i == 0 { 0.0 } else { BUCKETS[i - 1] };
                let hi = BUCKETS.get(i).copied().unwrap_or(lo * 2.0);
                let frac = ((target - seen as f64) / *c as f64).clamp(0.0, 1.0);
                return Some(lo + (hi - lo) * frac);
            }
            seen += c;
        }
        Some(BUCKETS[BUCKETS.len() - 1])
    }
}

#[cfg(test)]
mod tests {
    use super::*;
    use std::time::Duration;

    #[test]
    fn buckets_and_quantiles() {
        let h = Histogram::default();
        assert_eq!(h.quantile(0.5), None);
        for _ in 0..99 {
            h.record(Duration::from_millis(3));
        }
        h.record(Duration::from_millis(700));
        assert_eq!(h.count(), 100);
        assert_eq!(h.counts()[2], 99);
        let p50 = h.quantile(0.5).unwrap();
        assert!((1.0..=5.0).contains(&p50), "{p50}");
        assert!(h.quantile(1.0).unwrap() > 500.0);
        assert!((h.sum_ms() - 997.0).abs() < 0.01);
    }
}
