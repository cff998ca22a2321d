//! The `Access` service: who the caller is, the control lease and the audit log.

use std::time::Duration;

use tonic::{Request, Response, Status};

use super::auth::{record, require};
use super::convert::error_status;
use crate::access::lease::Lease;
use crate::access::{Access, Need, Role};
use crate::pb;

/// The most audit entries one ReadAuditLog returns.
const MAX_AUDIT_ENTRIES: u32 = 10_000;
/// How many when the client does not say.
const DEFAULT_AUDIT_ENTRIES: u32 = 1000;

/// The `Access` service.
#[derive(Clone)]
pub struct AccessService {
    access: Access,
}

impl AccessService {
    /// A service over the daemon's access control.
    pub fn new(access: Access) -> Self {
        Self { access }
    }
}

fn role_to_pb(r: Role) -> pb::Role {
    match r {
        Role::Observer => pb::Role::Observer,
        Role::Operator => pb::Role::Operator,
        Role::Admin => pb::Role::Admin,
    }
}

fn lease_to_pb(l: Option<&Lease>) -> pb::Lease {
    match l {
        None => pb::Lease::default(),
        Some(l) => pb::Lease {
            held: true,
            holder: l.user.clone(),
            holder_role: role_to_pb(l.role) as i32,
            taken_unix_us: crate::storage::unix_us(l.taken),
            expires_unix_us: crate::storage::unix_us(l.expires),
            remaining_s: l.remaining().as_secs_f64(),
            ttl_s: l.ttl.as_secs() as u32,
        },
    }
}

fn ttl(s: u32) -> Option<Duration> {
    (s > 0).then(|| Duration::from_secs(s.into()))
}

type Rpc<T> = Result<Response<T>, Status>;

#[tonic::async_trait]
impl pb::access_server::Access for AccessService {
    async fn who_am_i(&self, req: Request<pb::WhoAmIRequest>) -> Rpc<pb::WhoAmIResponse> {
        let who = require(&self.access, &req, Need::Observe, "")?.identity;
        Ok(Response::new(pb::WhoAmIResponse {
            user: who.user,
            role: role_to_pb(who.role) as i32,
            peer: who.peer,
        }))
    }

    async fn acquire_lease(&self, req: Request<pb::AcquireLeaseRequest>) -> Rpc<pb::Lease> {
        let caller = require(&self.access, &req, Need::Operate, "lease")?;
        let ttl_s = req.get_ref().ttl_s;
        let detail = serde_json::json!({ "ttl_s": ttl_s });
        let result = self
            .access
            .leases()
            .acquire(&caller.identity, ttl(ttl_s))
            .map_err(error_status);
        // Taking is recorded; the holder renewing by taking again is a heartbeat, not news.
        if !matches!(result, Ok((_, false))) {
            record(
                &self.access,
                &caller,
                "lease",
                detail,
                result.as_ref().map(|_| ()),
            );
        }
        Ok(Response::new(lease_to_pb(Some(&result?.0))))
    }

    async fn renew_lease(&self, req: Request<pb::RenewLeaseRequest>) -> Rpc<pb::Lease> {
        let caller = require(&self.access, &req, Need::Operate, "lease")?;
        let result = self
            .access
            .leases()
            .renew(&caller.identity, ttl(req.get_ref().ttl_s))
            .map(|l| Response::new(lease_to_pb(Some(&l))))
            .map_err(error_status);
        // Heartbeats are not recorded (one every few seconds would drown the log); a refused one
        // is: its holder lost the lease.
        if let Err(e) = &result {
            record(
                &self.access,
                &caller,
                "lease",
                serde_json::Value::Null,
                Err(e),
            );
        }
        result
    }

    async fn release_lease(&self, req: Request<pb::ReleaseLeaseRequest>) -> Rpc<pb::Lease> {
        let caller = require(&self.access, &req, Need::Operate, "lease")?;
        let result = self
            .access
            .leases()
            .release(&caller.identity)
            .map(|l| Response::new(lease_to_pb(Some(&l))))
            .map_err(error_status);
        record(
            &self.access,
            &caller,
            "lease",
            serde_json::Value::Null,
            result.as_ref().map(|_| ()),
        );
        result
    }

    async fn get_lease(&self, req: Request<pb::GetLeaseRequest>) -> Rpc<pb::Lease> {
        require(&self.access, &req, Need::Observe, "")?;
        Ok(Response::new(lease_to_pb(
            self.access.leases().current().as_ref(),
        )))
    }

    async fn break_lease(&self, req: Request<pb::BreakLeaseRequest>) -> Rpc<pb::Lease> {
        let caller = require(&self.access, &req, Need::Admin, "lease")?;
        let reason = match req.get_ref().reason.trim() {
            "" => "no reason given".to_owned(),
            r => r.to_owned(),
        };
        let result = self
            .access
            .leases()
            .break_lease(&caller.identity, &reason)
            .map_err(error_status);
        let detail = match &result {
            Ok(l) => serde_json::json!({ "holder": l.user, "reason": reason }),
            Err(_) => serde_json::json!({ "reason": reason }),
        };
        record(
            &self.access,
            &caller,
            "lease",
            detail,
            result.as_ref().map(|_| ()),
        );
        Ok(Response::new(lease_to_pb(Some(&result?))))
    }

    async fn read_audit_log(
        &self,
        req: Request<pb::ReadAuditLogRequest>,
    ) -> Rpc<pb::ReadAuditLogResponse> {
        require(&self.access, &req, Need::Admin, "audit log")?;
        let req = req.into_inner();
        let max = match req.max_entries {
            0 => DEFAULT_AUDIT_ENTRIES,
            n if n > MAX_AUDIT_ENTRIES => {
                return Err(Status::invalid_argument(format!(
                "max_entries must be at most {MAX_AUDIT_ENTRIES}, got {n}; page with since_unix_us"
            )))
            }
            n => n,
        };
        let audit = self.access.audit().clone();
        let entries =
            tokio::task::spawn_blocking(move || audit.read(max as usize, req.since_unix_us))
                .await
                .map_err(|_| Status::internal("reading the audit log panicked"))?
                .map_err(|e| Status::internal(format!("cannot read the audit log: {e}")))?;
        Ok(Response::new(pb::ReadAuditLogResponse {
            entries: entries
                .into_iter()
                .map(|e| pb::AuditEntry {
                    time: e.time,
                    time_unix_us: e.time_unix_us,
                    user: e.user,
                    role: e.role,
                    peer: e.peer,
                    action: e.action,
                    target: e.target,
                    detail_json: e.detail.to_string(),
                    outcome: e.outcome,
                    reason: e.reason,
                })
                .collect(),
        }))
    }
}
