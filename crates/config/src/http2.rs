//! `Http2ProtocolOptions`, shared by the connection manager (downstream)
//! and clusters (upstream).

use crate::decode::{Result, Val};

/// HTTP/2 settings. The defaults are Envoy's edge values (100 streams,
/// 64 KiB stream window, 1 MiB connection window), not its own
/// (2³¹−1 streams, 256 MiB windows): they bound what one connection can
/// make the proxy hold.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Http2Options {
    /// SETTINGS_MAX_CONCURRENT_STREAMS (default 100; Envoy's 2147483647).
    pub max_concurrent_streams: u32,
    /// Initial stream window (default 64 KiB; Envoy's 256 MiB).
    pub initial_stream_window_size: u32,
    /// Initial connection window (default 1 MiB; Envoy's 256 MiB).
    pub initial_connection_window_size: u32,
    /// Accept RFC 8441 extended CONNECT (WebSocket over HTTP/2).
    pub allow_connect: bool,
    /// Envoy's inbound flood limits.
    pub flood: FloodLimits,
}

/// Envoy's HTTP/2 flood limits (`Http2ProtocolOptions`), with its defaults.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub struct FloodLimits {
    /// `max_outbound_frames` (10,000).
    pub max_outbound_frames: u32,
    /// `max_outbound_control_frames` (1,000).
    pub max_outbound_control_frames: u32,
    /// `max_consecutive_inbound_frames_with_empty_payload` (1).
    pub max_consecutive_empty_frames: u32,
    /// `max_inbound_priority_frames_per_stream` (100).
    pub max_priority_frames_per_stream: u32,
    /// `max_inbound_window_update_frames_per_data_frame_sent` (10).
    pub max_window_update_frames_per_data_frame: u32,
}

impl Default for FloodLimits {
    fn default() -> Self {
        FloodLimits {
            max_outbound_frames: 10_000,
            max_outbound_control_frames: 1_000,
            max_consecutive_empty_frames: 1,
            max_priority_frames_per_stream: 100,
            max_window_update_frames_per_data_frame: 10,
        }
    }
}

impl Default for Http2Options {
    fn default() -> Self {
        Http2Options {
            max_concurrent_streams: 100,
            initial_stream_window_size: 64 * 1024,
            initial_connection_window_size: 1024 * 1024,
            allow_connect: false,
            flood: FloodLimits::default(),
        }
    }
}

pub(crate) fn decode_http2_options(v: &Val) -> Result<Http2Options> {
    let o = v.obj()?;
    let mut h = Http2Options::default();
    if let Some(m) = o.get("max_concurrent_streams") {
        h.max_concurrent_streams = m.uint(1, 2_147_483_647)? as u32;
    }
    if let Some(m) = o.get("initial_stream_window_size") {
        h.initial_stream_window_size = m.uint(65_535, 2_147_483_647)? as u32;
    }
    if let Some(m) = o.get("initial_connection_window_size") {
        h.initial_connection_window_size = m.uint(65_535, 2_147_483_647)? as u32;
    }
    if let Some(a) = o.get("allow_connect") {
        h.allow_connect = a.bool()?;
    }
    let f = &mut h.flood;
    for (k, slot, min) in [
        ("max_outbound_frames", &mut f.max_outbound_frames, 1),
        (
            "max_outbound_control_frames",
            &mut f.max_outbound_control_frames,
            1,
        ),
        (
            "max_consecutive_inbound_frames_with_empty_payload",
            &mut f.max_consecutive_empty_frames,
            0,
        ),
        (
            "max_inbound_priority_frames_per_stream",
            &mut f.max_priority_frames_per_stream,
            0,
        ),
        (
            "max_inbound_window_update_frames_per_data_frame_sent",
            &mut f.max_window_update_frames_per_data_frame,
            1,
        ),
    ] {
        if let Some(m) = o.get(k) {
            *slot = m.uint(min, u64::from(u32::MAX))? as u32;
        }
    }
    for k in [
        "hpack_table_size",
        "stream_error_on_invalid_http_messaging",
        "override_stream_error_on_invalid_http_message",
        "connection_keepalive",
        "allow_metadata",
    ] {
        o.ignore(k);
    }
    o.finish_with(&["custom_settings_parameters"])?;
    Ok(h)
}
