//! Access: `token new` (offline) and `lease take|renew|release|show|break`.

use microscoped::access::token;
use microscoped::client::{Error, Lease, Session};

use super::LeaseCommand;

/// `token new`: a fresh token and the `[users.NAME]` table holding its hash.
pub fn new_token(user: &str, role: &str) -> Result<(), Error> {
    if microscoped::access::Role::from_name(role).is_none() {
        return Err(
            anyhow::anyhow!("{role:?} is not a role: choose admin, operator or observer").into(),
        );
    }
    // "NAME" is the placeholder printed when no user is given. Otherwise the config's own rule
    // decides, so the table printed below is one the config accepts.
    if user != "NAME" {
        microscoped::names::validate_user_name(user).map_err(|e| anyhow::anyhow!("{e}"))?;
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

/// "alice (operator) holds the lease until 14:03:12 UTC (47 s left, renewed by 60 s)" or
/// "nobody holds the lease".
fn show_lease(l: &Lease) -> String {
    if !l.held {
        return "nobody holds the lease".into();
    }
    let until =
        std::time::UNIX_EPOCH + std::time::Duration::from_micros(l.expires_unix_us.max(0) as u64);
    let role = l.holder_role.map_or("unspecified", |r| r.as_str());
    format!(
        "{} ({role}) holds the lease until {} UTC ({:.0} s left, renewed by {} s)",
        l.holder,
        &microscoped::storage::iso8601(until)[11..19],
        l.remaining_s,
        l.ttl_s
    )
}

/// `lease ...`.
pub async fn lease(s: &mut Session, command: LeaseCommand) -> Result<(), Error> {
    match command {
        LeaseCommand::Take { ttl, hold, .. } => {
            println!("{}", show_lease(&s.take_lease(ttl).await?));
            if hold {
                hold_lease(s, ttl).await?;
            }
        }
        LeaseCommand::Renew { .. } => println!("{}", show_lease(&s.renew_lease().await?)),
        LeaseCommand::Release { .. } => {
            s.release_lease().await?;
            println!("lease released");
        }
        LeaseCommand::Show { .. } => println!("{}", show_lease(&s.lease().await?)),
        LeaseCommand::Break { reason, .. } => {
            let l = s.break_lease(&reason).await?;
            println!("broke {}'s lease", l.holder);
        }
    }
    Ok(())
}

/// `lease take --hold`: renews a third of the way through each time to live until Ctrl-C,
/// then releases.
async fn hold_lease(s: &mut Session, ttl: u32) -> Result<(), Error> {
    eprintln!(
        "holding the lease: renewing every {} s; Ctrl-C releases it",
        (ttl / 3).max(1)
    );
    let mut ctrl_c = std::pin::pin!(tokio::signal::ctrl_c());
    let mut tick = tokio::time::interval(std::time::Duration::from_secs((ttl / 3).max(1).into()));
    tick.tick().await;
    loop {
        tokio::select! {
            _ = &mut ctrl_c => {
                s.release_lease().await?;
                println!("lease released");
                return Ok(());
            }
            _ = tick.tick() => {
                // A refusal means the lease is gone (broken or expired): say so and stop.
                s.renew_lease().await?;
            }
        }
    }
}
