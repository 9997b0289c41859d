//! `relay compile`: precompile a component for a deployment that ships it.

use std::path::PathBuf;
use std::process::ExitCode;

use anyhow::Context;
use clap::Args;
use relay::modules::{shipped_artifact_name, Sha256Digest};
use relay::transform::TransformEngine;

use super::write_file;

#[derive(Args)]
#[command(group = clap::ArgGroup::new("out").required(true).args(["output", "artifact_dir"]))]
pub(super) struct CompileArgs {
    /// The transform components (.wasm); one with --output.
    #[arg(required = true)]
    input: Vec<PathBuf>,
    /// Where to write the precompiled artifact (one input).
    #[arg(long, short)]
    output: Option<PathBuf>,
    /// Write each artifact into this folder as `<sha256 of the .wasm>-<arch>.cwasm`,
    /// the name under which the relay finds it for a configured `.wasm` when
    /// the folder is one of `[modules] trusted_artifact_dirs` (a module
    /// whose artifact does not load is compiled instead).
    #[arg(long, value_name = "DIR")]
    artifact_dir: Option<PathBuf>,
    /// Compile for this target instead of this machine, e.g.
    /// `aarch64-unknown-linux-gnu` for Lambda on arm64 (Graviton). The relay
    /// that loads the artifacts must be the same build.
    #[arg(long, value_name = "TRIPLE")]
    target: Option<String>,
}

pub(super) fn run(args: CompileArgs) -> anyhow::Result<ExitCode> {
    if args.output.is_some() && args.input.len() > 1 {
        anyhow::bail!("--output takes one input; for several, write them with --artifact-dir DIR");
    }
    let engine = match &args.target {
        Some(triple) => TransformEngine::for_target(triple)
            .map_err(|e| anyhow::anyhow!("cannot compile for {triple}: {e:#}"))?,
        None => TransformEngine::new()?,
    };
    let arch = match &args.target {
        Some(triple) => triple.split('-').next().unwrap_or(triple).to_owned(),
        None => std::env::consts::ARCH.to_owned(),
    };
    for input in &args.input {
        let wasm =
            std::fs::read(input).with_context(|| format!("cannot read {}", input.display()))?;
        let name = input.file_stem().unwrap_or_default().to_string_lossy();
        let artifact = engine.precompile(&name, &wasm)?;
        let output = match (&args.output, &args.artifact_dir) {
            (Some(output), _) => output.clone(),
            (None, Some(dir)) => {
                std::fs::create_dir_all(dir)
                    .with_context(|| format!("cannot create {}", dir.display()))?;
                dir.join(shipped_artifact_name(Sha256Digest::of(&wasm), &arch))
            }
            (None, None) => unreachable!("clap requires one of them"),
        };
        write_file(&output, &artifact)?;
        eprintln!(
            "compiled {} ({} bytes) for {arch} to {} ({} bytes)",
            input.display(),
            wasm.len(),
            output.display(),
            artifact.len()
        );
    }
    Ok(ExitCode::SUCCESS)
}
