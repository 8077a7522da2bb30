//! The bootstrap: the root of a config file. Loads `node`, `admin` and
//! `static_resources` and checks what ties them together (route → cluster
//! references, unique names and addresses).

use crate::address::{decode_address, SocketAddress};
use crate::cluster::{decode_cluster, Cluster};
use crate::decode::{Result, Val};
use crate::hcm::decode_access_log;
use crate::listener::{decode_listener, Listener};
use crate::secrets::{check_references, decode_secret, Secret, SecretKind};

/// The whole config.
#[derive(Debug, Clone, PartialEq)]
pub struct Bootstrap {
    /// Node identity.
    pub node: NodeInfo,
    /// Static listeners.
    pub listeners: Vec<Listener>,
    /// Static clusters.
    pub clusters: Vec<Cluster>,
    /// Static secrets (`static_resources.secrets`).
    pub secrets: Vec<Secret>,
    /// Admin server, if configured.
    pub admin: Option<Admin>,
}

/// The node's identity (`node.id`, `node.cluster`; `--service-node`,
/// `--service-cluster` override them).
#[derive(Debug, Clone, PartialEq, Eq, Default)]
pub struct NodeInfo {
    /// `node.id`.
    pub id: String,
    /// `node.cluster`.
    pub cluster: String,
}

/// The admin server.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Admin {
    /// Where it binds.
    pub address: SocketAddress,
    /// Access log path for admin requests (`/dev/null` = none).
    pub access_log_path: Option<String>,
}

pub(crate) fn decode_bootstrap(v: &Val) -> Result<Bootstrap> {
    let o = v.obj()?;
    let node = match o.get("node") {
        None => NodeInfo::default(),
        Some(n) => {
            let no = n.obj()?;
            let id = no
                .get("id")
                .map(|s| s.str())
                .transpose()?
                .unwrap_or_default();
            let cluster = no
                .get("cluster")
                .map(|s| s.str())
                .transpose()?
                .unwrap_or_default();
            for k in [
                "metadata",
                "locality",
                "user_agent_name",
                "user_agent_version",
                "user_agent_build_version",
                "extensions",
                "client_features",
                "listening_addresses",
                "build_version",
                "dynamic_parameters",
            ] {
                no.ignore(k);
            }
            no.finish()?;
            NodeInfo { id, cluster }
        }
    };
    let mut listeners = Vec::new();
    let mut clusters = Vec::new();
    let mut secrets: Vec<Secret> = Vec::new();
    if let Some(sr) = o.get("static_resources") {
        let so = sr.obj()?;
        for s in so
            .get("secrets")
            .map(|l| l.list())
            .transpose()?
            .unwrap_or_default()
        {
            let secret = decode_secret(&s)?;
            let kind = |x: &Secret| std::mem::discriminant(&x.kind);
            if secrets
                .iter()
                .any(|x| x.name == secret.name && kind(x) == kind(&secret))
            {
                let what = match secret.kind {
                    SecretKind::TlsCertificate(_) => "TlsCertificate",
                    SecretKind::ValidationContext(_) => "CertificateValidationContext",
                };
                return Err(s.err(format!(
                    "Duplicate static {what} secret name {}",
                    secret.name
                )));
            }
            secrets.push(secret);
        }
        let cv = so
            .get("clusters")
            .map(|c| c.list())
            .transpose()?
            .unwrap_or_default();
        for c in &cv {
            let cl = decode_cluster(c)?;
            if clusters.iter().any(|x: &Cluster| x.name == cl.name) {
                return Err(c.err(format!(
                    "cluster name '{}' is used twice; cluster names must be unique",
                    cl.name
                )));
            }
            clusters.push(cl);
        }
        let names: Vec<String> = clusters.iter().map(|c| c.name.clone()).collect();
        let check = |n: &str| names.iter().any(|c| c == n);
        for l in so
            .get("listeners")
            .map(|l| l.list())
            .transpose()?
            .unwrap_or_default()
        {
            let li = decode_listener(&l, &check)?;
            if listeners.iter().any(|x: &Listener| x.address == li.address) {
                return Err(l.err(format!("listener address {} is used twice", li.address)));
            }
            if listeners.iter().any(|x: &Listener| x.name == li.name) {
                return Err(l.err(format!("listener name '{}' is used twice", li.name)));
            }
            listeners.push(li);
        }
        so.finish()?;
    }
    let admin = match o.get("admin") {
        None => None,
        Some(a) => {
            let ao = a.obj()?;
            let address = decode_address(&ao.req("address")?)?;
            let mut access_log_path = ao.get("access_log_path").map(|p| p.str()).transpose()?;
            if let Some(al) = ao.get("access_log") {
                for l in al.list()? {
                    access_log_path = Some(decode_access_log(&l)?.path);
                }
            }
            ao.ignore("profile_path");
            ao.finish_with(&["socket_options", "ignore_global_conn_limit"])?;
            Some(Admin {
                address,
                access_log_path,
            })
        }
    };
    for k in [
        "stats_flush_interval",
        "layered_runtime",
        "runtime",
        "enable_dispatcher_stats",
        "watchdog",
        "watchdogs",
    ] {
        o.ignore(k);
    }
    o.finish_with(&[
        "dynamic_resources",
        "cluster_manager",
        "hds_config",
        "flags_path",
        "stats_sinks",
        "stats_config",
        "tracing",
        "overload_manager",
        "header_prefix",
        "stats_server_version_override",
        "use_tcp_for_dns_lookups",
        "dns_resolution_config",
        "typed_dns_resolver_config",
        "bootstrap_extensions",
        "fatal_actions",
        "config_sources",
        "default_config_source",
        "default_socket_interface",
        "certificate_provider_instances",
        "inline_headers",
        "perf_tracing_file_path",
        "default_regex_engine",
        "xds_delegate_extension",
        "xds_config_tracker_extension",
        "listener_manager",
        "application_log_config",
        "grpc_async_client_manager_config",
        "memory_allocator_manager",
        "node_context_params",
        "stats_flush_on_admin",
    ])?;
    let bootstrap = Bootstrap {
        node,
        listeners,
        clusters,
        secrets,
        admin,
    };
    check_references(&bootstrap)?;
    Ok(bootstrap)
}
