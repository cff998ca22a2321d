//! The subcommands: what clap parses, one dispatch, and the commands in one file per group
//! (`devices.rs`, `acquisition.rs`, `access.rs`, `offline.rs`, `bench.rs`). Every command that
//! talks to a daemon gets the one [`Session`] `dispatch` connects; none sees protobuf types.

use std::path::PathBuf;

use clap::{Parser, Subcommand};
use microscoped::client::{self, Error, Session};

mod access;
mod acquisition;
pub mod bench;
mod devices;
mod live;
mod offline;

/// The command line.
#[derive(Parser)]
#[command(
    name = "microscoped",
    version,
    about = "Microscope control and acquisition daemon"
)]
pub struct Cli {
    /// What to do.
    #[command(subcommand)]
    pub command: Command,
}

/// How to reach the daemon, on every subcommand that talks to one. `hide_env_values`: without
/// it clap's help prints `[env: NAME=]` when the variable is unset, as if it were set to "".
#[derive(clap::Args, Clone)]
pub struct Remote {
    /// The daemon to talk to.
    #[arg(
        long,
        global = true,
        env = "MICROSCOPED_ADDR",
        hide_env_values = true,
        default_value = "127.0.0.1:50051"
    )]
    addr: String,
    /// The bearer token the daemon knows you by (from `microscoped token new`, via an admin).
    /// Not needed on the daemon's own machine when its config allows anonymous loopback access.
    #[arg(long, global = true, env = "MICROSCOPED_TOKEN", hide_env_values = true)]
    token: Option<String>,
    /// Connect with TLS, trusting the daemon's certificate if this CA certificate (PEM) signed
    /// it (for a self-signed certificate: the certificate itself).
    #[arg(
        long,
        global = true,
        env = "MICROSCOPED_TLS_CA",
        hide_env_values = true
    )]
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

/// The subcommands. `display_order` keeps `--help` in the order it always had, though the
/// commands that talk to a daemon are declared apart (in [`RemoteCommand`]).
#[derive(Subcommand)]
pub enum Command {
    /// Run the daemon.
    #[command(display_order = 0)]
    Serve {
        /// Instrument config (TOML); without it, the embedded simulated demo instrument.
        #[arg(long)]
        config: Option<PathBuf>,
        /// Address to listen on, overriding the config's server.listen.
        #[arg(long)]
        listen: Option<std::net::SocketAddr>,
    },
    /// Validate a config and print the instrument it describes.
    #[command(display_order = 1)]
    Check {
        /// The config file.
        file: PathBuf,
    },
    /// Measure the frame path: writer vs plain sequential writes on the same disk, the
    /// pipeline's speed and drops, control latency and live view while streaming (runs its own
    /// daemon in-process).
    #[command(display_order = 11)]
    Bench(bench::Args),
    /// Repair an OME-TIFF left by a daemon that was killed mid-acquisition (one with no frame
    /// is removed, with its dataset folder if that is then empty).
    #[command(display_order = 12)]
    Recover {
        /// The .ome.tiff file, or a dataset folder: every .ome.tiff in it.
        path: PathBuf,
    },
    /// Bearer tokens for the users of a shared instrument.
    #[command(display_order = 13)]
    Token {
        #[command(subcommand)]
        command: TokenCommand,
    },
    /// The commands that talk to a running daemon.
    #[command(flatten)]
    Remote(RemoteCommand),
}

/// `microscoped token ...`.
#[derive(Subcommand)]
pub enum TokenCommand {
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

/// The subcommands that talk to a running daemon: each has the [`Remote`] flags.
#[derive(Subcommand)]
pub enum RemoteCommand {
    /// List the devices of a running daemon.
    #[command(display_order = 2)]
    Devices {
        #[command(flatten)]
        remote: Remote,
    },
    /// List a device's properties with their types and limits.
    #[command(display_order = 3)]
    Props {
        /// The device.
        device: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Read a property.
    #[command(display_order = 4)]
    Get {
        /// The device.
        device: String,
        /// The property.
        property: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Write a property.
    #[command(display_order = 5)]
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
    #[command(display_order = 6)]
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
    #[command(display_order = 7)]
    Snap {
        /// Output file.
        #[arg(short, long)]
        output: PathBuf,
        /// Camera to use; may be left out when the instrument has one.
        #[arg(long, default_value = "", hide_default_value = true)]
        camera: String,
        /// Exposure for this image, in ms (default: the camera's current one).
        #[arg(long)]
        exposure: Option<f64>,
        #[command(flatten)]
        remote: Remote,
    },
    /// Run a sequence acquisition into a new OME-TIFF dataset, with a progress bar; Ctrl-C stops
    /// it early and keeps what was taken.
    #[command(display_order = 8)]
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
        #[arg(long, default_value = "", hide_default_value = true)]
        name: String,
        /// Camera to use; may be left out when the instrument has one.
        #[arg(long, default_value = "", hide_default_value = true)]
        camera: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// List the presets (config groups) of a running daemon.
    #[command(display_order = 9)]
    Presets {
        #[command(flatten)]
        remote: Remote,
    },
    /// Apply a preset: every setting of GROUP's NAME, in config order.
    #[command(display_order = 10)]
    Preset {
        /// The group, e.g. Channel.
        group: String,
        /// The preset, e.g. GFP.
        name: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// The control lease: whoever holds it may change the hardware and start acquisitions.
    #[command(display_order = 14)]
    Lease {
        #[command(subcommand)]
        command: LeaseCommand,
    },
    /// Watch a camera live: the frame rate and a small preview in the terminal (one line a
    /// second with the frame rate when the output is not a terminal). Starts live mode (the
    /// camera running, nothing written) if you may control the instrument and nothing runs;
    /// shows an acquisition's frames while one runs. Ctrl-C to stop.
    #[command(display_order = 16)]
    Live {
        /// Camera to watch; may be left out when the instrument has one.
        #[arg(long, default_value = "", hide_default_value = true)]
        camera: String,
        /// Stop after this many frames.
        #[arg(long)]
        frames: Option<u64>,
        /// At most this many frames a second (0: as fast as they come).
        #[arg(long, default_value_t = 0.0)]
        max_fps: f64,
        /// Preview width in terminal columns.
        #[arg(long, default_value_t = 64)]
        width: u32,
        #[command(flatten)]
        remote: Remote,
    },
    /// Ask a faulted device whether it answers again, and clear the fault if it does.
    #[command(display_order = 15)]
    Reset {
        /// The device.
        device: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// List the acquisitions you may read, oldest first: the datasets in the data root when
    /// the daemon started, then every run since.
    #[command(display_order = 16)]
    Acquisitions {
        #[command(flatten)]
        remote: Remote,
    },
    /// Follow an acquisition (yours, or one a script started) to its end with a progress bar;
    /// Ctrl-C stops watching, not the acquisition.
    #[command(display_order = 17)]
    Watch {
        /// The acquisition: its id (see `acquisitions`; 0: the most recent), or its dataset's
        /// name (NAME or OWNER/NAME).
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Pause a plan between two events.
    #[command(display_order = 18)]
    Pause {
        /// The acquisition: its id, or its dataset's name (NAME or OWNER/NAME).
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Resume a paused plan.
    #[command(display_order = 19)]
    Resume {
        /// The acquisition: its id, or its dataset's name (NAME or OWNER/NAME).
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Stop an acquisition early and wait until its files are finished; what was taken is kept.
    #[command(display_order = 20)]
    Stop {
        /// The acquisition: its id, or its dataset's name (NAME or OWNER/NAME).
        id: String,
        #[command(flatten)]
        remote: Remote,
    },
    /// Save one plane of a dataset to a file (.tiff raw, .png auto-contrast preview), by its
    /// index in the file or by --t/--c/--z.
    #[command(display_order = 21)]
    Read {
        /// The acquisition: its id (see `acquisitions`; 0: the most recent), or its dataset's
        /// name (NAME or OWNER/NAME).
        id: String,
        /// Output file.
        #[arg(short, long)]
        output: PathBuf,
        /// The plane's index in its file, from 0 (default 0).
        #[arg(long, conflicts_with_all = ["t", "c", "z"])]
        plane: Option<u64>,
        /// Time point, from 0 (with --c and --z; those left out are 0).
        #[arg(long)]
        t: Option<u32>,
        /// Channel, from 0.
        #[arg(long)]
        c: Option<u32>,
        /// Z slice, from 0.
        #[arg(long)]
        z: Option<u32>,
        /// A plan's position file, from 0: its index in the plan's files.
        #[arg(long, default_value_t = 0)]
        position: u32,
        #[command(flatten)]
        remote: Remote,
    },
}

/// `microscoped lease ...`.
#[derive(Subcommand)]
pub enum LeaseCommand {
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
        #[arg(long, default_value = "", hide_default_value = true)]
        reason: String,
        #[command(flatten)]
        remote: Remote,
    },
}

impl RemoteCommand {
    /// Where this command's daemon is.
    fn remote(&self) -> &Remote {
        use LeaseCommand as L;
        match self {
            Self::Devices { remote }
            | Self::Props { remote, .. }
            | Self::Get { remote, .. }
            | Self::Set { remote, .. }
            | Self::Move { remote, .. }
            | Self::Snap { remote, .. }
            | Self::Acquire { remote, .. }
            | Self::Presets { remote }
            | Self::Preset { remote, .. }
            | Self::Reset { remote, .. }
            | Self::Live { remote, .. }
            | Self::Acquisitions { remote }
            | Self::Watch { remote, .. }
            | Self::Pause { remote, .. }
            | Self::Resume { remote, .. }
            | Self::Stop { remote, .. }
            | Self::Read { remote, .. }
            | Self::Lease {
                command:
                    L::Take { remote, .. }
                    | L::Renew { remote }
                    | L::Release { remote }
                    | L::Show { remote }
                    | L::Break { remote, .. },
            } => remote,
        }
    }
}

/// The process exit code for an error: 3 when the daemon could not be reached or went away
/// mid-request (scripts retry on it once it is back), 1 for everything else.
pub fn exit_code(e: &Error) -> u8 {
    match e {
        Error::Connect(_) => 3,
        Error::Refused { .. } | Error::Other(_) => 1,
    }
}

/// Runs a command: the offline ones directly; for the others, connects once and hands the
/// session to the command.
pub async fn dispatch(command: Command) -> Result<(), Error> {
    let command = match command {
        Command::Serve { config, listen } => return offline::serve(config, listen).await,
        Command::Check { file } => return offline::check(&file),
        Command::Recover { path } => return offline::recover(&path),
        Command::Bench(args) => return bench::run(args).await.map_err(Error::Other),
        Command::Token {
            command: TokenCommand::New { user, role },
        } => return access::new_token(&user, &role),
        Command::Remote(command) => command,
    };
    let mut session = Session::connect(&command.remote().target()).await?;
    let s = &mut session;
    match command {
        RemoteCommand::Devices { .. } => devices::list(s).await,
        RemoteCommand::Props { device, .. } => devices::props(s, &device).await,
        RemoteCommand::Get {
            device, property, ..
        } => devices::get(s, &device, &property).await,
        RemoteCommand::Set {
            device,
            property,
            value,
            ..
        } => devices::set(s, &device, &property, &value).await,
        RemoteCommand::Move {
            device,
            position,
            relative,
            no_wait,
            ..
        } => devices::move_stage(s, &device, position, relative, no_wait).await,
        RemoteCommand::Snap {
            output,
            camera,
            exposure,
            ..
        } => devices::snap(s, &output, &camera, exposure).await,
        RemoteCommand::Presets { .. } => devices::presets(s).await,
        RemoteCommand::Preset { group, name, .. } => devices::apply_preset(s, &group, &name).await,
        RemoteCommand::Reset { device, .. } => devices::reset(s, &device).await,
        RemoteCommand::Live {
            camera,
            frames,
            max_fps,
            width,
            ..
        } => {
            let opts = live::Options {
                camera,
                frames,
                max_fps,
                width,
            };
            live::live(s, opts).await
        }
        RemoteCommand::Acquire {
            plan: Some(plan),
            dry_run,
            name,
            camera,
            ..
        } => acquisition::plan(s, &plan, dry_run, name, camera).await,
        RemoteCommand::Acquire {
            frames,
            until_stopped,
            name,
            camera,
            ..
        } => {
            let sequence = client::Sequence {
                camera,
                frames: frames.unwrap_or(0),
                until_stopped,
                name,
            };
            acquisition::sequence(s, sequence).await
        }
        RemoteCommand::Lease { command } => access::lease(s, command).await,
        RemoteCommand::Acquisitions { .. } => acquisition::list(s).await,
        RemoteCommand::Watch { id, .. } => {
            let id = acquisition::resolve(s, &id).await?;
            acquisition::watch(s, id).await
        }
        RemoteCommand::Pause { id, .. } => {
            let id = acquisition::resolve(s, &id).await?;
            acquisition::set_paused(s, id, true).await
        }
        RemoteCommand::Resume { id, .. } => {
            let id = acquisition::resolve(s, &id).await?;
            acquisition::set_paused(s, id, false).await
        }
        RemoteCommand::Stop { id, .. } => {
            let id = acquisition::resolve(s, &id).await?;
            acquisition::stop(s, id).await
        }
        RemoteCommand::Read {
            id,
            output,
            plane,
            t,
            c,
            z,
            position,
            ..
        } => {
            let address = if t.is_some() || c.is_some() || z.is_some() {
                client::PlaneAddress::Coords {
                    t: t.unwrap_or(0),
                    c: c.unwrap_or(0),
                    z: z.unwrap_or(0),
                }
            } else {
                client::PlaneAddress::Index(plane.unwrap_or(0))
            };
            let id = acquisition::resolve(s, &id).await?;
            acquisition::read(s, id, position, address, &output).await
        }
    }
}
