//! `envoy.filters.http.health_check`
//! (`envoy.extensions.filters.http.health_check.v3.HealthCheck`):
//! `pass_through_mode` (required, checked with `envoy --mode validate`),
//! `headers` (which requests are health checks), `cache_time` (pass-through
//! answers are reused this long) and `cluster_min_healthy_percentages`.

use std::time::Duration;

use crate::decode::{Result, Val};
use crate::header_matcher::{decode_header_matcher, HeaderMatcher};
use crate::percent::decode_percent;

/// The `@type`.
pub const HEALTH_CHECK_TYPE: &str = "envoy.extensions.filters.http.health_check.v3.HealthCheck";

/// `HealthCheck`.
#[derive(Debug, Clone, PartialEq)]
pub struct HealthCheck {
    /// Forward health checks upstream (true) or answer them (false).
    pub pass_through_mode: bool,
    /// A request matching all of these is a health check.
    pub headers: Vec<HeaderMatcher>,
    /// In pass-through mode, reuse an upstream answer for this long.
    pub cache_time: Option<Duration>,
    /// Answering (not pass-through): 503 unless each named cluster has at
    /// least this percentage of healthy hosts. Ordered by cluster name.
    pub cluster_min_healthy_percentages: Vec<(String, f64)>,
}

/// Decodes the filter's `typed_config`.
pub(crate) fn decode(v: &Val) -> Result<HealthCheck> {
    let o = v.obj()?;
    o.ignore("@type");
    let pv = o.req("pass_through_mode")?;
    let pass_through_mode = match pv.node.kind {
        crate::yaml::NodeKind::Map(_) => {
            let po = pv.obj()?;
            let b = po.req("value")?.bool()?;
            po.finish()?;
            b
        }
        _ => pv.bool()?,
    };
    let mut headers = Vec::new();
    if let Some(l) = o.get("headers") {
        for h in l.list()? {
            headers.push(decode_header_matcher(&h)?);
        }
    }
    let cache_time = o
        .get("cache_time")
        .map(|d| d.duration())
        .transpose()?
        .filter(|d| !d.is_zero());
    let mut cluster_min_healthy_percentages = Vec::new();
    if let Some(m) = o.get("cluster_min_healthy_percentages") {
        if let crate::yaml::NodeKind::Map(entries) = &m.node.kind {
            for e in entries {
                let val = Val {
                    ctx: m.ctx,
                    node: &e.value,
                    path: format!("{}.{}", m.path, e.key),
                };
                cluster_min_healthy_percentages.push((e.key.clone(), decode_percent(&val)?));
            }
        } else {
            m.obj()?;
        }
    }
    cluster_min_healthy_percentages.sort_by(|a, b| a.0.cmp(&b.0));
    o.finish()?;
    Ok(HealthCheck {
        pass_through_mode,
        headers,
        cache_time,
        cluster_min_healthy_percentages,
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::decode::decode_str;

    #[test]
    fn decodes() {
        let h = decode_str(
            "t",
            "pass_through_mode: false\nheaders: [{name: ':path', exact_match: /healthz}]\ncache_time: 2s\ncluster_min_healthy_percentages: {web: {value: 50}, api: {value: 25.5}}\n",
            decode,
        )
        .unwrap();
        assert!(!h.pass_through_mode);
        assert_eq!(h.headers[0].name, ":path");
        assert_eq!(h.cache_time, Some(Duration::from_secs(2)));
        assert_eq!(
            h.cluster_min_healthy_percentages,
            vec![("api".to_string(), 25.5), ("web".to_string(), 50.0)]
        );
        let h = decode_str(
            "t",
            "pass_through_mode: {value: true}\ncache_time: 0s",
            decode,
        )
        .unwrap();
        assert!(h.pass_through_mode && h.cache_time.is_none());
    }

    #[test]
    fn refused() {
        for (t, want) in [
            ("{}", "'pass_through_mode'"),
            (
                "pass_through_mode: false\ncluster_min_healthy_percentages: {web: {value: 101}}",
                "from 0 to 100",
            ),
            (
                "pass_through_mode: false\ncluster_min_healthy_percentages: [x]",
                "expected a map",
            ),
            ("pass_through_mode: false\nendpoint: /x", "unknown field"),
        ] {
            let e = decode_str("t", t, decode).unwrap_err();
            assert!(e.message.contains(want), "{t}: {e}");
        }
    }
}
