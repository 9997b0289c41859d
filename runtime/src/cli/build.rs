//! `relay build`: a transform crate to its module, and the module's sha256.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::Args;
use relay::dev::build::{add_target, target_installed, Module, TransformCrate, TARGET};

#[derive(Args)]
pub(super) struct BuildArgs {
    /// The transform crate's folder (where its Cargo.toml is).
    #[arg(long, value_name = "DIR", default_value = ".")]
    path: PathBuf,
}

pub(super) fn run(args: BuildArgs) -> anyhow::Result<ExitCode> {
    let krate = TransformCrate::locate(&args.path)?;
    if target_installed(&args.path) == Some(false) {
        eprintln!(
            "relay build: the Rust target {TARGET} is not installed; adding it with \
             `rustup target add {TARGET}`"
        );
        add_target(&args.path)?;
    }
    eprintln!("relay build: cargo {}", krate.build_args().join(" "));
    let module = Module::read(&krate.build()?)?;
    eprintln!(
        "relay build: built {} ({} bytes); its module and pin for the relay config:",
        krate.name, module.bytes
    );
    println!("{}", module.config_lines());
    Ok(ExitCode::SUCCESS)
}
