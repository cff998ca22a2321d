//! The `microscoped` command: `serve` runs the daemon; the other subcommands are gRPC clients of
//! a running daemon, or offline tools.

use std::path::PathBuf;
use std::process::ExitCode;

use clap::{Parser, Subcommand};
use microscoped::client::{self, CliError};
use microscoped::config::{Config, DRIVERS};
use microscoped::pb;

#[derive(Parser)]
#[command(
    name = "microscoped",
    version,
    about = "Microscope control and acquisition daemon"
)]
struct Cli {
    #[command(subcommand)]
    command: Command,
}

#[derive(clap::Args, Clone)]
struct Remote {
    /// The daemon to talk to.
    #[arg(
        long,
        global = true,
        env = "MICROSCOPED_ADDR",
        default_value = "127.0.0.1:50051"
    )]
    addr: String,
    /// The bearer token the daemon knows you by (from `microscoped token new`, via an admin).
    /// Not needed on the daemon's own machine when its config allows anonymous loopback access.
    #[arg(long, global = true, env = "MICROSCOPED_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Connect with TLS, trusting the daemon's certificate if this CA certificate (PEM) signed
    /// it (for a self-signed certificate: the certificate itself).
    #[arg(long, global = true, env = "MICROSCOPED_TLS_CA")]
    tls_ca: Option<PathBuf>,
}

impl Remote {
    fn target(&self) -> client::Target {
        client::Target {
            addr: self.addr.clone(),
            token: self.token.clone(),
            tls_ca: self.tls_ca.clone(),
        }
    }
}

#[derive(Subcommand)]
enum TokenCommand {
    /// Make a fresh random token and print it with the [users.NAME] table (holding only the
    /// token's SHA-256) to paste into the instrument config.
    New {
        /// The user the token is for.
        #[arg(long, default_value = "NAME")]
        user: String,
        /// Their role: admin, operator or observer.
        #[arg(long, default_value = "operator")]
        role: String,
    },
}

#[derive(Subcommand)]
enum LeaseCommand {
    /// Take the control lease (or renew it if you hold it).
    Take {
        /// Time to live in seconds (1-3600); renew before it runs out.
        #[arg(long, default_value_t = 60)]
        ttl: u32,
        /// Keep the lease: renew it until Ctrl-C, then release it.
        #[arg(long)]
        hold: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Extend your lease by its time to live.
    Renew {
        #[command(flatten)]
        remote: Remote,
    },
    /// Give your lease back.
    Release {
        #[command(flatten)]
        remote: Remote,
    },
    /// Who holds the lease and until when.
    Show {
        #[command(flatten)]
        remote: Remote,
    },
    /// End whoever's lease it is (admins). The holder is told why.
    Break {
        /// Why, for the holder and the audit log.
        #[arg(long, default_value = "")]
        reason: String,
        #[command(flatten)]
        remote: Remote,
    },
}

#[derive(Subcommand)]
enum Command {
    /// Run the daemon.
    Serve {
        /// Instrument config (TOML); without it, the embedded simulated demo instrument.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on, overriding the config's server.listen.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Validate a config and print the instrument it describes.
    Check {
        /// The config file.
        file: PathBuf,
    },
    /// List the devices of a running daemon.
    Devices {
        #[command(flatten)]
        remote: Remote,
    },
    /// List a device's properties with their types and limits.
    Props {
        /// The device.
        device: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Read a property.
    Get {
        /// The device.
        device: String,
        /// The property.
        property: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Write a property.
    Set {
        /// The device.
        device: String,
        /// The property.
        property: String,
        /// The value (true/false, a number, or text).
        value: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Move a stage (one position) or XY stage (two) and wait until it arrives.
    Move {
        /// The stage.
        device: String,
        /// Target in micrometres: Z, or X Y.
        #[arg(allow_negative_numbers = true, required = true)]
        position: Vec<f64>,
        /// Move by this distance instead of to this position.
        #[arg(long)]
        relative: bool,
        /// Return once the move has started.
        #[arg(long)]
        no_wait: bool,
        #[command(flatten)]
        remote: Remote,
    },
    /// Take one image and write it to a file (.tiff raw, .png auto-contrast preview).
    Snap {
        /// Output file.
        #[arg(short, long)]
        output: PathBuf,
        /// Camera to use; may be left out when the instrument has one.
        #[arg(long, default_value = "")]
        camera: String,
        /// Exposure for this image, in ms (default: the camera's current one).
        #[arg(long)]
        exposure: Option<f64>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Run a sequence acquisition into a new OME-TIFF dataset, with a progress bar; Ctrl-C stops
    /// it early and keeps what was taken.
    Acquire {
        /// A useq-schema MDASequence plan (.yaml, .yml or .json): run it instead of a sequence.
        plan: Option<PathBuf>,
        /// With a plan: check it against the instrument and print what it amounts to, without
        /// moving anything.
        #[arg(long, requires = "plan")]
        dry_run: bool,
        /// Frames to take.
        #[arg(long, required_unless_present_any = ["until_stopped", "plan"], conflicts_with = "plan")]
        frames: Option<u64>,
        /// Run until Ctrl-C instead of for a number of frames.
        #[arg(long, conflicts_with_all = ["frames", "plan"])]
        until_stopped: bool,
        /// Dataset name (default: named after the time).
        #[arg(long, default_value = "")]
        name: String,
        /// Camera to use; may be left out when the instrument has one.
        #[arg(long, default_value = "")]
        camera: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// List the presets (config groups) of a running daemon.
    Presets {
        #[command(flatten)]
        remote: Remote,
    },
    /// Apply a preset: every setting of GROUP's NAME, in config order.
    Preset {
        /// The group, e.g. Channel.
        group: String,
        /// The preset, e.g. GFP.
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Measure the frame path: writer vs plain sequential writes on the same disk, the
    /// pipeline's speed and drops, control latency and live view while streaming (runs its own
    /// daemon in-process).
    Bench {
        /// Folder on the disk to measure (made and cleaned up).
        #[arg(long, default_value = "bench-data")]
        dir: PathBuf,
        /// Frames per run (2048x2048 u16 frames are 8 MiB each).
        #[arg(long, default_value_t = 400)]
        frames: u64,
        /// Frame width.
        #[arg(long, default_value_t = 2048)]
        width: u32,
        /// Frame height.
        #[arg(long, default_value_t = 2048)]
        height: u32,
        /// Alternating plain/writer run pairs.
        #[arg(long, default_value_t = 3)]
        runs: u32,
        /// Measure a GenICam camera instead: aravis's fake GigE Vision camera over loopback
        /// (needs a build with the genicam feature).
        #[arg(long)]
        gige: bool,
        /// With --gige: the camera's frame rate.
        #[arg(long, default_value_t = 200.0)]
        gige_rate: f64,
    },
    /// Repair an OME-TIFF left by a daemon that was killed mid-acquisition.
    Recover {
        /// The .ome.tiff file.
        path: PathBuf,
    },
    /// Bearer tokens for the users of a shared instrument.
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The control lease: whoever holds it may change the hardware and start acquisitions.
    Lease {
        #[command(subcommand)]
        command: LeaseCommand,
    },
    /// Ask a faulted device whether it answers again, and clear the fault if it does.
    Reset {
        /// The device.
        device: String,
        #[command(flatten)]
        remote: Remote,
    },
}

fn main() -> ExitCode {
    let cli = Cli::parse();
    let runtime = match tokio::runtime::Runtime::new() {
        Ok(r) => r,
        Err(e) => {
            eprintln!("error: cannot start the async runtime: {e}");
            return ExitCode::FAILURE;
        }
    };
    match runtime.block_on(dispatch(cli.command)) {
        Ok(()) => ExitCode::SUCCESS,
        Err(e) => {
            eprintln!("error: {e}");
            ExitCode::from(e.exit_code())
        }
    }
}

async fn dispatch(command: Command) -> Result<(), CliError> {
    match command {
        Command::Serve { config, listen } => serve(config, listen).await,
        Command::Check { file } => check(&file),
        Command::Devices { remote } => devices(&remote).await,
        Command::Props { device, remote } => props(&remote, device).await,
        Command::Get {
            device,
            property,
            remote,
        } => {
            let mut c = client::connect(&remote.target()).await?;
            let v = c
                .get_property(pb::GetPropertyRequest { device, property })
                .await?
                .into_inner();
            println!("{}", client::show_value(&v.value));
            Ok(())
        }
        Command::Set {
            device,
            property,
            value,
            remote,
        } => set(&remote, device, property, value).await,
        Command::Move {
            device,
            position,
            relative,
            no_wait,
            remote,
        } => move_stage(&remote, device, position, relative, no_wait).await,
        Command::Snap {
            output,
            camera,
            exposure,
            remote,
        } => {
            let mut c = client::connect(&remote.target()).await?;
            let img = c
                .snap(pb::SnapRequest {
                    camera,
                    exposure_ms: exposure.unwrap_or(0.0),
                })
                .await?
                .into_inner();
            client::save_image(&img, &output)?;
            println!(
                "{}: {}x{} {}-bit from {} ({} ms)",
                output.display(),
                img.width,
                img.height,
                img.bit_depth,
                img.camera,
                img.metadata.map_or(0.0, |m| m.exposure_ms)
            );
            Ok(())
        }
        Command::Acquire {
            plan: Some(plan),
            dry_run,
            name,
            camera,
            remote,
            ..
        } => acquire_plan(&remote, &plan, dry_run, name, camera).await,
        Command::Acquire {
            frames,
            until_stopped,
            name,
            camera,
            remote,
            ..
        } => acquire(&remote, frames.unwrap_or(0), until_stopped, name, camera).await,
        Command::Presets { remote } => presets(&remote).await,
        Command::Preset {
            group,
            name,
            remote,
        } => {
            let mut c = client::connect(&remote.target()).await?;
            let r = c
                .apply_preset(pb::ApplyPresetRequest {
                    group,
                    preset: name,
                })
                .await?
                .into_inner();
            for v in r.applied {
                println!(
                    "{}.{} = {}",
                    v.device,
                    v.property,
                    client::show_value(&v.value)
                );
            }
            Ok(())
        }
        Command::Bench {
            dir,
            frames,
            gige: true,
            gige_rate,
            ..
        } => bench_gige(dir, frames, gige_rate).await,
        Command::Bench {
            dir,
            frames,
            width,
            height,
            runs,
            ..
        } => microscoped::bench::run(microscoped::bench::BenchOptions {
            dir,
            frames,
            width,
            height,
            runs: runs.max(1),
        })
        .await
        .map_err(CliError::Other),
        Command::Recover { path } => {
            let r = microscoped::storage::recover(&path)
                .map_err(|e| anyhow::anyhow!("cannot recover {}: {e}", path.display()))?;
            if r.already_complete {
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
        Command::Token {
            command: TokenCommand::New { user, role },
        } => token_new(&user, &role),
        Command::Lease { command } => lease(command).await,
        Command::Reset { device, remote } => {
            let mut c = client::connect(&remote.target()).await?;
            let d = c
                .reset_device(pb::ResetDeviceRequest { device })
                .await?
                .into_inner();
            println!("{}: answering again, fault cleared", d.name);
            Ok(())
        }
    }
}

#[cfg(feature = "genicam")]
async fn bench_gige(dir: PathBuf, frames: u64, rate: f64) -> Result<(), CliError> {
    microscoped::bench::gige(dir, frames, rate)
        .await
        .map_err(CliError::Other)
}

#[cfg(not(feature = "genicam"))]
async fn bench_gige(_: PathBuf, _: u64, _: f64) -> Result<(), CliError> {
    Err(CliError::Other(anyhow::anyhow!(
        "this microscoped was built without GenICam support: build it with \
         `cargo build --release --features genicam` (needs libaravis-dev)"
    )))
}

async fn serve(
    config: Option<PathBuf>,
    listen: Option<std::net::SocketAddr>,
) -> Result<(), CliError> {
    tracing_subscriber::fmt()
        .with_env_filter(
            tracing_subscriber::EnvFilter::try_from_default_env()
                .unwrap_or_else(|_| tracing_subscriber::EnvFilter::new("info")),
        )
        .with_writer(std::io::stderr)
        .with_ansi(std::io::IsTerminal::is_terminal(&std::io::stderr()))
        .init();
    let mut config = match config {
        Some(path) => Config::load(&path).map_err(|e| CliError::Other(e.into()))?,
        None => Config::demo(),
    };
    if let Some(addr) = listen {
        config.listen = addr;
    }
    let listener = tokio::net::TcpListener::bind(config.listen)
        .await
        .map_err(|e| anyhow::anyhow!("cannot listen on {}: {e}", config.listen))?;
    microscoped::run(config, listener, shutdown_signal())
        .await
        .map_err(CliError::Other)
}

/// Completes on SIGINT (Ctrl-C) or SIGTERM, so both an operator and a service manager stop the
/// daemon in order.
async fn shutdown_signal() {
    let ctrl_c = tokio::signal::ctrl_c();
    #[cfg(unix)]
    {
        use tokio::signal::unix::{signal, SignalKind};
        match signal(SignalKind::terminate()) {
            Ok(mut term) => {
                tokio::select! {
                    _ = ctrl_c => {}
                    _ = term.recv() => {}
                }
            }
            Err(_) => {
                let _ = ctrl_c.await;
            }
        }
    }
    #[cfg(not(unix))]
    {
        let _ = ctrl_c.await;
    }
    tracing::info!("shutdown requested");
}

fn check(file: &std::path::Path) -> Result<(), CliError> {
    let config = Config::load(file).map_err(|e| CliError::Other(e.into()))?;
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
        let about = DRIVERS
            .iter()
            .find(|(n, _)| *n == d.driver)
            .map_or("", |(_, a)| a);
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
    Ok(())
}

async fn presets(remote: &Remote) -> Result<(), CliError> {
    let mut c = client::connect(&remote.target()).await?;
    let r = c
        .list_presets(pb::ListPresetsRequest {})
        .await?
        .into_inner();
    if r.groups.is_empty() {
        println!("no presets in this instrument's config");
    }
    for g in r.groups {
        println!("{}", g.name);
        for p in g.presets {
            let settings: Vec<String> = p
                .settings
                .iter()
                .map(|v| {
                    format!(
                        "{}.{}={}",
                        v.device,
                        v.property,
                        client::show_value(&v.value)
                    )
                })
                .collect();
            println!("  {:<12} {}", p.name, settings.join(" "));
        }
    }
    Ok(())
}

async fn devices(remote: &Remote) -> Result<(), CliError> {
    let mut c = client::connect(&remote.target()).await?;
    let inst = c
        .get_instrument(pb::GetInstrumentRequest {})
        .await?
        .into_inner();
    println!(
        "instrument {:?} (microscoped {})",
        inst.name, inst.daemon_version
    );
    let width = inst.devices.iter().map(|d| d.name.len()).max().unwrap_or(0);
    for d in inst.devices {
        let kind = pb::DeviceKind::try_from(d.kind)
            .map(|k| {
                k.as_str_name()
                    .trim_start_matches("DEVICE_KIND_")
                    .to_ascii_lowercase()
            })
            .unwrap_or_default();
        let health = if d.fault.is_empty() {
            "ok".to_owned()
        } else {
            format!("FAULTED: {}", d.fault)
        };
        println!("  {:width$}  {kind:9} {:13} {health}", d.name, d.driver);
    }
    Ok(())
}

async fn props(remote: &Remote, device: String) -> Result<(), CliError> {
    use pb::property_spec::Type;
    let mut c = client::connect(&remote.target()).await?;
    let specs = c
        .list_properties(pb::ListPropertiesRequest {
            device: device.clone(),
        })
        .await?
        .into_inner()
        .properties;
    for s in specs {
        let ty = match &s.r#type {
            Some(Type::BoolType(_)) => "bool".to_owned(),
            Some(Type::IntType(t)) => format!("int {}..={}", t.min, t.max),
            Some(Type::FloatType(t)) => format!("float {}..={}", t.min, t.max),
            Some(Type::StringType(_)) => "string".to_owned(),
            Some(Type::EnumType(t)) => format!("one of {}", t.allowed.join("|")),
            None => String::new(),
        };
        let value = c
            .get_property(pb::GetPropertyRequest {
                device: device.clone(),
                property: s.name.clone(),
            })
            .await
            .map(|v| client::show_value(&v.into_inner().value))
            .unwrap_or_else(|e| format!("<{}>", e.message()));
        println!(
            "  {:20} = {:12} {:4} {}{}",
            s.name,
            value,
            s.unit,
            ty,
            if s.read_only { " (read-only)" } else { "" }
        );
    }
    Ok(())
}

async fn set(
    remote: &Remote,
    device: String,
    property: String,
    text: String,
) -> Result<(), CliError> {
    let mut c = client::connect(&remote.target()).await?;
    let specs = c
        .list_properties(pb::ListPropertiesRequest {
            device: device.clone(),
        })
        .await?
        .into_inner()
        .properties;
    let spec = specs.iter().find(|s| s.name == property);
    let value = client::parse_value(&text, spec)
        .map_err(|e| anyhow::anyhow!("{device}.{property}: {e}"))?;
    let v = c
        .set_property(pb::SetPropertyRequest {
            device: device.clone(),
            property: property.clone(),
            value: Some(value),
        })
        .await?
        .into_inner();
    println!("{device}.{property} = {}", client::show_value(&v.value));
    Ok(())
}

async fn move_stage(
    remote: &Remote,
    device: String,
    position_um: Vec<f64>,
    relative: bool,
    no_wait: bool,
) -> Result<(), CliError> {
    let mut c = client::connect(&remote.target()).await?;
    let req = pb::MoveRequest {
        device: device.clone(),
        position_um,
    };
    if relative {
        c.move_relative(req).await?;
    } else {
        c.move_absolute(req).await?;
    }
    if !no_wait {
        c.wait_for_idle(pb::WaitForIdleRequest {
            device: device.clone(),
            timeout_ms: 0,
        })
        .await?;
    }
    let p = c
        .get_position(pb::DeviceRef {
            device: device.clone(),
        })
        .await?
        .into_inner();
    let coords: Vec<String> = p.position_um.iter().map(|v| format!("{v:.3}")).collect();
    println!(
        "{device} at {} um{}",
        coords.join(", "),
        if p.busy { " (moving)" } else { "" }
    );
    Ok(())
}

async fn acquire(
    remote: &Remote,
    frames: u64,
    until_stopped: bool,
    name: String,
    camera: String,
) -> Result<(), CliError> {
    use indicatif::{ProgressBar, ProgressStyle};
    use pb::acquisition_client::AcquisitionClient;

    let channel = client::channel(&remote.target()).await?;
    let mut acq = AcquisitionClient::new(channel);
    let started = acq
        .start_sequence(pb::StartSequenceRequest {
            camera,
            frames,
            until_stopped,
            name,
        })
        .await?
        .into_inner();
    let bar = if until_stopped {
        ProgressBar::new_spinner()
    } else {
        ProgressBar::new(frames)
    };
    let template = if until_stopped {
        "{spinner} {pos} frames written {msg} ({elapsed}) - Ctrl-C stops"
    } else {
        "{bar:40} {pos}/{len} frames {msg} ({elapsed}, {eta} left) - Ctrl-C stops"
    };
    if let Ok(style) = ProgressStyle::with_template(template) {
        bar.set_style(style);
    }
    eprintln!("acquisition {} started: {}", started.id, started.path);
    let last = follow(&mut acq, started.id, &bar, |bar, s| {
        bar.set_position(s.written);
        if s.dropped > 0 {
            bar.set_message(format!("({} dropped)", s.dropped));
        }
    })
    .await?;
    println!("{}", last.path);
    report_end(&last)
}

/// Follows an acquisition to its end with `show` updating the bar; Ctrl-C stops (cancels) it.
/// Returns its final status.
async fn follow(
    acq: &mut pb::acquisition_client::AcquisitionClient<client::AuthChannel>,
    id: u64,
    bar: &indicatif::ProgressBar,
    show: impl Fn(&indicatif::ProgressBar, &pb::AcquisitionStatus),
) -> Result<pb::AcquisitionStatus, CliError> {
    let mut updates = acq
        .watch_acquisition(pb::AcquisitionRef { id })
        .await?
        .into_inner();
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    let mut stop_sent = false;
    let ended = |s: &pb::AcquisitionStatus| {
        !matches!(
            pb::AcquisitionState::try_from(s.state),
            Ok(pb::AcquisitionState::Running | pb::AcquisitionState::Paused)
        )
    };
    let last = loop {
        tokio::select! {
            _ = &mut ctrl_c, if !stop_sent => {
                stop_sent = true;
                bar.set_message("stopping...");
                let mut acq = acq.clone();
                tokio::spawn(async move { let _ = acq.stop_acquisition(pb::AcquisitionRef { id }).await; });
            }
            s = updates.message() => {
                let Some(s) = s? else {
                    // The daemon went away; ask for the final word if it is still there.
                    break acq.get_acquisition(pb::AcquisitionRef { id }).await?.into_inner();
                };
                show(bar, &s);
                if ended(&s) {
                    break s;
                }
            }
        }
    };
    bar.finish_and_clear();
    Ok(last)
}

/// Prints how an acquisition ended; an error if it failed.
fn report_end(last: &pb::AcquisitionStatus) -> Result<(), CliError> {
    let state = pb::AcquisitionState::try_from(last.state)
        .map(|s| {
            s.as_str_name()
                .trim_start_matches("ACQUISITION_STATE_")
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    println!(
        "{state}: received {} written {} dropped {} ({:.1} MB in {:.2} s)",
        last.received,
        last.written,
        last.dropped,
        last.bytes as f64 / 1e6,
        last.elapsed_s
    );
    if last.state == pb::AcquisitionState::Failed as i32 {
        return Err(CliError::Other(anyhow::anyhow!(
            "acquisition failed: {}",
            last.error
        )));
    }
    Ok(())
}

/// `acquire PLAN`: checks (`--dry-run`) or runs a useq plan with a progress bar.
async fn acquire_plan(
    remote: &Remote,
    path: &std::path::Path,
    dry_run: bool,
    name: String,
    camera: String,
) -> Result<(), CliError> {
    use indicatif::{ProgressBar, ProgressStyle};
    use pb::acquisition_client::AcquisitionClient;

    let text = std::fs::read_to_string(path)
        .map_err(|e| anyhow::anyhow!("cannot read the plan {}: {e}", path.display()))?;
    let is_json = path
        .extension()
        .is_some_and(|e| e.eq_ignore_ascii_case("json"));
    let plan = if is_json {
        pb::plan_request::Plan::UseqJson(text)
    } else {
        pb::plan_request::Plan::UseqYaml(text)
    };
    let req = pb::PlanRequest {
        plan: Some(plan),
        name,
        camera,
    };
    let mut acq = AcquisitionClient::new(client::channel(&remote.target()).await?);
    if dry_run {
        let s = acq.validate_plan(req).await?.into_inner();
        let sizes = s.sizes.unwrap_or_default();
        println!("{}: valid", path.display());
        println!(
            "{} images in {} file(s); axes {} (t {} p {} g {} c {} z {})",
            s.events, s.files, s.used_axes, sizes.t, sizes.p, sizes.g, sizes.c, sizes.z
        );
        println!("at least {:.1} s", s.duration_s);
        println!(
            "{:.1} MB to write, {:.1} MB free",
            s.bytes as f64 / 1e6,
            s.free_bytes as f64 / 1e6
        );
        if s.interval_exceeded {
            println!("warning: a time point's exposures take longer than the interval");
        }
        for w in &s.warnings {
            println!("warning: {w}");
        }
        return Ok(());
    }
    let started = acq.start_plan(req).await?.into_inner();
    let total = started.plan.as_ref().map_or(0, |p| p.events_total);
    let bar = ProgressBar::new(total);
    if let Ok(style) = ProgressStyle::with_template(
        "{bar:40} {pos}/{len} images {msg} ({elapsed}, {eta} left) - Ctrl-C cancels",
    ) {
        bar.set_style(style);
    }
    eprintln!("plan {} started: {}", started.id, started.path);
    let last = follow(&mut acq, started.id, &bar, |bar, s| {
        let Some(p) = &s.plan else { return };
        bar.set_position(p.events_done);
        let i = p.current.unwrap_or_default();
        let mut msg = format!("t{} p{} c{} z{}", i.t, i.p, i.c, i.z);
        if !p.channel.is_empty() {
            msg.push_str(&format!(" {}", p.channel));
        }
        if s.state == pb::AcquisitionState::Paused as i32 {
            msg.push_str(" (paused)");
        }
        if p.late_events > 0 {
            msg.push_str(&format!(" ({} late)", p.late_events));
        }
        bar.set_message(msg);
    })
    .await?;
    println!("{}", last.path);
    if let Some(p) = &last.plan {
        for f in &p.files {
            println!("  {f}");
        }
        if p.late_events > 0 {
            println!(
                "{} time point(s) started late, at most {:.2} s",
                p.late_events, p.max_late_s
            );
        }
    }
    report_end(&last)
}

fn token_new(user: &str, role: &str) -> Result<(), CliError> {
    use microscoped::access::token;
    if microscoped::access::Role::from_name(role).is_none() {
        return Err(
            anyhow::anyhow!("{role:?} is not a role: choose admin, operator or observer").into(),
        );
    }
    if user != "NAME" {
        microscoped::acquire::validate_dataset_name(user)
            .map_err(|e| anyhow::anyhow!("{}", e.replace("dataset name", "user name")))?;
    }
    let t = token::new_token()?;
    println!("token (give it to {user}; it is shown only now): {t}");
    println!();
    println!("# paste into the instrument config:");
    println!("[users.{user}]");
    println!("role = \"{role}\"");
    println!("token_sha256 = \"{}\"", token::hex(&token::sha256(&t)));
    Ok(())
}

/// "alice (operator) until 14:03:12 UTC, 47 s left" or "nobody".
fn show_lease(l: &pb::Lease) -> String {
    if !l.held {
        return "nobody holds the lease".into();
    }
    let until =
        std::time::UNIX_EPOCH + std::time::Duration::from_micros(l.expires_unix_us.max(0) as u64);
    let role = pb::Role::try_from(l.holder_role)
        .map(|r| {
            r.as_str_name()
                .trim_start_matches("ROLE_")
                .to_ascii_lowercase()
        })
        .unwrap_or_default();
    format!(
        "{} ({role}) holds the lease until {} UTC ({:.0} s left, renewed by {} s)",
        l.holder,
        &microscoped::storage::iso8601(until)[11..19],
        l.remaining_s,
        l.ttl_s
    )
}

async fn lease(command: LeaseCommand) -> Result<(), CliError> {
    use pb::access_client::AccessClient;
    match command {
        LeaseCommand::Take { ttl, hold, remote } => {
            let mut c = AccessClient::new(client::channel(&remote.target()).await?);
            let l = c
                .acquire_lease(pb::AcquireLeaseRequest { ttl_s: ttl })
                .await?
                .into_inner();
            println!("{}", show_lease(&l));
            if !hold {
                return Ok(());
            }
            eprintln!(
                "holding the lease: renewing every {} s; Ctrl-C releases it",
                (ttl / 3).max(1)
            );
            let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
            let mut tick =
                tokio::time::interval(std::time::Duration::from_secs((ttl / 3).max(1).into()));
            tick.tick().await;
            loop {
                tokio::select! {
                    _ = &mut ctrl_c => {
                        c.release_lease(pb::ReleaseLeaseRequest {}).await?;
                        println!("lease released");
                        return Ok(());
                    }
                    _ = tick.tick() => {
                        // A refusal means the lease is gone (broken or expired): say so and stop.
                        c.renew_lease(pb::RenewLeaseRequest { ttl_s: 0 }).await?;
                    }
                }
            }
        }
        LeaseCommand::Renew { remote } => {
            let mut c = AccessClient::new(client::channel(&remote.target()).await?);
            let l = c
                .renew_lease(pb::RenewLeaseRequest { ttl_s: 0 })
                .await?
                .into_inner();
            println!("{}", show_lease(&l));
        }
        LeaseCommand::Release { remote } => {
            let mut c = AccessClient::new(client::channel(&remote.target()).await?);
            c.release_lease(pb::ReleaseLeaseRequest {}).await?;
            println!("lease released");
        }
        LeaseCommand::Show { remote } => {
            let mut c = AccessClient::new(client::channel(&remote.target()).await?);
            let l = c.get_lease(pb::GetLeaseRequest {}).await?.into_inner();
            println!("{}", show_lease(&l));
        }
        LeaseCommand::Break { reason, remote } => {
            let mut c = AccessClient::new(client::channel(&remote.target()).await?);
            let l = c
                .break_lease(pb::BreakLeaseRequest { reason })
                .await?
                .into_inner();
            println!("broke {}'s lease", l.holder);
        }
    }
    Ok(())
}
