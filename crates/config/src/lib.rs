//! nuncio's configuration: Envoy bootstrap files in YAML or JSON, written in
//! Envoy's v2-era syntax (`config:`, `hosts:`, `use_websocket`,
//! `envoy.router`) or in v3 (`typed_config` with `@type`, `load_assignment`,
//! `upgrade_configs`), decoded into one validated model ([`Bootstrap`]).
//!
//! Every error is a [`ConfigError`]: one line with file:line:column, the
//! field path and what was expected. Unknown fields are errors, as in Envoy,
//! with a did-you-mean hint; [`load_with`] can collect them instead (Envoy's
//! `--allow-unknown-static-fields`).

#![forbid(unsafe_code)]

mod address;
mod bootstrap;
mod chain_match;
mod cluster;
mod datasource;
mod decode;
pub mod dump;
mod dump_filters;
mod dump_tls;
mod error;
pub mod filters;
mod format;
mod hcm;
mod header_matcher;
mod headers;
mod http2;
mod listener;
mod matcher;
mod percent;
mod route;
mod secrets;
pub mod tls;
mod tls_params;
mod tls_validation;
pub mod yaml;

pub use address::SocketAddress;
pub use bootstrap::{Admin, Bootstrap, NodeInfo};
pub use chain_match::{Cidr, FilterChainMatch, SourceType};
pub use cluster::{
    Cluster, DiscoveryType, DnsLookupFamily, LbPolicy, MetadataCriterion, TransportSocketMatch,
    UpstreamHttpOptions, UpstreamProtocol,
};
pub use datasource::DataSource;
pub use error::{ConfigError, Origin};
pub use format::{
    AddressPart, Command, Endpoint, FormatError, FormatString, HeaderRef, Segment, TimePiece,
    DEFAULT_START_TIME_FORMAT, SUPPORTED_COMMANDS,
};
pub use hcm::{
    AccessLog, CodecType, EscapedSlashes, HttpConnectionManager, PathOptions, UnderscoresAction,
};
pub use header_matcher::{HeaderMatch, HeaderMatcher};
pub use headers::{valid_header_name, AppendAction, HeaderMutations, HeaderValueOption};
pub use http2::{FloodLimits, Http2Options};
pub use listener::{FilterChain, Listener, ListenerFilter, NetworkFilter, TlsInspector};
pub use matcher::{SafeRegex, StringMatcher, StringPattern};
pub use percent::{Denominator, FractionalPercent, RuntimeFractionalPercent};
pub use route::{
    Action, PathMatch, Route, RouteAction, RouteConfig, RouteMatch, VirtualHost,
    DEFAULT_ROUTE_TIMEOUT,
};
pub use secrets::{Secret, SecretKind};
pub use tls::{
    CertSource, CommonTls, DownstreamTls, SdsRef, SessionCfg, TlsCertificate, TransportSocket,
    UpstreamTls, ValidationSource,
};
pub use tls_params::{
    TlsParams, TlsVersion, BORINGSSL_CIPHERS, BORINGSSL_CURVES, SIGNATURE_ALGORITHMS,
};
pub use tls_validation::{SanMatcher, SanType, Validation};

/// Largest config file accepted.
const MAX_CONFIG_BYTES: u64 = 64 * 1024 * 1024;

/// Where config text comes from.
#[derive(Debug, Clone)]
pub struct Source {
    /// Name used in error messages (the path, or `<config-yaml>`).
    pub name: String,
    /// The text.
    pub text: String,
}

impl Source {
    /// Reads a file.
    pub fn file(path: &str) -> Result<Source, ConfigError> {
        let meta = std::fs::metadata(path)
            .map_err(|e| plain_error(path, format!("cannot read config: {e}")))?;
        if meta.len() > MAX_CONFIG_BYTES {
            return Err(plain_error(
                path,
                format!("config is larger than {MAX_CONFIG_BYTES} bytes"),
            ));
        }
        let text = std::fs::read_to_string(path)
            .map_err(|e| plain_error(path, format!("cannot read config: {e}")))?;
        Ok(Source {
            name: path.to_string(),
            text,
        })
    }
}

fn plain_error(file: &str, message: String) -> ConfigError {
    ConfigError {
        file: file.to_string(),
        line: 0,
        col: 0,
        path: String::new(),
        message,
    }
}

/// How [`load_with`] treats the config.
#[derive(Debug, Clone, Copy, Default, PartialEq, Eq)]
pub struct LoadOptions {
    /// Unknown fields (fields Envoy does not know either) are returned in
    /// [`Loaded::unknown_fields`] instead of failing the load, as Envoy's
    /// `--allow-unknown-static-fields` does. Envoy fields that nuncio does
    /// not implement stay errors: ignoring them would change behaviour
    /// silently.
    pub allow_unknown_fields: bool,
}

/// A loaded bootstrap and what was let through.
#[derive(Debug, Clone)]
pub struct Loaded {
    /// The config.
    pub bootstrap: Bootstrap,
    /// Each unknown field, as the error it would have been (empty unless
    /// [`LoadOptions::allow_unknown_fields`]).
    pub unknown_fields: Vec<ConfigError>,
}

/// Loads a bootstrap from `sources`, later ones merged over earlier ones
/// (Envoy's `-c` then `--config-yaml`).
pub fn load(sources: &[Source]) -> Result<Bootstrap, ConfigError> {
    load_with(sources, LoadOptions::default()).map(|l| l.bootstrap)
}

/// [`load`], with `options`.
pub fn load_with(sources: &[Source], options: LoadOptions) -> Result<Loaded, ConfigError> {
    let names: Vec<String> = sources.iter().map(|s| s.name.clone()).collect();
    let mut root: Option<yaml::Node> = None;
    for (i, s) in sources.iter().enumerate() {
        let node = yaml::parse_source(&s.text, i).map_err(|e| ConfigError {
            file: s.name.clone(),
            line: e.mark.line,
            col: e.mark.col,
            path: String::new(),
            message: format!("invalid YAML/JSON: {}", e.message),
        })?;
        match &mut root {
            None => root = Some(node),
            Some(r) => yaml::merge(r, node),
        }
    }
    let Some(root) = root else {
        return Err(plain_error(
            "<none>",
            "no config given: use -c FILE or --config-yaml".into(),
        ));
    };
    let ctx = decode::Ctx::new(names, options.allow_unknown_fields);
    let bootstrap = bootstrap::decode_bootstrap(&decode::Val::new(&ctx, &root))?;
    // The runtime's gate: TLS and filter chain matching are decoded and
    // checked above, but refused here until the server serves them.
    if let Some(e) = ctx.first_unserved() {
        return Err(e);
    }
    Ok(Loaded {
        bootstrap,
        unknown_fields: ctx.into_unknown(),
    })
}

/// Decodes a bootstrap without the runtime's gate ([`decode::Val::not_served_yet`]):
/// the TLS model's tests.
#[cfg(test)]
pub(crate) fn decode_ungated(name: &str, text: &str) -> Result<Bootstrap, ConfigError> {
    decode::decode_str(name, text, bootstrap::decode_bootstrap)
}

/// Loads a bootstrap from one string (tests, `--config-yaml` alone).
pub fn load_str(name: &str, text: &str) -> Result<Bootstrap, ConfigError> {
    load(&[Source {
        name: name.into(),
        text: text.into(),
    }])
}

#[cfg(test)]
mod tests;
#[cfg(test)]
mod tests_filters;
#[cfg(test)]
mod tests_tls;
