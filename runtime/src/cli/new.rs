//! `relay new`: a transform crate of its own to start from.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use relay::dev::new::{self, SdkSource, SDK_GIT_URL};

#[derive(Args)]
pub(super) struct NewArgs {
    /// The transform crate's name, e.g. `order-events`: lowercase letters,
    /// digits, '-' and '_', starting with a letter. Its events are
    /// `NAME.changed` to start with.
    name: String,
    /// The folder to write the crate into, new or empty [default: ./NAME].
    #[arg(long, value_name = "DIR")]
    path: Option<PathBuf>,
    /// Where the crate takes relay-sdk from: `path=DIR` (a Relay checkout or
    /// its guest-sdk folder) or `git=URL` (a Relay repository) [default: the
    /// checkout this relay was built from].
    #[arg(long, value_name = "path=DIR|git=URL")]
    sdk: Option<String>,
}

pub(super) fn run(args: NewArgs) -> anyhow::Result<ExitCode> {
    new::validate_name(&args.name)?;
    let dir = args.path.unwrap_or_else(|| PathBuf::from(&args.name));
    let sdk = match &args.sdk {
        Some(sdk) => {
            let cwd = std::env::current_dir().context("cannot tell the current folder")?;
            sdk.parse::<SdkSource>()?.resolve(&cwd)?
        }
        None => {
            let sdk = SdkSource::default_for_this_relay();
            if let SdkSource::Git(_) = sdk {
                eprintln!(
                    "note: the Relay checkout this relay was built from ({}) is not here, so \
                     relay-sdk comes from git {SDK_GIT_URL}; if that is not your Relay \
                     repository, edit Cargo.toml or run again with --sdk git=URL or --sdk path=DIR",
                    new::this_checkout().display()
                );
            }
            sdk
        }
    };
    let made = new::scaffold(&args.name, &dir, &sdk)?;
    println!(
        "Created the transform crate {} in {} (relay-sdk from {sdk}):",
        args.name,
        made.dir.display()
    );
    for file in &made.files {
        println!("  {file}");
    }
    println!();
    println!("Next:");
    println!("  cd {}", made.dir.display());
    println!("  cargo test     # the native tests in src/lib.rs");
    println!("  relay build    # the module, and its sha256 for the relay config");
    println!(
        "  relay test --transform {} --event fixtures/records.json \\\n\
         \x20            --settings fixtures/settings.json --expect fixtures/records.expected.jsonl",
        made.module
    );
    Ok(ExitCode::SUCCESS)
}
