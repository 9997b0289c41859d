//! `relay lambda`: run as the Lambda function (custom runtime).

use std::process::ExitCode;

use super::{block_on, ConfigArgs};

pub(super) fn run(args: ConfigArgs) -> anyhow::Result<ExitCode> {
    let config = args.load()?;
    block_on(relay::sources::lambda::run(config))?;
    Ok(ExitCode::SUCCESS)
}
