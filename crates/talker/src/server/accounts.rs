//! Accounts: a name and a password. The password is chosen on the first
//! login (typed twice, with the client's echo off: `WILL ECHO`) and kept
//! only as an Argon2id hash (PHC string) in the state file. Hashing and
//! verifying run on a [`WorkerPool`](uniloop::WorkerPool) — they take tens
//! of milliseconds and megabytes by design, so they never run on the loop:
//! a login flood slows logins, not chat.
//!
//! Failed passwords are slowed (each answer waits half a second per
//! recent failure from that address, up to [`MAX_DELAY`]) and limited
//! ([`MAX_FAILURES`] per address in [`FAIL_WINDOW`], then that address
//! gets no more tries until the window passes). The right password for a
//! name that is on already takes that session over: the old connection
//! (often a dead link) is closed and the user carries on where they were.
//! A user from an older state file without a password sets one at their
//! next login.

use std::net::IpAddr;
use std::time::{Duration, Instant};

use argon2::password_hash::rand_core::OsRng;
use argon2::password_hash::{PasswordHash, PasswordHasher, PasswordVerifier, SaltString};
use argon2::{Algorithm, Argon2, Params, Version};

use crate::conn::Phase;
use crate::persist::UserRecord;
use crate::server::{log, unix_now, Server};
use crate::world::validate_name;

/// Failed passwords from one address before it must wait.
pub const MAX_FAILURES: u32 = 5;
/// How long failures are remembered.
pub const FAIL_WINDOW: Duration = Duration::from_secs(600);
/// Longest wait before a wrong password is answered.
pub const MAX_DELAY: Duration = Duration::from_secs(5);
/// Shortest password accepted.
pub const MIN_PASSWORD: usize = 6;

/// What a password job gives back.
#[derive(Debug)]
pub enum PwResult {
    /// A new hash (PHC string), or why hashing failed.
    Hashed(Result<String, String>),
    /// Whether the password matched.
    Verified(bool),
}

/// Argon2id with `memory_kib` of memory, 2 passes, 1 lane (the OWASP
/// recommendation at the default 19 MiB).
fn argon2(memory_kib: u32) -> Result<Argon2<'static>, String> {
    let params = Params::new(memory_kib, 2, 1, None).map_err(|e| e.to_string())?;
    Ok(Argon2::new(Algorithm::Argon2id, Version::V0x13, params))
}

/// Hashes `password` with a fresh random salt.
///
/// # Errors
///
/// Bad parameters (a memory size under 8 KiB).
pub fn hash(password: &str, memory_kib: u32) -> Result<String, String> {
    let salt = SaltString::generate(&mut OsRng);
    argon2(memory_kib)?
        .hash_password(password.as_bytes(), &salt)
        .map(|h| h.to_string())
        .map_err(|e| e.to_string())
}

/// Whether `password` matches the PHC string `hash` (its own parameters
/// are used; a malformed hash matches nothing).
pub fn verify(password: &str, hash: &str) -> bool {
    let Ok(parsed) = PasswordHash::new(hash) else {
        return false;
    };
    Argon2::default()
        .verify_password(password.as_bytes(), &parsed)
        .is_ok()
}

/// Failed password attempts from one address.
#[derive(Clone, Copy, Debug)]
pub struct Failures {
    /// How many, since `since`.
    pub count: u32,
    /// The first of them.
    pub since: Instant,
}

impl Server {
    /// A line typed while logging in: the name, or a password.
    pub(crate) fn login_input(&mut self, token: u64, line: &str) {
        let Some(c) = self.conns.get(&token) else {
            return;
        };
        match c.phase.clone() {
            Phase::Login => self.name_given(token, line.trim()),
            Phase::Password { name } => self.check_password(token, name, line),
            Phase::NewPassword { name } => {
                if line.chars().count() < MIN_PASSWORD {
                    self.send(
                        token,
                        &format!("A password needs at least {MIN_PASSWORD} characters."),
                    );
                    return self.send(token, "Choose a password:");
                }
                self.set_phase(
                    token,
                    Phase::Confirm {
                        name,
                        first: line.to_string(),
                    },
                );
                self.send(token, "Type it again:");
            }
            Phase::Confirm { name, first } => {
                if line != first {
                    self.set_phase(token, Phase::NewPassword { name });
                    self.send(token, "The two did not match.");
                    return self.send(token, "Choose a password:");
                }
                self.set_phase(token, Phase::Waiting { name });
                let memory = self.cfg.argon2_memory_kib;
                let password = first;
                self.submit_password_job(token, move || PwResult::Hashed(hash(&password, memory)));
            }
            // A job or the retry wait is under way: input is ignored.
            Phase::Waiting { .. } | Phase::Playing { .. } | Phase::Gone => {}
        }
    }

    fn set_phase(&mut self, token: u64, phase: Phase) {
        if let Some(c) = self.conns.get_mut(&token) {
            c.phase = phase;
        }
    }

    /// Echo off (the client stops showing what is typed) or on again.
    fn hide_input(&mut self, token: u64, hide: bool) {
        if let Some(c) = self.conns.get_mut(&token) {
            c.decoder.hide_input(hide);
            let bytes = c.decoder.take_replies();
            if !bytes.is_empty() {
                self.send_bytes(token, bytes);
            }
        }
    }

    fn name_given(&mut self, token: u64, name: &str) {
        if name.is_empty() {
            return self.send(token, "By what name are you known?");
        }
        if name.eq_ignore_ascii_case("MSSP-REQUEST") {
            // A crawler's plain-text MSSP request: answer it, not a login.
            let mut text = String::from("\nMSSP-REPLY-START");
            for (k, v) in self.mssp_vars() {
                text.push_str(&format!("\n{k}\t{v}"));
            }
            text.push_str("\nMSSP-REPLY-END");
            self.send(token, &text);
            return self.begin_close(token, None, "MSSP request");
        }
        if let Err(why) = validate_name(name) {
            self.send(token, &why);
            return self.send(token, "By what name are you known?");
        }
        let has_password = self
            .saved
            .users
            .get(&name.to_ascii_lowercase())
            .is_some_and(|u| u.password.is_some());
        self.hide_input(token, true);
        if has_password {
            self.set_phase(
                token,
                Phase::Password {
                    name: name.to_string(),
                },
            );
            self.send(token, "Password:");
        } else {
            let known = self.saved.users.contains_key(&name.to_ascii_lowercase());
            self.set_phase(
                token,
                Phase::NewPassword {
                    name: name.to_string(),
                },
            );
            if known {
                self.send(token, "Your name has no password yet; set one now.");
            } else {
                self.send(token, &format!("A new name: welcome, {name}!"));
            }
            self.send(token, "Choose a password:");
        }
    }

    fn check_password(&mut self, token: u64, name: String, password: &str) {
        let Some(ip) = self.conns.get(&token).map(|c| c.peer.ip()) else {
            return;
        };
        if self.failures_of(ip) >= MAX_FAILURES {
            self.hide_input(token, false);
            return self.begin_close(
                token,
                Some("Too many wrong passwords from your address. Try again later."),
                "too many failed logins",
            );
        }
        let Some(hash) = self
            .saved
            .users
            .get(&name.to_ascii_lowercase())
            .and_then(|u| u.password.clone())
        else {
            return;
        };
        self.set_phase(token, Phase::Waiting { name });
        let password = password.to_string();
        self.submit_password_job(token, move || PwResult::Verified(verify(&password, &hash)));
    }

    /// Failures from `ip` in the current window.
    fn failures_of(&mut self, ip: IpAddr) -> u32 {
        match self.login_failures.get(&ip) {
            Some(f) if f.since.elapsed() < FAIL_WINDOW => f.count,
            Some(_) => {
                self.login_failures.remove(&ip);
                0
            }
            None => 0,
        }
    }

    fn submit_password_job(&mut self, token: u64, job: impl FnOnce() -> PwResult + Send + 'static) {
        let submitted = self
            .hasher
            .as_ref()
            .is_some_and(|p| p.submit_tagged(token, job).is_ok());
        if !submitted {
            self.hide_input(token, false);
            self.begin_close(
                token,
                Some("The talker is too busy to log you in. Try again in a moment."),
                "password queue full",
            );
        }
    }

    /// A password job finished (tagged with the connection's token).
    pub(crate) fn on_password_job(&mut self, token: u64) {
        let Some((_, result)) = self.hasher.as_ref().and_then(|p| p.take_tagged(token)) else {
            return;
        };
        let Some(Phase::Waiting { name }) = self.conns.get(&token).map(|c| c.phase.clone()) else {
            return; // gone meanwhile
        };
        match result {
            Ok(PwResult::Hashed(Ok(hash))) => {
                self.hide_input(token, false);
                // Two connections may choose a password for the same new
                // name at once: the first to finish has it.
                let taken = self
                    .saved
                    .users
                    .get(&name.to_ascii_lowercase())
                    .is_some_and(|u| u.password.is_some());
                if taken {
                    self.set_phase(token, Phase::Login);
                    self.send(token, &format!("The name {name} was just taken."));
                    return self.send(token, "By what name are you known?");
                }
                self.enter(token, &name, Some(hash));
            }
            Ok(PwResult::Verified(true)) => {
                self.hide_input(token, false);
                if let Some(ip) = self.conns.get(&token).map(|c| c.peer.ip()) {
                    self.login_failures.remove(&ip);
                }
                self.enter(token, &name, None);
            }
            Ok(PwResult::Verified(false)) => {
                let Some(ip) = self.conns.get(&token).map(|c| c.peer.ip()) else {
                    return;
                };
                let now = Instant::now();
                let f = self.login_failures.entry(ip).or_insert(Failures {
                    count: 0,
                    since: now,
                });
                if now.duration_since(f.since) >= FAIL_WINDOW {
                    *f = Failures {
                        count: 0,
                        since: now,
                    };
                }
                f.count += 1;
                let count = f.count;
                self.counters.login_failures += 1;
                log(&format!(
                    "conn {token}: wrong password for {name} ({count} from {ip})"
                ));
                let delay = (Duration::from_millis(500) * count).min(MAX_DELAY);
                self.rt
                    .add_timer(crate::server::PW_RETRY | token, delay, None);
            }
            Ok(PwResult::Hashed(Err(e))) | Err(uniloop::JobPanicked(e)) => {
                log(&format!("conn {token}: password job failed: {e}"));
                self.hide_input(token, false);
                self.begin_close(
                    token,
                    Some("Sorry, logging in failed on the server."),
                    "password job failed",
                );
            }
        }
    }

    /// The wait after a wrong password is over.
    pub(crate) fn password_retry(&mut self, token: u64) {
        let Some(Phase::Waiting { name }) = self.conns.get(&token).map(|c| c.phase.clone()) else {
            return;
        };
        let ip = match self.conns.get(&token) {
            Some(c) => c.peer.ip(),
            None => return,
        };
        self.send(token, "Wrong password.");
        if self.failures_of(ip) >= MAX_FAILURES {
            self.hide_input(token, false);
            return self.begin_close(
                token,
                Some("Too many wrong passwords from your address. Try again later."),
                "too many failed logins",
            );
        }
        self.set_phase(token, Phase::Password { name });
        self.send(token, "Password:");
    }

    /// Logs `name` in on `token` (setting `new_hash` as its password if
    /// given); a session of the same name elsewhere is taken over.
    fn enter(&mut self, token: u64, name: &str, new_hash: Option<String>) {
        let key = name.to_ascii_lowercase();
        let start = self.rooms.start();
        // A session already on under this name: this connection takes it
        // over (its room included) and the old one is closed quietly.
        let old = self.online(name).filter(|&t| t != token);
        let mut room = None;
        if let Some(old) = old {
            if let Some(c) = self.conns.get_mut(&old) {
                room = Some(c.room);
                c.phase = Phase::Gone;
                let r = c.room;
                self.unindex(old, name, r);
            }
            self.begin_close(
                old,
                Some("Your session was taken over by a new login."),
                "taken over by a new login",
            );
        }
        let record = self.saved.users.entry(key).or_insert_with(|| UserRecord {
            name: name.to_string(),
            ..UserRecord::default()
        });
        record.name = name.to_string();
        if new_hash.is_some() {
            record.password = new_hash;
        }
        record.logins += 1;
        record.last_seen = unix_now();
        let returning = record.logins > 1;
        let ignoring: std::collections::HashSet<String> = record.ignoring.iter().cloned().collect();
        let colour = record.colour;
        let room = room.unwrap_or_else(|| self.rooms.find(&record.room).unwrap_or(start));
        self.saved.total_logins += 1;
        let Some(c) = self.conns.get_mut(&token) else {
            return;
        };
        c.phase = Phase::Playing {
            name: name.to_string(),
        };
        c.room = room;
        c.ignoring = ignoring;
        c.colour = colour;
        self.index(token, name, room);
        let Some(c) = self.conns.get_mut(&token) else {
            return;
        };
        if let Some(t) = c.login_timer.take() {
            self.rt.cancel_timer(t);
        }
        if old.is_some() {
            log(&format!(
                "conn {token}: {name} reconnected (took over conn {})",
                old.unwrap_or(0)
            ));
            self.send(
                token,
                &format!("Welcome back, {name}! You have taken over your session."),
            );
            self.broadcast(Some(room), Some(token), &format!("{name} has reconnected."));
            self.look(token);
            return;
        }
        log(&format!("conn {token}: logged in as {name}"));
        let greeting = if returning { "Welcome back" } else { "Welcome" };
        self.send(
            token,
            &format!("{greeting}, {name}! Type 'help' for the commands."),
        );
        if let Some(motd) = self.motd.clone() {
            self.send(token, &motd);
        }
        self.look(token);
        self.comings.push((room, name.to_string(), true));
        self.mcp_log("info", &format!("{name} logged in"));
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn a_hash_verifies_its_password_only() {
        let h = hash("correct horse", 64).unwrap();
        assert!(h.starts_with("$argon2id$v=19$m=64,t=2,p=1$"), "{h}");
        assert!(verify("correct horse", &h));
        assert!(!verify("correct horse!", &h));
        assert!(!verify("correct horse", "not a hash"));
        // Each hash has its own salt.
        assert_ne!(h, hash("correct horse", 64).unwrap());
    }

    #[test]
    fn too_little_memory_is_an_error_not_a_panic() {
        assert!(hash("x", 7).is_err());
        assert!(hash("x", 1).is_err());
    }
}
