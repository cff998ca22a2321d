//! The `microscoped` command: `serve` runs the daemon; the other subcommands are clients of a
//! running daemon (through `microscoped::client::Session`), or offline tools. The commands are
//! in `cli/`.

use std::process::ExitCode;

use clap::Parser;

mod cli;

fn main() -> ExitCode {
    let cli = cli::Cli::parse();
    // Not for the daemon: a log reader that goes away must not stop a microscope.
    if !matches!(cli.command, cli::Command::Serve { .. }) {
        quiet_on_closed_pipe();
    }
    // Every thread of the daemon starts in the control class (a short scheduler slice); the
    // frame path's threads leave it for a lower priority when they start.
    microscoped_core::priority::enter_control_path();
    let runtime = match tokio::runtime::Builder::new_multi_thread()
        .enable_all()
        .build()
    {
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

/// Ends the command as `cat` ends when its reader goes away (`microscoped check FILE | head
/// -1`): quietly, killed by SIGPIPE. Rust ignores SIGPIPE, so a print to a closed pipe panics
/// (exit 101) instead. SIGPIPE is not simply restored to its default: not every write on the
/// gRPC connection is sure to suppress it (MSG_NOSIGNAL), and a daemon that went away would then
/// kill the command without a word. So the panic hook decides: once stdout or stderr has lost
/// its reader, any panic (the print's) ends the process the Unix way.
fn quiet_on_closed_pipe() {
    let report = std::panic::take_hook();
    std::panic::set_hook(Box::new(move |info| {
        if lost_reader(1) || lost_reader(2) {
            // SAFETY: restoring a signal's default action and raising it are sound anywhere.
            unsafe {
                libc::signal(libc::SIGPIPE, libc::SIG_DFL);
                libc::raise(libc::SIGPIPE);
            }
            // 128 + SIGPIPE, as a shell reports a process killed by it.
            std::process::exit(141);
        }
        report(info);
    }));
}

/// Whether `fd` is a pipe (or socket) whose reader has gone: poll reports POLLERR for it.
fn lost_reader(fd: libc::c_int) -> bool {
    let mut p = libc::pollfd {
        fd,
        events: libc::POLLOUT,
        revents: 0,
    };
    // SAFETY: one valid, initialized pollfd and a zero timeout.
    let ready = unsafe { libc::poll(&mut p, 1, 0) };
    ready == 1 && p.revents & libc::POLLERR != 0
}

#[cfg(test)]
mod tests {
    /// The commands see only `client::Session` and its types: the wire stays in the library's
    /// client side, so a change of the protobuf messages never reaches the commands.
    #[test]
    fn the_commands_see_no_protobuf_types() {
        let dir = std::path::Path::new(env!("CARGO_MANIFEST_DIR")).join("src/cli");
        let mut seen = 0;
        // Submodules (`bench/soak.rs`) too.
        let mut folders = vec![dir.clone()];
        let mut files = Vec::new();
        while let Some(folder) = folders.pop() {
            for entry in std::fs::read_dir(&folder).unwrap() {
                let path = entry.unwrap().path();
                if path.is_dir() {
                    folders.push(path);
                } else {
                    files.push(path);
                }
            }
        }
        for path in files {
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
