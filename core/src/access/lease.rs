//! The control lease: one user at a time may change the hardware or start acquisitions.
//!
//! A lease belongs to a user (all of that user's clients share it), lasts a time to live that
//! the holder renews with a heartbeat, and ends when released, broken by an admin, or expired.
//! Expiry is checked whenever the lease is looked at, and a task notices it on time even when
//! nobody looks, so the `expired` event goes out promptly. Acquisitions started under a lease
//! belong to the daemon and keep running whatever happens to the lease.

use std::sync::{Arc, Mutex};
use std::time::{Duration, Instant, SystemTime};

use tokio::sync::{broadcast, watch, Notify};
use tracing::info;

use super::audit::{Audit, Record};
use super::{Identity, Role};
use crate::error::{Error, Kind};

/// The time to live when the client does not ask for one.
pub const DEFAULT_TTL: Duration = Duration::from_secs(60);
/// The shortest time to live: short enough for tests, long enough for any heartbeat loop.
pub const MIN_TTL: Duration = Duration::from_secs(1);
/// The longest time to live: a holder that vanishes blocks the instrument at most this long
/// (an admin can always break the lease sooner).
pub const MAX_TTL: Duration = Duration::from_secs(3600);

/// A lease as it stands.
#[derive(Debug, Clone)]
pub struct Lease {
    /// Who holds it.
    pub user: String,
    /// Their role.
    pub role: Role,
    /// When it was taken.
    pub taken: SystemTime,
    /// When it ends unless renewed (wall clock, for people).
    pub expires: SystemTime,
    /// The same moment on the monotonic clock, which decides.
    deadline: Instant,
    /// How long each renewal extends it.
    pub ttl: Duration,
}

impl Lease {
    /// Time left before it expires.
    pub fn remaining(&self) -> Duration {
        self.deadline.saturating_duration_since(Instant::now())
    }

    /// "leased to alice until 14:03:12 UTC (47 s left)"
    pub fn describe(&self) -> String {
        let iso = crate::time::iso8601(self.expires);
        format!(
            "leased to {} until {} UTC ({} s left)",
            self.user,
            &iso[11..19],
            self.remaining().as_secs_f64().ceil() as u64
        )
    }
}

/// What happened to the lease.
#[derive(Debug, Clone, Copy, PartialEq, Eq)]
pub enum LeaseEventKind {
    /// Someone took it.
    Taken,
    /// Its holder gave it back.
    Released,
    /// Its holder stopped renewing it.
    Expired,
    /// An admin broke it.
    Broken,
}

/// A lease event, for the event stream.
#[derive(Debug, Clone)]
pub struct LeaseEvent {
    /// What happened.
    pub kind: LeaseEventKind,
    /// When.
    pub time: SystemTime,
    /// The holder the event is about.
    pub holder: String,
    /// Who caused it (the holder, or the admin who broke it; empty for expiry).
    pub by: String,
    /// Why it was broken.
    pub reason: String,
    /// When the lease ends (for `Taken`).
    pub expires: Option<SystemTime>,
}

/// Why a lease operation was refused.
#[derive(Debug, Clone, PartialEq, Eq)]
pub enum LeaseError {
    /// Someone else holds the lease (the message says who and until when).
    HeldByOther(String),
    /// The caller does not hold the lease.
    NotHeld(String),
    /// The requested time to live is out of range.
    BadTtl(String),
}

impl std::fmt::Display for LeaseError {
    fn fmt(&self, f: &mut std::fmt::Formatter<'_>) -> std::fmt::Result {
        match self {
            Self::HeldByOther(m) | Self::NotHeld(m) | Self::BadTtl(m) => f.write_str(m),
        }
    }
}

impl From<LeaseError> for Error {
    fn from(e: LeaseError) -> Self {
        match e {
            LeaseError::BadTtl(m) => Error::new(Kind::InvalidArgument, m),
            LeaseError::HeldByOther(m) | LeaseError::NotHeld(m) => {
                Error::new(Kind::FailedPrecondition, m)
            }
        }
    }
}

struct Inner {
    /// The lease, if any. A std mutex: never held across an await.
    state: Mutex<Option<Lease>>,
    /// Wakes the expiry task when the lease changes.
    changed: Notify,
    events: broadcast::Sender<LeaseEvent>,
    audit: Audit,
}

/// The instrument's control lease: a cheap-to-clone handle.
#[derive(Clone)]
pub struct Leases(Arc<Inner>);

impl Leases {
    /// No lease held; expiries are written to `audit`.
    pub fn new(audit: Audit) -> Self {
        let (events, _) = broadcast::channel(64);
        Self(Arc::new(Inner {
            state: Mutex::new(None),
            changed: Notify::new(),
            events,
            audit,
        }))
    }

    /// Lease events as they happen.
    pub fn subscribe(&self) -> broadcast::Receiver<LeaseEvent> {
        self.0.events.subscribe()
    }

    fn emit(&self, kind: LeaseEventKind, holder: &str, by: &str, reason: &str) {
        let expires = (kind == LeaseEventKind::Taken)
            .then(|| self.current().map(|l| l.expires))
            .flatten();
        let _ = self.0.events.send(LeaseEvent {
            kind,
            time: SystemTime::now(),
            holder: holder.to_owned(),
            by: by.to_owned(),
            reason: reason.to_owned(),
            expires,
        });
    }

    /// The lease under its lock, with an expired one cleared first (and announced).
    fn with_state<R>(&self, f: impl FnOnce(&mut Option<Lease>) -> R) -> R {
        let (r, expired) = {
            let mut state = self.0.state.lock().unwrap_or_else(|e| e.into_inner());
            let expired = match &*state {
                Some(l) if Instant::now() >= l.deadline => state.take(),
                _ => None,
            };
            (f(&mut state), expired)
        };
        if let Some(l) = expired {
            self.expired(&l);
        }
        r
    }

    fn expired(&self, l: &Lease) {
        info!(user = %l.user, "control lease expired");
        self.0.audit.record(Record {
            user: l.user.clone(),
            role: l.role.as_str().into(),
            action: "LeaseExpired".into(),
            target: "lease".into(),
            detail: serde_json::json!({ "ttl_s": l.ttl.as_secs_f64() }),
            outcome: "ok",
            ..Default::default()
        });
        self.emit(LeaseEventKind::Expired, &l.user, "", "");
    }

    /// The lease, if someone holds it.
    pub fn current(&self) -> Option<Lease> {
        self.with_state(|s| s.clone())
    }

    /// Takes the lease for `who`, or renews it with the new time to live if they hold it
    /// (then the flag is false). `ttl` of `None` is [`DEFAULT_TTL`].
    pub fn acquire(
        &self,
        who: &Identity,
        ttl: Option<Duration>,
    ) -> Result<(Lease, bool), LeaseError> {
        let ttl = check_ttl(ttl)?;
        let (lease, fresh) = self.with_state(|s| match s {
            Some(l) if l.user != who.user => Err(LeaseError::HeldByOther(format!(
                "the instrument is {}; ask them, or an admin can break the lease",
                l.describe()
            ))),
            _ => {
                let fresh = s.is_none();
                let now = SystemTime::now();
                let lease = Lease {
                    user: who.user.clone(),
                    role: who.role,
                    taken: s.as_ref().map_or(now, |l| l.taken),
                    expires: now + ttl,
                    deadline: Instant::now() + ttl,
                    ttl,
                };
                *s = Some(lease.clone());
                Ok((lease, fresh))
            }
        })?;
        self.0.changed.notify_one();
        if fresh {
            info!(user = %who.user, ttl_s = ttl.as_secs(), "control lease taken");
            self.emit(LeaseEventKind::Taken, &who.user, &who.user, "");
        }
        Ok((lease, fresh))
    }

    /// Extends the caller's lease by its time to live (or a new one).
    pub fn renew(&self, who: &Identity, ttl: Option<Duration>) -> Result<Lease, LeaseError> {
        let ttl = ttl.map(|t| check_ttl(Some(t))).transpose()?;
        let lease = self.with_state(|s| match s {
            Some(l) if l.user == who.user => {
                let ttl = ttl.unwrap_or(l.ttl);
                l.ttl = ttl;
                l.expires = SystemTime::now() + ttl;
                l.deadline = Instant::now() + ttl;
                Ok(l.clone())
            }
            other => Err(not_held(who, other.as_ref())),
        })?;
        self.0.changed.notify_one();
        Ok(lease)
    }

    /// Gives the caller's lease back.
    pub fn release(&self, who: &Identity) -> Result<Lease, LeaseError> {
        let lease = self.with_state(|s| match s {
            Some(l) if l.user == who.user => Ok(s.take().expect("matched Some")),
            other => Err(not_held(who, other.as_ref())),
        })?;
        self.0.changed.notify_one();
        info!(user = %who.user, "control lease released");
        self.emit(LeaseEventKind::Released, &lease.user, &who.user, "");
        Ok(lease)
    }

    /// Ends whoever's lease it is (an admin's deliberate act; the caller checks the role).
    pub fn break_lease(&self, who: &Identity, reason: &str) -> Result<Lease, LeaseError> {
        let lease = self.with_state(|s| {
            s.take()
                .ok_or_else(|| LeaseError::NotHeld("nobody holds the lease".into()))
        })?;
        self.0.changed.notify_one();
        info!(holder = %lease.user, by = %who.user, %reason, "control lease broken");
        self.emit(LeaseEventKind::Broken, &lease.user, &who.user, reason);
        Ok(lease)
    }

    /// Whether `who` may change the hardware now: they hold the lease, or they are an admin and
    /// nobody does. The error says what to do.
    pub fn check_control(&self, who: &Identity) -> Result<(), LeaseError> {
        self.with_state(|s| match s {
            Some(l) if l.user == who.user => Ok(()),
            Some(l) => Err(LeaseError::HeldByOther(format!(
                "the instrument is {}; ask them, or an admin can break the lease",
                l.describe()
            ))),
            None if who.role == Role::Admin => Ok(()),
            None => Err(LeaseError::NotHeld(format!(
                "{} does not hold the control lease: take it first (AcquireLease, or \
                 `microscoped lease take`)",
                who.user
            ))),
        })
    }

    /// Announces expiries on time: sleeps until the lease's deadline (or a change) and looks.
    /// Ends when `stopping` becomes true.
    pub async fn watch_expiry(self, mut stopping: watch::Receiver<bool>) {
        loop {
            let deadline = self.with_state(|s| s.as_ref().map(|l| l.deadline));
            let sleep = async {
                match deadline {
                    Some(d) => tokio::time::sleep_until(d.into()).await,
                    None => std::future::pending().await,
                }
            };
            tokio::select! {
                _ = sleep => {}
                _ = self.0.changed.notified() => {}
                _ = stopping.wait_for(|s| *s) => return,
            }
        }
    }
}

fn check_ttl(ttl: Option<Duration>) -> Result<Duration, LeaseError> {
    let ttl = ttl.unwrap_or(DEFAULT_TTL);
    if ttl < MIN_TTL || ttl > MAX_TTL {
        return Err(LeaseError::BadTtl(format!(
            "ttl_s must be from {} to {} s (0: the default of {} s), got {}",
            MIN_TTL.as_secs(),
            MAX_TTL.as_secs(),
            DEFAULT_TTL.as_secs(),
            ttl.as_secs()
        )));
    }
    Ok(ttl)
}

fn not_held(who: &Identity, current: Option<&Lease>) -> LeaseError {
    LeaseError::NotHeld(match current {
        Some(l) => format!(
            "{} does not hold the lease: the instrument is {}",
            who.user,
            l.describe()
        ),
        None => format!(
            "{} does not hold the lease (nobody does: it may have expired or been broken); \
             take it again with AcquireLease",
            who.user
        ),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use crate::config::AuditConfig;

    fn who(user: &str, role: Role) -> Identity {
        Identity {
            user: user.into(),
            role,
            peer: String::new(),
        }
    }

    fn leases() -> (Leases, tempfile::TempDir) {
        let dir = tempfile::tempdir().unwrap();
        let audit = Audit::open(&AuditConfig {
            path: dir.path().join("a.jsonl"),
            max_bytes: 1 << 20,
            keep: 1,
        })
        .unwrap();
        (Leases::new(audit), dir)
    }

    #[test]
    fn one_holder_at_a_time_and_admin_without_lease() {
        let (l, _dir) = leases();
        let alice = who("alice", Role::Operator);
        let bob = who("bob", Role::Operator);
        let admin = who("root", Role::Admin);
        assert!(matches!(
            l.check_control(&alice),
            Err(LeaseError::NotHeld(_))
        ));
        assert_eq!(l.check_control(&admin), Ok(()));
        l.acquire(&alice, None).unwrap();
        assert_eq!(l.check_control(&alice), Ok(()));
        let Err(LeaseError::HeldByOther(m)) = l.check_control(&bob) else {
            panic!("bob may not control")
        };
        assert!(
            m.contains("leased to alice until") && m.contains("s left"),
            "{m}"
        );
        assert!(matches!(
            l.check_control(&admin),
            Err(LeaseError::HeldByOther(_))
        ));
        assert!(matches!(
            l.acquire(&bob, None),
            Err(LeaseError::HeldByOther(_))
        ));
        assert!(matches!(l.release(&bob), Err(LeaseError::NotHeld(_))));
        // Re-acquiring renews with the new time to live.
        let (again, fresh) = l.acquire(&alice, Some(Duration::from_secs(600))).unwrap();
        assert_eq!((again.ttl, fresh), (Duration::from_secs(600), false));
        let broken = l.break_lease(&admin, "maintenance").unwrap();
        assert_eq!(broken.user, "alice");
        assert!(l.current().is_none());
        assert!(matches!(l.renew(&alice, None), Err(LeaseError::NotHeld(_))));
    }

    #[test]
    fn ttl_bounds() {
        let (l, _dir) = leases();
        let a = who("a", Role::Operator);
        for bad in [0, 3601] {
            assert!(matches!(
                l.acquire(&a, Some(Duration::from_secs(bad))),
                Err(LeaseError::BadTtl(_))
            ));
        }
        assert_eq!(l.acquire(&a, None).unwrap().0.ttl, DEFAULT_TTL);
    }

    #[tokio::test]
    async fn expiry_is_announced_without_anyone_looking() {
        let (l, _dir) = leases();
        let mut events = l.subscribe();
        let (_stop_tx, stop) = watch::channel(false);
        tokio::spawn(l.clone().watch_expiry(stop));
        l.acquire(&who("a", Role::Operator), Some(MIN_TTL)).unwrap();
        assert_eq!(events.recv().await.unwrap().kind, LeaseEventKind::Taken);
        let e = tokio::time::timeout(Duration::from_secs(30), events.recv())
            .await
            .expect("expiry announced")
            .unwrap();
        assert_eq!((e.kind, e.holder.as_str()), (LeaseEventKind::Expired, "a"));
        // The state itself was cleared (by the task, not by this look).
        assert!(l.0.state.lock().unwrap().is_none());
    }
}
