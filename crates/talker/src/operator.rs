//! The operator's commands, shared by the console (text) and MCP (JSON):
//! who, kick, wall / say as the system, tell, stats, save, shutdown.

use serde_json::{json, Value};

use crate::command::Command;
use crate::conn::Style;
use crate::mcp::Talker;
use crate::server::{fmt_duration, Server};

/// The console's `help`.
pub const CONSOLE_HELP: &str = "\
Console commands:
  who          who is on
  kick NAME    disconnect a user
  wall MSG     a message from the system to everyone (also: say)
  tell NAME MSG  a message from the system to one user
  last         who was on lately
  stats        connections, messages/s, queue and pool statistics
  save         save the state now
  shutdown     say goodbye to everyone, save, exit";

impl Server {
    /// Runs one console line; returns what to print.
    pub(crate) fn operator(&mut self, line: &str) -> String {
        match Command::parse(line) {
            Ok(None) => String::new(),
            Ok(Some(cmd)) => match self.apply_operator(cmd) {
                Ok(text) | Err(text) => text,
            },
            Err(_) => format!("unknown or incomplete command {:?}; type help", line.trim()),
        }
    }

    /// Applies a command for the operator (the console, or MCP): words go
    /// out as from the system. Returns what to report.
    ///
    /// # Errors
    ///
    /// The command failed (no such user) or is not one for the operator.
    pub(crate) fn apply_operator(&mut self, cmd: Command) -> Result<String, String> {
        match cmd {
            Command::Who => Ok(self.who_text()),
            Command::Kick(name) => self.kick(&name).map(|()| format!("kicked {name}")),
            Command::Wall(text) | Command::Say(text) | Command::Shout(text) => {
                self.wall(&text);
                Ok(format!("sent to {} user(s)", self.users_on()))
            }
            Command::Tell(name, text) => {
                let text = &*crate::telnet::strip_controls(&text);
                let token = self
                    .online(&name)
                    .ok_or_else(|| format!("no one called {name} is on"))?;
                self.send_styled(token, &format!("[SYSTEM] tells you: {text}"), Style::System);
                self.chat(format!("[tell] SYSTEM -> {name}: {text}"));
                Ok(format!("told {name}"))
            }
            Command::Stats => Ok(self.stats_text()),
            Command::Last => Ok(self.last_text()),
            Command::Save => {
                self.request_operator_save();
                Ok("saving...".to_string())
            }
            Command::Shutdown => {
                self.begin_shutdown("console shutdown");
                Ok("shutting down".to_string())
            }
            Command::Help => Ok(CONSOLE_HELP.to_string()),
            other => Err(format!("'{}' is a user's command; type help", other.verb())),
        }
    }

    fn users_on(&self) -> usize {
        self.by_name.len()
    }

    /// Disconnects a logged-in user with a notice.
    ///
    /// # Errors
    ///
    /// No such user is on.
    pub(crate) fn kick(&mut self, name: &str) -> Result<(), String> {
        let token = self
            .online(name)
            .ok_or_else(|| format!("no one called {name} is on"))?;
        self.begin_close(
            token,
            Some("You have been kicked out by the operator."),
            "kicked by the operator",
        );
        Ok(())
    }

    /// A message from the system to everyone logged in.
    pub(crate) fn wall(&mut self, text: &str) {
        let text = &*crate::telnet::strip_controls(text);
        self.broadcast_from(None, None, None, &format!("[SYSTEM] {text}"), Style::System);
        self.chat(format!("[*] SYSTEM: {text}"));
    }

    fn stats_json(&self) -> Value {
        let mut playing = 0;
        let mut login = 0;
        let mut closing = 0;
        let mut unsent = 0;
        for c in self.conns.values() {
            unsent += c.unsent;
            if c.closing.is_some() {
                closing += 1;
            } else if c.name().is_some() {
                playing += 1;
            } else {
                login += 1;
            }
        }
        let q = self.save_progress.stats();
        let k = &self.counters;
        let (resolver, saver) = self.pool_stats();
        let log = crate::logging::stats();
        json!({
            "uptime_s": self.started.elapsed().as_secs(),
            "backend": format!("{:?}", self.rt.backend()),
            "connections": { "total": self.conns.len(), "playing": playing, "logging_in": login, "closing": closing },
            "accepted": k.accepted,
            "refused": k.refused,
            "refused_per_address": k.refused_per_address,
            "flood_refused": k.flood_refused,
            "login_failures": k.login_failures,
            "messages": k.messages,
            "messages_per_s": (k.rate * 10.0).round() / 10.0,
            "dropped_slow_clients": k.dropped_slow,
            "output_held_bytes": unsent,
            "idle_kicks": k.idle_kicks,
            "saves": k.saves,
            "save_failures": k.save_failures,
            "loop_iterations": k.iterations,
            "registered_sources": self.rt.registered(),
            "timers": self.rt.timers(),
            "resolver_pool": resolver,
            "saver_pool": saver,
            "stdout": { "queued": self.stdout.queued(), "dropped": self.stdout.dropped() },
            "log": { "queued": log.queued, "high_water": log.high_water, "dropped": log.dropped, "sink_closed": log.sink_closed },
            "save_progress_queue": {
                "capacity": q.capacity, "len": q.len, "high_water": q.high_water,
                "pushed": q.pushed, "popped": q.popped, "dropped": q.dropped,
            },
        })
    }

    fn stats_text(&self) -> String {
        let s = self.stats_json();
        let mut out = String::from("stats:");
        if let Value::Object(map) = s {
            for (k, v) in map {
                out.push_str(&format!("\n  {k}: {v}"));
            }
        }
        out.push_str(&format!(
            "\n  uptime: {}",
            fmt_duration(self.started.elapsed())
        ));
        out
    }
}

impl Talker for Server {
    fn who(&self) -> Value {
        let now = std::time::Instant::now();
        let users: Vec<Value> = self
            .conns
            .values()
            .filter_map(|c| {
                Some(json!({
                    "name": c.name()?,
                    "room": self.rooms.get(c.room).id,
                    "idle_s": now.duration_since(c.last_input).as_secs(),
                    "from": c.from(),
                }))
            })
            .collect();
        json!({ "users": users })
    }

    fn say(&mut self, text: &str) {
        let _ = self.apply_operator(Command::Say(text.to_string()));
    }

    fn tell(&mut self, name: &str, text: &str) -> Result<(), String> {
        self.apply_operator(Command::Tell(name.to_string(), text.to_string()))
            .map(|_| ())
    }

    fn kick(&mut self, name: &str) -> Result<(), String> {
        self.apply_operator(Command::Kick(name.to_string()))
            .map(|_| ())
    }

    fn stats(&self) -> Value {
        self.stats_json()
    }

    fn rooms(&self) -> Value {
        let rooms: Vec<Value> = self
            .rooms
            .iter()
            .enumerate()
            .map(|(i, r)| {
                let here: Vec<&str> =
                    self.conns.values().filter(|c| c.room == i).filter_map(|c| c.name()).collect();
                json!({ "id": r.id, "name": r.name, "description": r.description, "exits": r.exits, "users": here })
            })
            .collect();
        json!({ "rooms": rooms })
    }

    fn chat_log(&self) -> Vec<String> {
        self.chat_log.iter().cloned().collect()
    }
}
