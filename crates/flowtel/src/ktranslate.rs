//! ktranslate drop-in: Kentik ktranslate's command line translated into `flowtel run` flags.
//!
//! Grafana's Netflow integration documents running ktranslate as
//!
//! ```text
//! --format=otel --otel.protocol=grpc --otel.endpoint=http://localhost:4317/ --nf.source=auto
//! --nf.port=9995 --sinks=otel --metrics=jchf --rollup_interval=60 --tee_logs=true
//! --service_name=flow --max_flows_per_message=100 --rollups=s_sum,bytes_by_flow,… --rollup_keep_undefined=true
//! ```
//!
//! When flowtel is started with such arguments (detected by [`is_ktranslate_command_line`]),
//! they are rewritten into the equivalent `flowtel run --profile ktranslate …` arguments, so the
//! output carries ktranslate's names (`kentik.rollup.bytes_by_flow`, `src_addr`, …) and the
//! resource says `service.name=ktranslate` unless `--service_name` or `OTEL_SERVICE_NAME` says
//! otherwise (`--service_name=flow` in Grafana's command line: `service.name=flow`).
//!
//! Parsing follows Go's `flag` package, which ktranslate uses: one or two dashes, `-x=y` or
//! `-x y`, boolean flags take no separate value (`-tee_logs` alone means true, `-tee_logs=false`
//! turns it off), parsing stops at `--` or at the first non-flag argument. Flags flowtel does not
//! implement are accepted with one warning each and never fail the start.

use std::collections::BTreeSet;
use std::net::IpAddr;

/// ktranslate's boolean flags: Go's `flag` package never consumes the next argument for them.
const BOOL_FLAGS: &[&str] = &[
    "tee_logs",
    "rollup_keep_undefined",
    "rollup_and_alpha",
    "snmp_discovery",
    "http.source",
    "info_collector",
    "defaults",
    "nf.reuserport",
    "flow_only",
    "nf",
];

/// Flags that only ktranslate has (flowtel's own flags use dashes, not dots or underscores).
const KTRANSLATE_ONLY: &[&str] = &[
    "format",
    "sinks",
    "metrics",
    "geo",
    "asn",
    "compression",
    "rollups",
    "nf.source",
    "nf.port",
    "nf.addr",
];

/// flowtel's `run` flags; an argument with one of these names is never taken as ktranslate's.
const FLOWTEL_FLAGS: &[&str] = &[
    "config",
    "pcap",
    "listen",
    "workers",
    "recv-buffer-bytes",
    "receive-coalesce-us",
    "rollup-interval",
    "top-k",
    "rollup-spec",
    "profile",
    "sink",
    "prometheus-listen",
    "otlp-endpoint",
    "otlp-header",
    "otlp-compression",
    "otlp-timeout",
    "otlp-ca-file",
    "otlp-client-cert",
    "otlp-client-key",
    "queue-max-windows",
    "max-points-per-request",
    "service-name",
    "resource-attribute",
    "geoip-country-db",
    "geoip-asn-db",
    "log-level",
    "tee-logs",
    "shutdown-grace",
    "exporter-report-interval",
    "exporter-silent-after",
    "self-metrics-interval",
    "device",
    "sampling-rate",
    "default-sampling-rate",
    "otlp-temporality",
    "scope-includes-port",
    "max-exporters",
    "max-templates-per-exporter",
    "max-fields-per-template",
    "max-pending-sets",
    "pending-timeout",
    "help",
    "version",
];

/// The rewritten command line.
#[derive(Debug, Clone, PartialEq, Eq)]
pub struct Translation {
    /// Arguments for `flowtel` (starting with `run`), without the program name.
    pub args: Vec<String>,
    /// One line per flag (or value) accepted without effect, to log as warnings.
    pub warnings: Vec<String>,
    /// Informational lines (how a flag was mapped).
    pub notes: Vec<String>,
}

/// One parsed Go-style flag.
#[derive(Debug, Clone, PartialEq, Eq)]
struct GoFlag {
    name: String,
    value: Option<String>,
}

fn flag_name(arg: &str) -> Option<(&str, bool)> {
    let single = !arg.starts_with("--");
    let body = arg.strip_prefix("--").or_else(|| arg.strip_prefix('-'))?;
    if body.is_empty() || body.starts_with('-') {
        return None;
    }
    let name = body.split_once('=').map_or(body, |(n, _)| n);
    Some((name, single))
}

/// Whether these arguments (program name excluded) are ktranslate's rather than flowtel's:
/// some flag is ktranslate-only, has Go's single-dash long form, or uses `.`/`_` in its name.
/// A command line that starts with a subcommand (`run`, `decode`, …) is flowtel's.
pub fn is_ktranslate_command_line(args: &[String]) -> bool {
    if args.first().is_some_and(|a| !a.starts_with('-')) {
        return false;
    }
    args.iter().any(|arg| {
        let Some((name, single_dash)) = flag_name(arg) else {
            return false;
        };
        if FLOWTEL_FLAGS.contains(&name) {
            return false;
        }
        KTRANSLATE_ONLY.contains(&name)
            || (single_dash && name.len() > 1)
            || name.contains('.')
            || name.contains('_')
    })
}

fn parse_go_flags(args: &[String]) -> (Vec<GoFlag>, Vec<String>) {
    let mut flags = Vec::new();
    let mut positional = Vec::new();
    let mut i = 0;
    while i < args.len() {
        let arg = &args[i];
        i += 1;
        if arg == "--" {
            positional.extend(args[i..].iter().cloned());
            break;
        }
        let body = match arg.strip_prefix("--").or_else(|| arg.strip_prefix('-')) {
            Some(b) if !b.is_empty() => b,
            _ => {
                // Go's flag package stops at the first non-flag argument.
                positional.push(arg.clone());
                positional.extend(args[i..].iter().cloned());
                break;
            }
        };
        if let Some((name, value)) = body.split_once('=') {
            flags.push(GoFlag {
                name: name.to_owned(),
                value: Some(value.to_owned()),
            });
        } else if BOOL_FLAGS.contains(&body) {
            flags.push(GoFlag {
                name: body.to_owned(),
                value: None,
            });
        } else {
            let value = match args.get(i) {
                Some(next) if !next.starts_with('-') || next.len() == 1 => {
                    i += 1;
                    Some(next.clone())
                }
                _ => None,
            };
            flags.push(GoFlag {
                name: body.to_owned(),
                value,
            });
        }
    }
    (flags, positional)
}

/// Go's `strconv.ParseBool`.
fn go_bool(v: Option<&str>) -> Option<bool> {
    match v {
        None => Some(true),
        Some("1" | "t" | "T" | "true" | "TRUE" | "True") => Some(true),
        Some("0" | "f" | "F" | "false" | "FALSE" | "False") => Some(false),
        Some(_) => None,
    }
}

/// Translate ktranslate's arguments (program name excluded) into `flowtel run` arguments.
pub fn translate(args: &[String]) -> Translation {
    let (flags, positional) = parse_go_flags(args);
    let mut out: Vec<String> = vec!["run".into(), "--profile".into(), "ktranslate".into()];
    let mut warnings = Vec::new();
    let mut notes = Vec::new();
    let mut warned = BTreeSet::new();
    let mut warn_once = |warnings: &mut Vec<String>, name: &str, why: String| {
        if warned.insert(name.to_owned()) {
            warnings.push(why);
        }
    };
    let mut nf_addr: Option<String> = None;
    let mut nf_port: Option<String> = None;
    let mut sinks: Vec<&'static str> = Vec::new();

    for GoFlag { name, value } in &flags {
        let v = value.as_deref().unwrap_or("");
        let shown = match value {
            Some(v) => format!("--{name}={v}"),
            None => format!("--{name}"),
        };
        let missing_value = value.is_none() && !BOOL_FLAGS.contains(&name.as_str());
        if missing_value {
            warn_once(
                &mut warnings,
                name,
                format!("ktranslate flag {shown} has no value; ignored"),
            );
            continue;
        }
        match name.as_str() {
            "format" => {
                if v != "otel" {
                    warn_once(
                        &mut warnings,
                        name,
                        format!(
                            "{shown}: only format otel is implemented; flowtel sends OTLP metrics"
                        ),
                    );
                }
            }
            "otel.protocol" => {
                if v != "grpc" {
                    warn_once(
                        &mut warnings,
                        name,
                        format!("{shown}: only OTLP/gRPC is implemented; sending over gRPC"),
                    );
                }
            }
            "otel.endpoint" => {
                out.push("--otlp-endpoint".into());
                out.push(v.trim_end_matches('/').to_owned());
            }
            "otel.tls_cert" => {
                out.push("--otlp-client-cert".into());
                out.push(v.to_owned());
            }
            "otel.tls_key" => {
                out.push("--otlp-client-key".into());
                out.push(v.to_owned());
            }
            "otel.root_ca" => {
                out.push("--otlp-ca-file".into());
                out.push(v.to_owned());
            }
            "nf.source" => {
                if v != "auto" {
                    notes.push(format!(
                        "{shown}: flowtel auto-detects NetFlow v5/v9, IPFIX and sFlow on every listener"
                    ));
                }
            }
            "nf.addr" => nf_addr = Some(v.to_owned()),
            "nf.port" => nf_port = Some(v.to_owned()),
            "nf.workers" => {
                out.push("--workers".into());
                out.push(v.to_owned());
            }
            "sinks" => {
                for s in v.split(',').map(str::trim).filter(|s| !s.is_empty()) {
                    let mapped = match s {
                        "otel" => Some("otlp"),
                        "stdout" => Some("stdout"),
                        "prometheus" => Some("prometheus"),
                        _ => None,
                    };
                    match mapped {
                        Some(m) if !sinks.contains(&m) => sinks.push(m),
                        Some(_) => {}
                        None => warn_once(
                            &mut warnings,
                            &format!("sinks={s}"),
                            format!(
                                "--sinks: sink {s:?} is not implemented (otel, stdout, prometheus are); ignored"
                            ),
                        ),
                    }
                }
            }
            "prom_listen" => {
                let addr = if v.starts_with(':') {
                    format!("0.0.0.0{v}")
                } else {
                    v.to_owned()
                };
                out.push("--prometheus-listen".into());
                out.push(addr);
            }
            "rollup_interval" => {
                // ktranslate treats 0 as "use the default".
                if v.trim() != "0" {
                    out.push("--rollup-interval".into());
                    out.push(v.to_owned());
                }
            }
            "rollups" => {
                out.push("--rollup-spec".into());
                out.push(v.to_owned());
            }
            "rollup_top_k" => {
                out.push("--top-k".into());
                out.push(v.to_owned());
            }
            "tee_logs" => match go_bool(value.as_deref()) {
                Some(true) => out.push("--tee-logs".into()),
                Some(false) => {}
                None => warn_once(
                    &mut warnings,
                    name,
                    format!("{shown}: not a boolean; ignored"),
                ),
            },
            "rollup_keep_undefined" => {
                // flowtel never drops a row for an empty or zero dimension, so ktranslate's
                // opt-in to keep them is always on.
            }
            "geo" => {
                out.push("--geoip-country-db".into());
                out.push(v.to_owned());
            }
            "asn" => {
                out.push("--geoip-asn-db".into());
                out.push(v.to_owned());
            }
            "compression" => match v {
                "gzip" | "none" => {
                    out.push("--otlp-compression".into());
                    out.push(v.to_owned());
                }
                _ => warn_once(
                    &mut warnings,
                    name,
                    format!("{shown}: only gzip and none are implemented; ignored"),
                ),
            },
            "log_level" => {
                out.push("--log-level".into());
                out.push(v.to_owned());
            }
            // The name the service reports: the OTLP resource's service.name.
            "service_name" => {
                out.push("--service-name".into());
                out.push(v.to_owned());
                notes.push(format!("{shown}: the OTLP resource says service.name={v}"));
            }
            // ktranslate's batching knob: flowtel splits requests by data points instead.
            "max_flows_per_message" => notes.push(format!(
                "{shown}: OTLP requests are split at max_points_per_request (default {}) data points instead",
                crate::config::Config::default().otlp.max_points_per_request
            )),
            // Where ktranslate sends its own metrics (jchf = to its sinks): flowtel's own
            // metrics always go to the OTLP endpoint and /metrics.
            "metrics" => notes.push(format!(
                "{shown}: flowtel's own metrics go to the OTLP endpoint and /metrics whatever this says"
            )),
            _ => warn_once(
                &mut warnings,
                name,
                format!("ktranslate flag {shown} is not implemented by flowtel; ignored"),
            ),
        }
    }

    if nf_addr.is_some() || nf_port.is_some() {
        let addr = nf_addr.unwrap_or_else(|| "0.0.0.0".to_owned());
        // ktranslate's default port is flowtel's.
        let port = nf_port.unwrap_or_else(|| {
            crate::config::Config::default()
                .listen
                .first()
                .map_or(9995, std::net::SocketAddr::port)
                .to_string()
        });
        let host = match addr.parse::<IpAddr>() {
            Ok(IpAddr::V6(v6)) => format!("[{v6}]"),
            _ if addr.is_empty() => "0.0.0.0".to_owned(),
            _ => addr,
        };
        out.push("--listen".into());
        out.push(format!("{host}:{port}"));
    }
    for s in &sinks {
        out.push("--sink".into());
        out.push((*s).to_owned());
    }
    for p in positional {
        warnings.push(format!(
            "ktranslate argument {p:?} (mode) is not implemented by flowtel; ignored"
        ));
    }
    Translation {
        args: out,
        warnings,
        notes,
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn strings(s: &[&str]) -> Vec<String> {
        s.iter().map(|s| (*s).to_owned()).collect()
    }

    const GRAFANA_ROLLUP: &str = "s_sum,bytes_by_flow,in_bytes+out_bytes,src_addr,dst_addr,l4_src_port,l4_dst_port,protocol,custom_str.application,device_name,custom_str.src_host,custom_str.dst_host,src_geo,dst_geo";

    fn grafana_command_line() -> Vec<String> {
        let rollups = format!("--rollups={GRAFANA_ROLLUP}");
        strings(&[
            "--format=otel",
            "--otel.protocol=grpc",
            "--otel.endpoint=http://localhost:4317/",
            "--nf.source=auto",
            "--nf.port=9995",
            "--sinks=otel",
            "--metrics=jchf",
            "--rollup_interval=60",
            "--tee_logs=true",
            "--service_name=flow",
            "--max_flows_per_message=100",
            &rollups,
            "--rollup_keep_undefined=true",
        ])
    }

    #[test]
    fn grafana_documented_command_line_translates_without_warnings() {
        let args = grafana_command_line();
        assert!(is_ktranslate_command_line(&args));
        let t = translate(&args);
        assert_eq!(
            t.args,
            strings(&[
                "run",
                "--profile",
                "ktranslate",
                "--otlp-endpoint",
                "http://localhost:4317",
                "--rollup-interval",
                "60",
                "--tee-logs",
                "--service-name",
                "flow",
                "--rollup-spec",
                GRAFANA_ROLLUP,
                "--listen",
                "0.0.0.0:9995",
                "--sink",
                "otlp",
            ])
        );
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        assert_eq!(
            t.notes,
            [
                "--metrics=jchf: flowtel's own metrics go to the OTLP endpoint and /metrics whatever this says",
                "--service_name=flow: the OTLP resource says service.name=flow",
                "--max_flows_per_message=100: OTLP requests are split at max_points_per_request (default 10000) data points instead",
            ]
        );
    }

    #[test]
    fn single_dash_and_separate_values_are_go_style() {
        let args = strings(&[
            "-format",
            "otel",
            "-nf.addr",
            "::1",
            "-nf.port",
            "2055",
            "-sinks",
            "otel,prometheus",
            "-tee_logs",
            "-rollup_top_k",
            "25",
            "--otel.tls_cert",
            "/c.pem",
            "--otel.tls_key=/k.pem",
            "-otel.root_ca",
            "/ca.pem",
            "-geo",
            "/geo.mmdb",
            "-asn=/asn.mmdb",
        ]);
        assert!(is_ktranslate_command_line(&args));
        let t = translate(&args);
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
        let joined = t.args.join(" ");
        for expected in [
            "--listen [::1]:2055",
            "--sink otlp --sink prometheus",
            "--tee-logs",
            "--top-k 25",
            "--otlp-client-cert /c.pem",
            "--otlp-client-key /k.pem",
            "--otlp-ca-file /ca.pem",
            "--geoip-country-db /geo.mmdb",
            "--geoip-asn-db /asn.mmdb",
        ] {
            assert!(joined.contains(expected), "{expected:?} not in {joined:?}");
        }
    }

    #[test]
    fn boolean_flag_does_not_swallow_the_next_argument() {
        let t = translate(&strings(&["-tee_logs", "-nf.port", "6343"]));
        assert!(t.args.contains(&"--tee-logs".to_owned()));
        assert!(t.args.contains(&"0.0.0.0:6343".to_owned()));
        let t = translate(&strings(&["--tee_logs=false", "--rollup_keep_undefined"]));
        assert!(!t.args.contains(&"--tee-logs".to_owned()));
        assert!(t.warnings.is_empty(), "{:?}", t.warnings);
    }

    #[test]
    fn nf_addr_alone_keeps_ktranslates_default_port() {
        let t = translate(&strings(&["--nf.addr=127.0.0.1"]));
        assert!(
            t.args.contains(&"127.0.0.1:9995".to_owned()),
            "{:?}",
            t.args
        );
    }

    #[test]
    fn unimplemented_flags_warn_once_each_and_never_fail() {
        let args = strings(&[
            "--format=otel",
            "--snmp=/etc/snmp.yaml",
            "--snmp=/etc/other.yaml",
            "-kentik_email",
            "a@b.c",
            "--sinks=kafka,otel",
            "--dns=local",
            "flow",
        ]);
        let t = translate(&args);
        assert_eq!(t.warnings.len(), 5, "{:#?}", t.warnings);
        assert!(
            t.warnings
                .iter()
                .any(|w| w.contains("--snmp=/etc/snmp.yaml"))
        );
        assert!(t.warnings.iter().any(|w| w.contains("kafka")));
        assert!(t.warnings.iter().any(|w| w.contains("kentik_email")));
        assert!(t.warnings.iter().any(|w| w.contains("\"flow\"")));
        assert!(t.args.ends_with(&strings(&["--sink", "otlp"])));
    }

    #[test]
    fn repeated_rollups_become_repeated_specs() {
        let t = translate(&strings(&[
            "--rollups=s_sum,bytes.xmt,in_bytes,src_addr",
            "--rollups",
            "sum,pkts.rcv,in_pkts,dst_addr",
        ]));
        let specs: Vec<_> = t
            .args
            .windows(2)
            .filter(|w| w[0] == "--rollup-spec")
            .map(|w| w[1].clone())
            .collect();
        assert_eq!(
            specs,
            [
                "s_sum,bytes.xmt,in_bytes,src_addr",
                "sum,pkts.rcv,in_pkts,dst_addr"
            ]
        );
    }

    #[test]
    fn flowtel_command_lines_are_not_taken_for_ktranslate() {
        for args in [
            vec!["run", "--listen", "127.0.0.1:2055", "--sink", "stdout"],
            vec!["--config", "/etc/flowtel.yaml"],
            vec![
                "--rollup-interval",
                "1",
                "--top-k",
                "5",
                "--otlp-endpoint",
                "http://x:4317",
            ],
            vec!["decode", "capture.pcap"],
            vec!["decode", "--format", "text", "capture.pcap"],
            vec!["-h"],
            vec![],
        ] {
            assert!(!is_ktranslate_command_line(&strings(&args)), "{args:?}");
        }
    }

    #[test]
    fn translated_arguments_parse_as_flowtel_run_flags() {
        use clap::Parser;
        #[derive(clap::Parser)]
        struct T {
            #[command(subcommand)]
            cmd: Cmd,
        }
        #[derive(clap::Subcommand)]
        enum Cmd {
            Run(crate::config::RunArgs),
        }
        let mut argv = vec!["flowtel".to_owned()];
        argv.extend(translate(&grafana_command_line()).args);
        let Cmd::Run(run) = T::try_parse_from(argv).unwrap().cmd;
        let config = crate::config::resolve(&run, &|_| None).unwrap();
        assert_eq!(config.profile, Some(crate::config::Profile::Ktranslate));
        assert_eq!(config.otlp.endpoint, "http://localhost:4317");
        assert_eq!(config.rollup_interval_secs, Some(60));
        assert_eq!(config.rollups.len(), 1);
        assert_eq!(
            config.rollups[0].metric_name(),
            "kentik.rollup.bytes_by_flow"
        );
        assert_eq!(config.rollups[0].interval_secs, 60);
        assert!(config.rollups[0].sample_adjust);
        assert!(config.tee_logs);
        // --service_name=flow is honoured, over OTEL_SERVICE_NAME (flags win).
        assert_eq!(config.resource.service_name.as_deref(), Some("flow"));
        assert_eq!(config.listen, vec!["0.0.0.0:9995".parse().unwrap()]);
        let env = |k: &str| (k == "OTEL_SERVICE_NAME").then(|| "netflow".to_owned());
        let service_name = |run: &crate::config::RunArgs| {
            crate::config::resolve(run, &env)
                .unwrap()
                .resource
                .service_name
        };
        assert_eq!(service_name(&run).as_deref(), Some("flow"));
        // Without --service_name, OTEL_SERVICE_NAME replaces the profile's `ktranslate`.
        let mut argv = vec!["flowtel".to_owned()];
        let without: Vec<String> = grafana_command_line()
            .into_iter()
            .filter(|a| !a.starts_with("--service_name"))
            .collect();
        argv.extend(translate(&without).args);
        let Cmd::Run(run) = T::try_parse_from(argv).unwrap().cmd;
        assert_eq!(service_name(&run).as_deref(), Some("netflow"));
        let config = crate::config::resolve(&run, &|_| None).unwrap();
        assert_eq!(config.resource.service_name.as_deref(), Some("ktranslate"));
    }
}
