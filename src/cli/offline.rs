//! The commands that need no daemon: `serve` (runs one), `check` (a config), `recover` (an
//! OME-TIFF left by a killed daemon).

use std::path::{Path, PathBuf};

use microscoped::client::Error;
use microscoped::config::Config;

/// `serve`: the daemon, until SIGINT or SIGTERM.
pub async fn serve(
    config: Option<PathBuf>,
    listen: Option<std::net::SocketAddr>,
) -> Result<(), Error> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let mut config = match config {
        Some(path) => Config::load(&path).map_err(|e| Error::Other(e.into()))?,
        None => Config::demo(),
    };
    if let Some(addr) = listen {
        config.listen = addr;
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    let shutdown = shutdown_signal()
        .map_err(|e| anyhow::anyhow!("cannot install the shutdown signal handlers: {e}"))?;
    // Under systemd (Type=notify) it hears when the daemon is ready, alive and stopping.
    let notifier = microscoped::notify::Notifier::from_env();
    microscoped::run_notifying(config, listener, shutdown, notifier)
        .await
        .map_err(Error::Other)
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM, so both an operator and a service manager stop the
/// daemon in order. The handlers are installed now, before the daemon says it is serving: a
/// future that installed them when first polled left a window in which a SIGTERM right after
/// "serving" killed the daemon without its orderly shutdown.
fn shutdown_signal() -> std::io::Result<impl std::future::Future<Output = ()>> {
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        let mut interrupt = signal(SignalKind::interrupt())?;
        let mut terminate = signal(SignalKind::terminate())?;
        Ok(async move {
            tokio::select! {
                _ = interrupt.recv() => {}
                _ = terminate.recv() => {}
            }
            tracing::info!("shutdown requested");
        })
    }
    #[cfg(not(unix))]
    {
        Ok(async {
            let _ = tokio::signal::ctrl_c().await;
            tracing::info!("shutdown requested");
        })
    }
}

/// `check FILE`: checks a config as `serve` would, as far as it can without the hardware (see
/// `microscoped::check`), prints the instrument it describes, and says what only `serve` can
/// check.
pub fn check(file: &Path) -> Result<(), Error> {
    let config = Config::load(file).map_err(|e| Error::Other(e.into()))?;
    let report = microscoped::check::check(&config).map_err(Error::Other)?;
    println!("{}: valid", config.source);
    println!(
        "instrument {:?}{}",
        config.instrument.name,
        if config.instrument.description.is_empty() {
            String::new()
        } else {
            format!(": {}", config.instrument.description)
        }
    );
    println!("listens on {}", config.listen);
    println!("{} device(s):", config.devices.len());
    let width = config
        .devices
        .iter()
        .map(|d| d.name.len())
        .max()
        .unwrap_or(0);
    for d in &config.devices {
        let about = d.settings.driver().description;
        println!(
            "  {:width$}  {:13} {:13} timeout {} ms  {}",
            d.name,
            d.kind().as_str(),
            d.driver,
            d.timeout.as_millis(),
            if d.description.is_empty() {
                about
            } else {
                &d.description
            },
        );
    }
    if !report.built.is_empty() {
        println!(
            "built as serve builds them, limits and presets checked: {}",
            report.built.join(", ")
        );
    }
    if !report.on_hardware.is_empty() {
        println!("only serve can check what needs the hardware:");
        for d in &report.on_hardware {
            println!(
                "  {:width$}  on {}{}",
                d.name,
                d.needs,
                if d.properties_known {
                    ""
                } else {
                    "; its presets only as far as its settings tell"
                }
            );
        }
        println!(
            "  that each answers, its limits against the hardware's own range, and preset values \
             against it (names, types and facility limits were checked here, on the driver's \
             protocol emulator)"
        );
    }
    println!(
        "serve also opens the audit log {} and binds {}",
        config.audit.path.display(),
        config.listen
    );
    Ok(())
}

/// `recover PATH`: completes an OME-TIFF from its sidecar; given a dataset folder (a plan's,
/// with a file per position), every `.ome.tiff` in it.
pub fn recover(path: &Path) -> Result<(), Error> {
    if !path.is_dir() {
        return recover_file(path);
    }
    let mut files: Vec<PathBuf> = std::fs::read_dir(path)
        .map_err(|e| anyhow::anyhow!("cannot read the folder {}: {e}", path.display()))?
        .filter_map(|entry| entry.ok().map(|e| e.path()))
        .filter(|p| p.to_string_lossy().ends_with(".ome.tiff"))
        .collect();
    if files.is_empty() {
        return Err(anyhow::anyhow!("{}: no .ome.tiff file in this folder", path.display()).into());
    }
    files.sort();
    files.iter().try_for_each(|f| recover_file(f))
}

/// `recover FILE`: one file, and what became of it.
fn recover_file(path: &Path) -> Result<(), Error> {
    let r = microscoped::storage::recover(path)
        .map_err(|e| anyhow::anyhow!("cannot recover {}: {e}", path.display()))?;
    if r.empty {
        let removed: Vec<String> = r.removed.iter().map(|p| p.display().to_string()).collect();
        println!(
            "{}: empty: the daemon stopped before the first frame, so nothing was recorded; \
             removed {}",
            path.display(),
            removed.join(", ")
        );
    } else if r.already_complete {
        println!(
            "{}: complete already, nothing to recover ({} planes)",
            path.display(),
            r.planes
        );
    } else {
        println!(
            "{}: recovered {} planes; cut {} bytes past the last complete plane",
            path.display(),
            r.planes,
            r.truncated_bytes
        );
    }
    Ok(())
}
