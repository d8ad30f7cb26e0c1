//! The `flowtel` binary: one subcommand per module, dispatched from here; the clap types are
//! in [`cli`].
//!
//! - `flowtel run` and plain `flowtel` ([`daemon`], [`config`]): the daemon; ktranslate's
//!   command line ([`ktranslate`]) is translated into it.
//! - `flowtel run --pcap FILE --sink stdout` ([`run_cmd`]): the same pipeline on a capture,
//!   timed by its timestamps.
//! - `flowtel decode FILE` ([`decode_cmd`]): print what the exporters in a capture send.
//! - `flowtel check-config` ([`config`], [`ktranslate`]): print the effective configuration.
//! - `flowtel generate` ([`generate_cmd`]): simulated exporters, for demos and load tests.
//! - `flowtel demo` ([`demo_cmd`]): the daemon and the generator in one process, with a
//!   top-conversations table.
//! - `flowtel healthcheck` ([`healthcheck_cmd`]): probe `/healthz` (container HEALTHCHECK).

mod cli;
mod decode_cmd;
mod demo_cmd;
mod generate_cmd;
mod healthcheck_cmd;
mod run_cmd;
mod timefmt;
mod traffic_model;

use flowtel::{config, daemon, ktranslate};

use std::process::ExitCode;

use clap::{CommandFactory, FromArgMatches};

use crate::cli::{Cli, Command};

fn main() -> ExitCode {
    match run() {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("flowtel: {e:#}");
            ExitCode::FAILURE
        }
    }
}

fn run() -> anyhow::Result<()> {
    let mut args: Vec<String> = std::env::args().collect();
    let rest = args.get(1..).unwrap_or_default();
    let mut ktranslate_warnings = Vec::new();
    // ktranslate's command line (Grafana's Netflow integration) runs the daemon with the
    // equivalent settings and the ktranslate output profile.
    if ktranslate::is_ktranslate_command_line(rest) {
        let t = ktranslate::translate(rest);
        ktranslate_warnings = t.warnings;
        ktranslate_warnings.extend(t.notes.into_iter().map(|n| format!("note: {n}")));
        let mut rewritten = vec![args[0].clone()];
        rewritten.extend(t.args);
        args = rewritten;
    }
    // `flowtel check-config <ktranslate flags>` shows what a ktranslate command line becomes.
    if args.get(1).map(String::as_str) == Some("check-config")
        && ktranslate::is_ktranslate_command_line(args.get(2..).unwrap_or_default())
    {
        let translation = ktranslate::translate(args.get(2..).unwrap_or_default());
        for w in &translation.warnings {
            eprintln!("warning: {w}");
        }
        for n in &translation.notes {
            eprintln!("note: {n}");
        }
        let mut rewritten = vec![args[0].clone(), "check-config".to_owned()];
        rewritten.extend(translation.args.into_iter().skip(1));
        args = rewritten;
    }
    let cli = parse_cli(args);
    match cli.command {
        None if cli.run.pcap.is_some() => run_cmd::run(&cli.run),
        None => run_daemon(&cli.run, &ktranslate_warnings),
        Some(Command::Run(run)) if run.pcap.is_some() => run_cmd::run(&run),
        Some(Command::Run(run)) => run_daemon(&run, &ktranslate_warnings),
        Some(Command::Decode(args)) => decode_cmd::run(&args),
        Some(Command::Generate(args)) => generate_cmd::run(&args),
        Some(Command::Demo(args)) => demo_cmd::run(&args),
        Some(Command::Healthcheck(args)) => healthcheck_cmd::run(&args),
        Some(Command::CheckConfig {
            file,
            show_secrets,
            mut run,
        }) => {
            if file.is_some() {
                run.config = file;
            }
            let config = config::resolve(&run, &config::process_env)?;
            // Everything `run` checks before it binds a socket: GeoIP databases, rollups,
            // record rules, TLS material.
            daemon::preflight(&config)?;
            let shown = if show_secrets {
                config
            } else {
                config.redacted()
            };
            print!("{}", shown.to_yaml()?);
            Ok(())
        }
    }
}

/// The command line, with the defaults of the `run` flags in their help (from
/// `Config::default`), wherever those flags are: plain `flowtel`, `run`, `check-config`.
fn parse_cli(args: Vec<String>) -> Cli {
    let cmd = config::with_run_defaults_in_help(Cli::command())
        .mut_subcommand("run", config::with_run_defaults_in_help)
        .mut_subcommand("check-config", config::with_run_defaults_in_help);
    let matches = cmd.get_matches_from(args);
    Cli::from_arg_matches(&matches).unwrap_or_else(|e| e.exit())
}

fn run_daemon(run: &config::RunArgs, ktranslate_warnings: &[String]) -> anyhow::Result<()> {
    let config = config::resolve(run, &config::process_env)?;
    let args = run.clone();
    let hooks = daemon::Hooks {
        // SIGHUP reads the same file, environment and flags again.
        reload: Some(Box::new(move || {
            config::resolve(&args, &config::process_env)
        })),
        ..daemon::Hooks::default()
    };
    daemon::run_with(config, ktranslate_warnings, hooks)
}
