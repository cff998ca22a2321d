//! The device host: every device lives on a thread of its own and is reached through a command
//! channel with a timeout. A device that does not answer in time, or that reports a fault, is
//! marked faulted and refuses commands until [`DeviceHandle::reset`] finds it answering again;
//! the daemon and the other devices keep working meanwhile.

use std::panic::AssertUnwindSafe;
use std::sync::mpsc::{self, SyncSender, TrySendError};
use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant};

use indexmap::IndexMap;
use microscoped_driver_api::{
    AnyDevice, Camera, DeviceError, DeviceKind, Laser, PropertySpec, Shutter, Stage, StateDevice,
    XYStage,
};
use thiserror::Error;
use tracing::{info, warn};

use crate::config::{Config, DeviceLimits};
use crate::drivers;

/// How many commands may wait for one device before callers are told it is busy. A full queue
/// means the device is far behind; piling up more only delays the answer everyone gets.
const QUEUE_DEPTH: usize = 32;

/// Why a call to a device did not succeed.
#[derive(Debug, Error)]
pub enum HostError {
    /// No device has that name.
    #[error(
        "no device named {}; the devices are: {known}",
        crate::names::quote(name)
    )]
    NotFound {
        /// The name asked for.
        name: String,
        /// The names that exist, for the message.
        known: String,
    },
    /// The device exists but is not of the kind the operation needs.
    #[error("device {device:?} is a {actual}, not a {wanted}")]
    WrongKind {
        /// The device.
        device: String,
        /// What the operation needs.
        wanted: &'static str,
        /// What it is.
        actual: &'static str,
    },
    /// The device is faulted and refuses commands.
    #[error("device {device:?} is faulted ({reason}); fix the cause, then reset it (ResetDevice, or `microscoped reset {device}`)")]
    Faulted {
        /// The device.
        device: String,
        /// Why it was marked faulted.
        reason: String,
    },
    /// The device did not answer in time; it is now faulted.
    #[error("device {device:?} did not answer within {} ms and is now marked faulted", timeout.as_millis())]
    Timeout {
        /// The device.
        device: String,
        /// How long the host waited.
        timeout: Duration,
    },
    /// The device is running a long job (an acquisition) and takes no other commands meanwhile.
    #[error("device {device:?} is busy with {job}; stop it first or wait until it ends")]
    InUse {
        /// The device.
        device: String,
        /// What it is doing.
        job: String,
    },
    /// The request leaves out which camera, and the instrument has none or several.
    #[error("{0}")]
    NoSuchCamera(String),
    /// A command waited in line too long without starting; the device is not faulted.
    #[error("device {device:?} is busy: a command waited {} s behind others without starting (the device is not faulted)", QUEUE_WAIT.as_secs())]
    QueueTimeout {
        /// The device.
        device: String,
    },
    /// Too many commands are already waiting for the device.
    #[error("device {device:?} is busy: {QUEUE_DEPTH} commands are already waiting for it")]
    QueueFull {
        /// The device.
        device: String,
    },
    /// The driver refused or failed the command.
    #[error("device {device:?}: {error}")]
    Device {
        /// The device.
        device: String,
        /// What the driver said.
        error: DeviceError,
    },
}

/// A command for a device thread.
type Job = Box<dyn FnOnce(&mut AnyDevice) + Send>;

/// How long a command may wait in line behind others before its caller gives up. Waiting is
/// not the device's fault (a long exposure ahead of it, say), so giving up does not fault it.
const QUEUE_WAIT: Duration = Duration::from_secs(30);

/// How often a caller whose command waits in line looks whether the device was faulted or
/// claimed meanwhile, so it can give up at once instead of waiting for its turn.
const QUEUE_POLL: Duration = Duration::from_millis(50);

/// Where a queued command is, shared by its caller and the device thread.
#[derive(Default)]
struct JobState {
    /// When the device thread started it: the command's timeout counts from here.
    started: Mutex<Option<Instant>>,
    /// The caller gave up while it waited in line: the device thread skips it.
    cancelled: std::sync::atomic::AtomicBool,
}

impl JobState {
    fn started(&self) -> Option<Instant> {
        *self.started.lock().unwrap_or_else(|e| e.into_inner())
    }
}

/// Why a job did not produce the driver's own result.
enum Refusal {
    /// The driver failed the command.
    Device(DeviceError),
    /// The device was claimed by a long job when the command's turn came.
    Claimed(String),
}

/// Who is sending a command, which decides what it may bypass.
#[derive(Clone, Copy, PartialEq, Eq)]
enum Sender {
    /// An ordinary caller: refused while the device is faulted or claimed.
    Normal,
    /// The holder of the device's claim (an acquisition), or a reset or safe-state command at
    /// shutdown: runs whatever the device's state.
    Privileged,
}

/// Whether a device answers.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum Health {
    /// Answering.
    Ok,
    /// Refusing commands until reset, for the reason given.
    Faulted(String),
}

struct HandleInner {
    /// The name clients use.
    name: String,
    /// The device's kind, known without asking its thread.
    kind: DeviceKind,
    /// The driver name from the config, for listings.
    driver: String,
    /// Free text from the config.
    description: String,
    /// How long one command may take.
    timeout: Duration,
    /// The properties, read once at start: the list does not change while the device runs.
    properties: Vec<PropertySpec>,
    /// Commands to the device's thread.
    tx: SyncSender<Job>,
    /// Faulted or not. A std mutex: it is never held across an await.
    health: Mutex<Health>,
    /// How many times the device went from answering to faulted since the daemon started
    /// (metrics: a device that faults and is reset again and again shows here, not in its
    /// health at any one moment).
    faults: std::sync::atomic::AtomicU64,
    /// The long job the device is claimed for, if any (see [`DeviceHandle::claim`]).
    job: Mutex<Option<ClaimState>>,
    /// Ordinary commands sent and not yet started: a claim that admits commands (live mode)
    /// looks at it between frames and steps aside.
    waiting: std::sync::atomic::AtomicUsize,
    /// The facility safety limits the device is wrapped in (see [`crate::limits`]).
    limits: DeviceLimits,
}
impl HandleInner {
    /// The job whose claim refuses ordinary commands now (a claim that admits them, as live
    /// mode's does, refuses nothing): checked before a command is queued and again on the
    /// device thread, the same way both times.
    fn refusing_job(&self) -> Option<String> {
        self.job
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .filter(|c| !c.admits)
            .map(|c| c.job.clone())
    }
}

/// A cheap-to-clone handle to one hosted device.
#[derive(Clone)]
pub struct DeviceHandle(Arc<HandleInner>);

impl DeviceHandle {
    /// Moves `device` onto a new thread and returns the handle that talks to it.
    fn spawn(
        name: String,
        driver: String,
        description: String,
        timeout: Duration,
        limits: DeviceLimits,
        mut device: AnyDevice,
    ) -> std::io::Result<Self> {
        let kind = device.kind();
        let properties = device.device().properties();
        let (tx, rx) = mpsc::sync_channel::<Job>(QUEUE_DEPTH);
        let thread_name = format!("dev-{name}");
        std::thread::Builder::new()
            .name(thread_name)
            .spawn(move || {
                // A camera's thread runs its acquisitions' frame loop: it yields to control
                // calls (see `priority`).
                if kind == DeviceKind::Camera {
                    crate::priority::enter_frame_path();
                }
                // The loop ends when every handle is gone. A panicking driver drops the job's reply
                // sender, which the caller sees as a fault; the thread itself goes on serving.
                while let Ok(job) = rx.recv() {
                    let _ = std::panic::catch_unwind(AssertUnwindSafe(|| job(&mut device)));
                }
            })?;
        Ok(Self(Arc::new(HandleInner {
            name,
            kind,
            driver,
            description,
            timeout,
            properties,
            tx,
            health: Mutex::new(Health::Ok),
            faults: std::sync::atomic::AtomicU64::new(0),
            job: Mutex::new(None),
            waiting: std::sync::atomic::AtomicUsize::new(0),
            limits,
        })))
    }

    /// The facility safety limits the device's commands are checked against.
    pub fn limits(&self) -> &DeviceLimits {
        &self.0.limits
    }

    /// The device's name.
    pub fn name(&self) -> &str {
        &self.0.name
    }

    /// The device's kind.
    pub fn kind(&self) -> DeviceKind {
        self.0.kind
    }

    /// The driver name from the config.
    pub fn driver(&self) -> &str {
        &self.0.driver
    }

    /// The description from the config.
    pub fn description(&self) -> &str {
        &self.0.description
    }

    /// The device's command timeout.
    pub fn timeout(&self) -> Duration {
        self.0.timeout
    }

    /// The device's properties.
    pub fn properties(&self) -> &[PropertySpec] {
        &self.0.properties
    }

    /// Whether the device answers.
    pub fn health(&self) -> Health {
        self.0
            .health
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .clone()
    }

    /// How many times the device has faulted since the daemon started.
    pub fn faults(&self) -> u64 {
        self.0.faults.load(std::sync::atomic::Ordering::Relaxed)
    }

    fn set_health(&self, health: Health) {
        *self.0.health.lock().unwrap_or_else(|e| e.into_inner()) = health;
    }

    fn fault(&self, reason: String) {
        warn!(device = %self.0.name, %reason, "device faulted");
        let mut health = self.0.health.lock().unwrap_or_else(|e| e.into_inner());
        // A faulted device that fails again (a privileged command at shutdown) is one fault.
        if *health == Health::Ok {
            self.0
                .faults
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        *health = Health::Faulted(reason);
    }

    /// Runs `f` on the device's thread with the device's own timeout.
    pub async fn call<R, F>(&self, f: F) -> Result<R, HostError>
    where
        R: Send + 'static,
        F: FnOnce(&mut AnyDevice) -> Result<R, DeviceError> + Send + 'static,
    {
        self.call_timeout(self.0.timeout, f).await
    }

    /// Runs `f` on the device's thread, waiting at most `timeout` for the answer.
    pub async fn call_timeout<R, F>(&self, timeout: Duration, f: F) -> Result<R, HostError>
    where
        R: Send + 'static,
        F: FnOnce(&mut AnyDevice) -> Result<R, DeviceError> + Send + 'static,
    {
        if let Health::Faulted(reason) = self.health() {
            return Err(HostError::Faulted {
                device: self.0.name.clone(),
                reason,
            });
        }
        if let Some(job) = self.job() {
            return Err(HostError::InUse {
                device: self.0.name.clone(),
                job,
            });
        }
        self.send(Some(timeout), Sender::Normal, f).await
    }

    /// The job that refuses ordinary commands now: a claim that admits them refuses nothing.
    fn job(&self) -> Option<String> {
        self.0.refusing_job()
    }

    /// Whether ordinary commands wait for the device thread: a long job that admits them
    /// (live mode) ends its turn between two frames so they run.
    pub fn commands_waiting(&self) -> bool {
        self.0.waiting.load(std::sync::atomic::Ordering::Relaxed) > 0
    }

    /// Claims the device for a long job named `job` (e.g. "acquisition 3"): until the returned
    /// guard is dropped, other callers get [`HostError::InUse`] at once instead of queueing
    /// behind the job and timing out. Fails if the device is faulted or already claimed.
    pub fn claim(&self, job: &str) -> Result<Claim, HostError> {
        self.take_claim(job)?;
        Ok(Claim {
            handle: self.clone(),
            released: std::sync::atomic::AtomicBool::new(false),
        })
    }

    /// Marks the device claimed for `job`, unless it is faulted or claimed already.
    fn take_claim(&self, job: &str) -> Result<(), HostError> {
        if let Health::Faulted(reason) = self.health() {
            return Err(HostError::Faulted {
                device: self.0.name.clone(),
                reason,
            });
        }
        let mut current = self.0.job.lock().unwrap_or_else(|e| e.into_inner());
        if let Some(c) = current.as_ref() {
            return Err(HostError::InUse {
                device: self.0.name.clone(),
                job: c.job.clone(),
            });
        }
        *current = Some(ClaimState {
            job: job.to_owned(),
            admits: false,
        });
        Ok(())
    }

    /// Runs a long job on the device thread with no timeout; the caller holds the claim. A
    /// fault-kind error still marks the device faulted.
    pub async fn run_claimed<R, F>(&self, _claim: &Claim, f: F) -> Result<R, HostError>
    where
        R: Send + 'static,
        F: FnOnce(&mut AnyDevice) -> Result<R, DeviceError> + Send + 'static,
    {
        // An acquisition runs as long as it runs: no timeout.
        self.send(None, Sender::Privileged, f).await
    }

    /// Sends a job and applies its outcome to the device's health. `timeout` counts from the
    /// moment the device thread starts the job (`None`: no limit); while the job waits in line,
    /// an ordinary caller gives up at once if the device is faulted or claimed meanwhile, and
    /// after [`QUEUE_WAIT`] without faulting the device.
    async fn send<R, F>(
        &self,
        timeout: Option<Duration>,
        sender: Sender,
        f: F,
    ) -> Result<R, HostError>
    where
        R: Send + 'static,
        F: FnOnce(&mut AnyDevice) -> Result<R, DeviceError> + Send + 'static,
    {
        let device = self.0.name.clone();
        let (reply_tx, mut reply_rx) = tokio::sync::oneshot::channel();
        let state = Arc::new(JobState::default());
        let job: Job = {
            let state = state.clone();
            let inner = self.0.clone();
            Box::new(move |dev| {
                if sender == Sender::Normal {
                    inner
                        .waiting
                        .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
                }
                if state.cancelled.load(std::sync::atomic::Ordering::Relaxed) {
                    return;
                }
                // The claim is checked again here: a command that raced an acquisition's
                // claim must not run under it.
                if sender == Sender::Normal {
                    if let Some(job) = inner.refusing_job() {
                        let _ = reply_tx.send(Err(Refusal::Claimed(job)));
                        return;
                    }
                }
                *state.started.lock().unwrap_or_else(|e| e.into_inner()) = Some(Instant::now());
                let _ = reply_tx.send(f(dev).map_err(Refusal::Device));
            })
        };
        if sender == Sender::Normal {
            self.0
                .waiting
                .fetch_add(1, std::sync::atomic::Ordering::Relaxed);
        }
        let sent = self.0.tx.try_send(job);
        if sent.is_err() && sender == Sender::Normal {
            self.0
                .waiting
                .fetch_sub(1, std::sync::atomic::Ordering::Relaxed);
        }
        match sent {
            Ok(()) => {}
            Err(TrySendError::Full(_)) => return Err(HostError::QueueFull { device }),
            Err(TrySendError::Disconnected(_)) => {
                let reason = "its thread has stopped".to_owned();
                self.fault(reason.clone());
                return Err(HostError::Faulted { device, reason });
            }
        }
        let enqueued = Instant::now();
        let outcome = loop {
            let started = state.started();
            let deadline = match (timeout, started) {
                // A limit too far out to represent is no limit.
                (Some(t), Some(s)) => s.checked_add(t),
                (_, None) if sender == Sender::Normal => Some(enqueued + QUEUE_WAIT),
                _ => None,
            };
            let mut wake = Instant::now() + QUEUE_POLL;
            if let Some(d) = deadline {
                wake = wake.min(d);
            }
            match tokio::time::timeout_at(wake.into(), &mut reply_rx).await {
                Ok(outcome) => break outcome,
                Err(_) if started.is_none() && sender == Sender::Normal => {
                    let give_up = if let Health::Faulted(reason) = self.health() {
                        Some(HostError::Faulted {
                            device: device.clone(),
                            reason,
                        })
                    } else if let Some(job) = self.job() {
                        Some(HostError::InUse {
                            device: device.clone(),
                            job,
                        })
                    } else if Instant::now() >= enqueued + QUEUE_WAIT {
                        Some(HostError::QueueTimeout {
                            device: device.clone(),
                        })
                    } else {
                        None
                    };
                    if let Some(e) = give_up {
                        state
                            .cancelled
                            .store(true, std::sync::atomic::Ordering::Relaxed);
                        return Err(e);
                    }
                }
                Err(_) => {
                    if let (Some(t), Some(d)) = (timeout, deadline) {
                        if state.started().is_some() && Instant::now() >= d {
                            self.fault(format!(
                                "a command did not answer within {} ms",
                                t.as_millis()
                            ));
                            return Err(HostError::Timeout { device, timeout: t });
                        }
                    }
                }
            }
        };
        match outcome {
            Ok(Ok(r)) => Ok(r),
            Ok(Err(Refusal::Claimed(job))) => Err(HostError::InUse { device, job }),
            Ok(Err(Refusal::Device(error))) => {
                if error.kind.is_fault() {
                    self.fault(error.to_string());
                }
                Err(HostError::Device { device, error })
            }
            Err(_) => {
                let reason = "the driver panicked".to_owned();
                self.fault(reason.clone());
                Err(HostError::Faulted { device, reason })
            }
        }
    }

    /// Asks a device whether it answers, even when faulted, and clears the fault if it does.
    /// A device running an acquisition is not faulted and is not asked: its thread is busy.
    pub async fn reset(&self) -> Result<(), HostError> {
        let claimed = self
            .0
            .job
            .lock()
            .unwrap_or_else(|e| e.into_inner())
            .as_ref()
            .map(|c| c.job.clone());
        if let Some(job) = claimed {
            return Err(HostError::InUse {
                device: self.0.name.clone(),
                job,
            });
        }
        self.send(Some(self.0.timeout), Sender::Privileged, |d| {
            d.device().ping()
        })
        .await?;
        if self.health() != Health::Ok {
            info!(device = %self.0.name, "device answers again; fault cleared");
        }
        self.set_health(Health::Ok);
        Ok(())
    }

    /// Puts the device in its safe state, trying even when it is faulted.
    pub async fn make_safe(&self) -> Result<(), HostError> {
        self.send(Some(self.0.timeout), Sender::Privileged, |d| {
            d.device().make_safe()
        })
        .await
    }

    fn wrong_kind(&self, wanted: &'static str) -> HostError {
        HostError::WrongKind {
            device: self.0.name.clone(),
            wanted,
            actual: self.0.kind.as_str(),
        }
    }
}

/// Who holds a device's claim, and whether ordinary commands may run meanwhile.
struct ClaimState {
    /// What the claim is for, as refusals name it.
    job: String,
    /// Ordinary commands run between the holder's jobs (live mode); other claims are still
    /// refused.
    admits: bool,
}

/// A device claimed for a long job; dropping it frees the device for other callers.
pub struct Claim {
    handle: DeviceHandle,
    /// Let go for a while ([`Claim::release`]): the device is not ours until taken back.
    released: std::sync::atomic::AtomicBool,
}

impl Claim {
    /// The device claimed.
    pub fn device(&self) -> &DeviceHandle {
        &self.handle
    }

    /// Lets the device go for a while (a paused plan): anyone may use or claim it until
    /// [`take_back`](Self::take_back).
    pub fn release(&self) {
        if !self
            .released
            .swap(true, std::sync::atomic::Ordering::Relaxed)
        {
            *self.handle.0.job.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }

    /// Claims a released device again for `job`; fails as [`DeviceHandle::claim`] does if it
    /// is faulted or someone else claimed it meanwhile.
    pub fn take_back(&self, job: &str) -> Result<(), HostError> {
        if self.released.load(std::sync::atomic::Ordering::Relaxed) {
            self.handle.take_claim(job)?;
            self.released
                .store(false, std::sync::atomic::Ordering::Relaxed);
        }
        Ok(())
    }

    /// Makes `other`, a claim on the same device (live mode's, handed over), this released
    /// claim's again, for `job`: the device is never free in between.
    pub fn take_over(&self, other: Claim, job: &str) {
        // `other` lets go of nothing when dropped: its claim is now ours.
        other
            .released
            .store(true, std::sync::atomic::Ordering::Relaxed);
        self.released
            .store(false, std::sync::atomic::Ordering::Relaxed);
        self.set_job(job, false);
    }

    /// Renames the job and sets whether ordinary commands run between the holder's jobs
    /// (`admits`): live mode keeps the device from other claims but lets the people at the
    /// instrument use it. An acquisition taking a claim over from live mode makes it
    /// exclusive again.
    pub fn set_job(&self, job: &str, admits: bool) {
        *self.handle.0.job.lock().unwrap_or_else(|e| e.into_inner()) = Some(ClaimState {
            job: job.to_owned(),
            admits,
        });
    }
}

impl Drop for Claim {
    fn drop(&mut self) {
        if !self.released.load(std::sync::atomic::Ordering::Relaxed) {
            *self.handle.0.job.lock().unwrap_or_else(|e| e.into_inner()) = None;
        }
    }
}

/// Generates `DeviceHandle::with_<kind>`: checks the kind before anything is sent, then runs
/// `f` on the device thread with the driver as its own trait.
macro_rules! typed_calls {
    ($($method:ident, $variant:ident, $trait:ident, $label:literal;)*) => {
        impl DeviceHandle {
            $(
                #[doc = concat!("Runs `f` on a ", $label, ", or fails with `WrongKind`.")]
                pub async fn $method<R, F>(&self, f: F) -> Result<R, HostError>
                where
                    R: Send + 'static,
                    F: FnOnce(&mut dyn $trait) -> Result<R, DeviceError> + Send + 'static,
                {
                    self.require(DeviceKind::$variant, $label)?;
                    self.call(move |d| match d {
                        AnyDevice::$variant(dev) => f(dev.as_mut()),
                        _ => Err(DeviceError::new(
                            microscoped_driver_api::ErrorKind::Other,
                            "device kind changed under its handle",
                        )),
                    })
                    .await
                }
            )*
        }
    };
}

typed_calls! {
    with_camera, Camera, Camera, "camera";
    with_stage, Stage, Stage, "stage";
    with_xy_stage, XYStage, XYStage, "xy-stage";
    with_laser, Laser, Laser, "laser";
    with_state, State, StateDevice, "state device";
    with_shutter, Shutter, Shutter, "shutter";
}

impl DeviceHandle {
    /// Fails with `WrongKind` unless the device is of `kind`.
    pub fn require(&self, kind: DeviceKind, label: &'static str) -> Result<(), HostError> {
        if self.0.kind == kind {
            Ok(())
        } else {
            Err(self.wrong_kind(label))
        }
    }

    /// Waits until a stage, XY stage or state device reports it is not busy, polling every
    /// 10 ms, for at most `limit`. Returns how long it waited.
    pub async fn wait_for_idle(&self, limit: Duration) -> Result<Duration, HostError> {
        if !matches!(
            self.0.kind,
            DeviceKind::Stage | DeviceKind::XYStage | DeviceKind::State
        ) {
            return Err(self.wrong_kind("stage, xy-stage or state device"));
        }
        let start = Instant::now();
        loop {
            let busy = self
                .call(|d| match d {
                    AnyDevice::Stage(s) => s.is_busy(),
                    AnyDevice::XYStage(s) => s.is_busy(),
                    AnyDevice::State(s) => s.is_busy(),
                    _ => Ok(false),
                })
                .await?;
            if !busy {
                return Ok(start.elapsed());
            }
            if start.elapsed() >= limit {
                return Err(HostError::Device {
                    device: self.0.name.clone(),
                    error: DeviceError::new(
                        microscoped_driver_api::ErrorKind::Timeout,
                        format!("still moving after {} ms", limit.as_millis()),
                    ),
                });
            }
            tokio::time::sleep(Duration::from_millis(10)).await;
        }
    }
}

/// All the devices of the instrument.
#[derive(Clone)]
pub struct DeviceHost {
    /// By name, in config order.
    devices: Arc<IndexMap<String, DeviceHandle>>,
    /// Protocol emulators behind `emulate` ports, kept open as long as the devices run.
    _emulators: Arc<Vec<microscoped_serial::emulate::Emulated>>,
}

impl DeviceHost {
    /// Builds every device of the config and starts its thread.
    pub fn start(config: &Config) -> anyhow::Result<Self> {
        let mut devices = IndexMap::new();
        let built = drivers::build_all(config, drivers::Reach::Hardware)?;
        // Every device is built when the hardware is reached, so the list lines up with the
        // config's.
        for (dc, device) in config
            .devices
            .iter()
            .zip(built.devices.into_iter().flatten())
        {
            // Wrapped before its thread starts: no command can reach it unchecked.
            let device = crate::limits::apply(&dc.name, device, &dc.limits)?;
            let handle = DeviceHandle::spawn(
                dc.name.clone(),
                dc.driver.clone(),
                dc.description.clone(),
                dc.timeout,
                dc.limits.clone(),
                device,
            )?;
            info!(device = %dc.name, driver = %dc.driver, "device started");
            devices.insert(dc.name.clone(), handle);
        }
        Ok(Self {
            devices: Arc::new(devices),
            _emulators: Arc::new(built.emulators),
        })
    }

    /// Every device, in config order.
    pub fn devices(&self) -> impl Iterator<Item = &DeviceHandle> {
        self.devices.values()
    }

    /// The device called `name`.
    pub fn get(&self, name: &str) -> Result<&DeviceHandle, HostError> {
        self.devices.get(name).ok_or_else(|| HostError::NotFound {
            name: name.to_owned(),
            known: self.devices.keys().cloned().collect::<Vec<_>>().join(", "),
        })
    }

    /// The camera called `name`, or the only camera when `name` is empty.
    pub fn camera(&self, name: &str) -> Result<&DeviceHandle, HostError> {
        if !name.is_empty() {
            let d = self.get(name)?;
            d.require(DeviceKind::Camera, "camera")?;
            return Ok(d);
        }
        let cameras: Vec<_> = self.of_kind(DeviceKind::Camera).collect();
        match cameras.as_slice() {
            [one] => Ok(one),
            [] => Err(HostError::NoSuchCamera(
                "this instrument has no camera".into(),
            )),
            many => Err(HostError::NoSuchCamera(format!(
                "this instrument has {} cameras; name one of: {}",
                many.len(),
                many.iter().map(|c| c.name()).collect::<Vec<_>>().join(", ")
            ))),
        }
    }

    /// The devices of one kind.
    pub fn of_kind(&self, kind: DeviceKind) -> impl Iterator<Item = &DeviceHandle> {
        self.devices.values().filter(move |d| d.kind() == kind)
    }

    /// Puts every device in its safe state, lasers and stages first, all at once, each within
    /// its own timeout. Failures are logged: at shutdown there is nobody else to tell.
    pub async fn make_all_safe(&self) {
        let tasks = self.devices.values().map(|d| {
            let d = d.clone();
            async move {
                match d.make_safe().await {
                    Ok(()) => info!(device = %d.name(), "device in safe state"),
                    Err(e) => warn!(device = %d.name(), error = %e, "could not make device safe"),
                }
            }
        });
        futures_join_all(tasks).await;
    }

    /// Turns every laser off and stops every stage (their safe states), one after another; returns
    /// the devices made safe and those that could not be, with why. For after a failed
    /// acquisition: the light and the motion that may have been part of it stop.
    pub async fn lasers_off_stages_stopped(&self) -> (Vec<String>, Vec<(String, String)>) {
        let mut done = Vec::new();
        let mut failed = Vec::new();
        for d in self.devices.values().filter(|d| {
            matches!(
                d.kind(),
                DeviceKind::Laser | DeviceKind::Stage | DeviceKind::XYStage
            )
        }) {
            match d.make_safe().await {
                Ok(()) => done.push(d.name().to_owned()),
                Err(e) => failed.push((d.name().to_owned(), e.to_string())),
            }
        }
        (done, failed)
    }
}

/// Runs futures concurrently and waits for all of them.
async fn futures_join_all<F: std::future::Future<Output = ()> + Send + 'static>(
    futures: impl Iterator<Item = F>,
) {
    let mut set = tokio::task::JoinSet::new();
    for f in futures {
        set.spawn(f);
    }
    while set.join_next().await.is_some() {}
}

#[cfg(test)]
mod tests {
    use super::*;

    #[tokio::test]
    async fn make_all_safe_turns_lasers_off_stops_stages_and_closes_shutters() {
        let host = DeviceHost::start(&Config::demo()).unwrap();
        for l in host.of_kind(DeviceKind::Laser) {
            l.with_laser(|l| l.set_on(true)).await.unwrap();
        }
        let xy = host.get("XY").unwrap();
        xy.with_xy_stage(|s| s.move_absolute_um(20_000.0, 20_000.0))
            .await
            .unwrap();
        assert!(xy.with_xy_stage(|s| s.is_busy()).await.unwrap());
        let shutter = host.get("Shutter").unwrap();
        assert!(shutter.with_shutter(|s| s.is_open()).await.unwrap());

        host.make_all_safe().await;

        for l in host.of_kind(DeviceKind::Laser) {
            assert!(
                !l.with_laser(|l| l.is_on()).await.unwrap(),
                "{} still on",
                l.name()
            );
        }
        assert!(
            !xy.with_xy_stage(|s| s.is_busy()).await.unwrap(),
            "XY still moving"
        );
        assert!(!shutter.with_shutter(|s| s.is_open()).await.unwrap());
    }
}
