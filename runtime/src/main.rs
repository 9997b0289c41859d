//! The `relay` binary: the command line in [`cli`], the library in `relay`.

mod cli;

/// The relay allocates and frees many small JSON values per record; mimalloc
/// does that markedly faster than the system allocator (`relay-bench`).
#[global_allocator]
static ALLOCATOR: mimalloc::MiMalloc = mimalloc::MiMalloc;

fn main() -> std::process::ExitCode {
    cli::main()
}
