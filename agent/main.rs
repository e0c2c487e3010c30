//! The `hawser` binary: parse the command line, run the command, map the outcome to
//! an exit code. Everything else lives in the library.

use std::process::ExitCode;

fn main() -> ExitCode {
    hawser::cli::main()
}
