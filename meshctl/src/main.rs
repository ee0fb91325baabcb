use std::process::ExitCode;

use clap::Parser;

fn main() -> ExitCode {
    let cli = meshctl::Cli::parse();
    let mut stdout = std::io::stdout().lock();
    match meshctl::run(&cli, &mut stdout) {
        Ok(status) => status.into(),
        // A reader that stops early (`| head`) is not a failure worth a message.
        Err(err) if err.is_broken_pipe() => ExitCode::from(meshctl::Status::INTERNAL_ERROR),
        Err(err) => {
            let mut message = err.to_string();
            let mut source = std::error::Error::source(&err);
            while let Some(cause) = source {
                message.push_str(&format!(": {cause}"));
                source = cause.source();
            }
            eprintln!("error: {message}");
            ExitCode::from(meshctl::Status::INTERNAL_ERROR)
        }
    }
}
