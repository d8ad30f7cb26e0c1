//! The `flowtel` binary.

mod config;
mod ktranslate;

use std::path::PathBuf;

use clap::{Parser, Subcommand};

#[derive(Debug, Parser)]
#[command(
    name = "flowtel",
    version,
    about = "NetFlow v5/v9, IPFIX and sFlow v5 to OpenTelemetry metrics"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(Debug, Subcommand)]
enum Command {
    /// Validate a configuration file and print the effective configuration (file, then the
    /// OTEL_* environment, then any flags given here) as YAML.
    CheckConfig {
        /// The YAML configuration file.
        file: Option<PathBuf>,
        #[command(flatten)]
        run: config::RunArgs,
    },
}

fn main() -> anyhow::Result<()> {
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
