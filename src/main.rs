//! The `microscoped` command: `serve` runs the daemon; the other subcommands are clients of a
//! running daemon (through `microscoped::client::Session`), or offline tools. The commands are
//! in `cli/`.

use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(cli::dispatch(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(cli::exit_code(&e))
        }
    }
}

#[cfg(test)]
mod tests {
    /// The commands see only `client::Session` and its types: the wire stays in the library's
    /// client side, so a change of the protobuf messages never reaches the commands.
    #[test]
    fn the_commands_see_no_protobuf_types() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cli");
        let mut seen = 0;
        for entry in std::fs::read_dir(&dir).unwrap() {
            let path = entry.unwrap().path();
            let text = std::fs::read_to_string(&path).unwrap();
            for word in ["pb::", "tonic", "prost"] {
                assert!(
                    !text.contains(word),
                    "{} names {word}: go through microscoped::client instead",
                    path.display()
                );
            }
            seen += 1;
        }
        assert!(seen >= 5, "found only {seen} files in {}", dir.display());
    }
}
