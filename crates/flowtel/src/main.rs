//! The `flowtel` binary: one subcommand per module, dispatched from here; the clap types are
//! in [`cli`].
//!
//! - `flowtel decode FILE` ([`decode_cmd`]): print what the exporters in a capture send.
//! - `flowtel check-config` ([`config`], [`ktranslate`]): print the effective configuration.

mod cli;
mod config;
mod decode_cmd;
mod ktranslate;

use std::process::ExitCode;

use clap::Parser;

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
    // `flowtel check-config <ktranslate flags>` shows what a ktranslate command line becomes.
    if args.get(1).map(String::as_str) == Some("check-config")
        && ktranslate::is_ktranslate_command_line(args.get(2..).unwrap_or_default())
    {
        let translation = ktranslate::translate(args.get(2..).unwrap_or_default());
        for w in &translation.warnings {
            eprintln!("warning: {w}");
        }
        let mut rewritten = vec![args[0].clone(), "check-config".to_owned()];
        rewritten.extend(translation.args.into_iter().skip(1));
        args = rewritten;
    }
    let cli = Cli::parse_from(args);
    match cli.command {
        Command::Decode(args) => decode_cmd::run(&args),
        Command::CheckConfig { file, mut run } => {
            if file.is_some() {
                run.config = file;
            }
            let config = config::resolve(&run, &config::process_env)?;
            print!("{}", config.to_yaml()?);
            Ok(())
        }
    }
}
