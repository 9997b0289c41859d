//! `relay compile`: precompile a component for a deployment that ships it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use relay::transform::TransformEngine;

use super::write_file;

#[derive(Args)]
pub(super) struct CompileArgs {
    /// The transform component (.wasm).
    input: PathBuf,
    /// Where to write the precompiled artifact.
    #[arg(long, short)]
    output: PathBuf,
}

pub(super) fn run(args: CompileArgs) -> anyhow::Result<ExitCode> {
    let wasm = std::fs::read(&args.input)
        .with_context(|| format!("cannot read {}", args.input.display()))?;
    let engine = TransformEngine::new()?;
    let name = args.input.file_stem().unwrap_or_default().to_string_lossy();
    let artifact = engine.precompile(&name, &wasm)?;
    write_file(&args.output, &artifact)?;
    eprintln!(
        "compiled {} ({} bytes) to {} ({} bytes)",
        args.input.display(),
        wasm.len(),
        args.output.display(),
        artifact.len()
    );
    Ok(ExitCode::SUCCESS)
}
