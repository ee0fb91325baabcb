use std::process::ExitCode;

fn main() -> ExitCode {
    meshctl::main()
}
