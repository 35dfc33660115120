//! What users type: logging in, then the talker's commands.

use std::time::Instant;

use crate::command::Command;
use crate::conn::{self, Phase, Style};
use crate::server::{fmt_duration, log, unix_now, Server};
use crate::telnet::{self, Input};

/// What a logged-in user sees when the talker waits for a command.
pub const PROMPT: &str = "> ";

/// The `help` text.
pub const HELP: &str = "\
Commands:
  say TEXT    (or 'TEXT)   speak to the room
  emote TEXT  (or :TEXT)   act, e.g. ':waves'
  tell NAME TEXT           a private message
  shout TEXT               to everyone, in every room
  who                      who is on, idle times, where from
  look                     the room, its exits, who is here
  go ROOM                  walk to a room through an exit
  review                   the last lines said in this room
  last                     who was on lately
  ignore [NAME]            stop (or start again) hearing NAME; list
  colour on|off            ANSI colours
  quit                     leave
  help                     this text";

/// Lines `review` shows.
pub const HISTORY: usize = 20;

impl Server {
    /// One decoded piece of a connection's input.
    pub(crate) fn on_input(&mut self, token: u64, input: Input) {
        let line = match input {
            Input::WindowSize(w, h) => {
                if let Some(c) = self.conns.get_mut(&token) {
                    c.window = Some((w, h));
                    log(&format!("conn {token}: window {w}x{h}"));
                }
                return;
            }
            Input::TerminalType(t) => {
                log(&format!("conn {token}: terminal {t}"));
                if let Some(c) = self.conns.get_mut(&token) {
                    c.terminal.push(t);
                }
                return;
            }
            Input::Charset(cs) => {
                log(&format!("conn {token}: charset {cs}"));
                if let Some(c) = self.conns.get_mut(&token) {
                    c.ascii = cs != "UTF-8";
                }
                return;
            }
            Input::AreYouThere => {
                return self.send(token, "[Yes, the talker is here.]");
            }
            Input::TimingMark => {
                return self.send_bytes(token, telnet::TIMING_MARK_REPLY.to_vec());
            }
            Input::MsspRequest => {
                let vars = self.mssp_vars();
                return self.send_bytes(token, telnet::mssp(&vars));
            }
            Input::StartCompression => {
                if let Some(c) = self.conns.get_mut(&token) {
                    log(&format!("conn {token}: MCCP2 compression on"));
                    if let Err(why) = conn::start_compression(&mut self.rt, c) {
                        self.doomed.push((token, why));
                    }
                }
                return;
            }
            Input::StopCompression => {
                if let Some(c) = self.conns.get_mut(&token) {
                    log(&format!("conn {token}: MCCP2 compression off"));
                    if let Err(why) = conn::stop_compression(&mut self.rt, c) {
                        self.doomed.push((token, why));
                    }
                }
                return;
            }
            Input::TooLong(text) => {
                let max = self.cfg.max_line;
                self.send(
                    token,
                    &format!("(Your line was longer than {max} bytes; the rest was cut.)"),
                );
                text
            }
            Input::Line(text) => text,
        };
        let Some(c) = self.conns.get_mut(&token) else {
            return;
        };
        c.last_input = Instant::now();
        c.idle_warned = false;
        match c.phase {
            Phase::Playing { .. } => self.command(token, line.trim()),
            Phase::Gone => {}
            _ => self.login_input(token, &line),
        }
        self.prompt(token);
    }

    /// The prompt, to a logged-in user still here.
    fn prompt(&mut self, token: u64) {
        let Some(c) = self.conns.get_mut(&token) else {
            return;
        };
        if c.name().is_some() {
            if let Err(why) = conn::prompt(&mut self.rt, c, PROMPT) {
                self.doomed.push((token, why));
            }
        }
    }

    /// The MSSP variables (for crawlers).
    pub(crate) fn mssp_vars(&self) -> Vec<(&'static str, String)> {
        let players = self.by_name.len();
        let started = unix_now().saturating_sub(self.started.elapsed().as_secs());
        vec![
            ("NAME", "uniloop talker".to_string()),
            ("PLAYERS", players.to_string()),
            ("UPTIME", started.to_string()),
            ("CODEBASE", "uniloop talker".to_string()),
            ("FAMILY", "Custom".to_string()),
            ("GENRE", "None".to_string()),
            ("GAMESYSTEM", "None".to_string()),
            ("CHARSET", "UTF-8".to_string()),
            ("ANSI", "0".to_string()),
            ("MCCP", "1".to_string()),
            ("UTF-8", "1".to_string()),
            ("ROOMS", self.rooms.iter().count().to_string()),
        ]
    }

    /// The token of the logged-in user called `name` (any case).
    pub(crate) fn online(&self, name: &str) -> Option<u64> {
        self.by_name
            .get(&name.to_ascii_lowercase())
            .copied()
            .filter(|t| self.conns.get(t).is_some_and(|c| c.name().is_some()))
    }

    fn command(&mut self, token: u64, line: &str) {
        let cmd = match Command::parse(line) {
            Ok(Some(cmd)) if !cmd.operator_only() => cmd,
            Ok(None) => return,
            Ok(Some(cmd)) => {
                let verb = cmd.verb();
                return self.send(
                    token,
                    &format!("Unknown command '{verb}'. Type 'help' for the commands."),
                );
            }
            Err(why) => return self.send(token, &why),
        };
        let Some((name, room)) = self
            .conns
            .get(&token)
            .and_then(|c| Some((c.name()?.to_string(), c.room)))
        else {
            return;
        };
        if cmd.speaks() {
            let now = Instant::now();
            let ok = self
                .conns
                .get_mut(&token)
                .is_some_and(|c| c.flood.take(now));
            if !ok {
                self.counters.flood_refused += 1;
                return self.send(
                    token,
                    "You are talking too fast; that was not sent. (A few lines at once, then two a second.)",
                );
            }
        }
        let key = name.to_ascii_lowercase();
        match cmd {
            Command::Say(text) => {
                self.send_styled(token, &format!("You say: {text}"), Style::Say);
                let line = format!("{name} says: {text}");
                self.broadcast_from(Some(room), Some(token), Some(&key), &line, Style::Say);
                self.remember(room, line);
                self.spoke(
                    &name,
                    format!("[{}] {name} says: {text}", self.rooms.get(room).id),
                );
            }
            Command::Emote(text) => {
                let line = format!("{name} {text}");
                self.broadcast_from(Some(room), None, Some(&key), &line, Style::Say);
                self.remember(room, line);
                self.spoke(
                    &name,
                    format!("[{}] {name} {text}", self.rooms.get(room).id),
                );
            }
            Command::Shout(text) => {
                self.send_styled(token, &format!("You shout: {text}"), Style::Shout);
                let line = format!("{name} shouts: {text}");
                self.broadcast_from(None, Some(token), Some(&key), &line, Style::Shout);
                self.spoke(&name, format!("[*] {name} shouts: {text}"));
            }
            Command::Tell(to, text) => match self.online(&to) {
                Some(target) => {
                    let to_name = self.conns[&target].name().unwrap_or(&to).to_string();
                    let ignored = self.conns[&target].ignoring.contains(&key);
                    if !ignored {
                        self.send_styled(target, &format!("{name} tells you: {text}"), Style::Tell);
                    }
                    self.send_styled(token, &format!("You tell {to_name}: {text}"), Style::Tell);
                    self.spoke(&name, format!("[tell] {name} -> {to_name}: {text}"));
                }
                None => self.send(token, &format!("No one called {to} is here.")),
            },
            Command::Who => {
                let text = self.who_text();
                self.send(token, &text);
            }
            Command::Look => self.look(token),
            Command::Go(to) => self.go(token, &name, room, &to),
            Command::Help => self.send(token, HELP),
            Command::Quit => self.begin_close(token, Some(&format!("Goodbye, {name}!")), "quit"),
            Command::Ignore(who) => self.ignore(token, &key, who),
            Command::Review => {
                let lines: Vec<String> = self.history[room].iter().cloned().collect();
                let text = if lines.is_empty() {
                    "Nothing has been said here lately.".to_string()
                } else {
                    format!(
                        "Lately in {}:\n{}",
                        self.rooms.get(room).name,
                        lines.join("\n")
                    )
                };
                self.send(token, &text);
            }
            Command::Last => {
                let text = self.last_text();
                self.send(token, &text);
            }
            Command::Colour(on) => {
                let on = on.unwrap_or_else(|| !self.conns.get(&token).is_some_and(|c| c.colour));
                if let Some(c) = self.conns.get_mut(&token) {
                    c.colour = on;
                }
                if let Some(u) = self.saved.users.get_mut(&key) {
                    u.colour = on;
                }
                self.send_styled(
                    token,
                    if on {
                        "Colour is on."
                    } else {
                        "Colour is off."
                    },
                    Style::System,
                );
            }
            // Operator commands were turned away above.
            Command::Kick(_)
            | Command::Wall(_)
            | Command::Stats
            | Command::Save
            | Command::Shutdown => {}
        }
    }

    /// A line said in `room`, for `review`.
    fn remember(&mut self, room: usize, line: String) {
        let h = &mut self.history[room];
        if h.len() == HISTORY {
            h.pop_front();
        }
        h.push_back(line);
    }

    fn ignore(&mut self, token: u64, me: &str, who: Option<String>) {
        let Some(who) = who else {
            let list: Vec<String> = self
                .conns
                .get(&token)
                .map(|c| {
                    let mut v: Vec<String> = c.ignoring.iter().cloned().collect();
                    v.sort();
                    v
                })
                .unwrap_or_default();
            let text = if list.is_empty() {
                "You are ignoring no one.".to_string()
            } else {
                format!("You are ignoring: {}.", list.join(", "))
            };
            return self.send(token, &text);
        };
        let other = who.to_ascii_lowercase();
        if other == me {
            return self.send(token, "You cannot ignore yourself.");
        }
        if !self.saved.users.contains_key(&other) {
            return self.send(token, &format!("No one is called {who}."));
        }
        let Some(c) = self.conns.get_mut(&token) else {
            return;
        };
        let now_ignoring = if c.ignoring.remove(&other) {
            false
        } else {
            c.ignoring.insert(other.clone());
            true
        };
        let mut list: Vec<String> = c.ignoring.iter().cloned().collect();
        list.sort();
        if let Some(u) = self.saved.users.get_mut(me) {
            u.ignoring = list;
        }
        let text = if now_ignoring {
            format!("You are now ignoring {who}.")
        } else {
            format!("You hear {who} again.")
        };
        self.send(token, &text);
    }

    /// The users seen most recently (from the saved last-seen times).
    pub(crate) fn last_text(&self) -> String {
        let now = unix_now();
        let mut users: Vec<(&str, u64, bool)> = self
            .saved
            .users
            .values()
            .map(|u| (u.name.as_str(), u.last_seen, self.online(&u.name).is_some()))
            .collect();
        users.sort_by(|a, b| b.2.cmp(&a.2).then(b.1.cmp(&a.1)));
        let mut out = String::from("Lately:");
        for (name, seen, on) in users.into_iter().take(10) {
            let when = if on {
                "on now".to_string()
            } else {
                format!(
                    "{} ago",
                    fmt_duration(std::time::Duration::from_secs(now.saturating_sub(seen)))
                )
            };
            out.push_str(&format!("\n  {name:<16} {when}"));
        }
        out
    }

    fn spoke(&mut self, name: &str, log_line: String) {
        if let Some(u) = self.saved.users.get_mut(&name.to_ascii_lowercase()) {
            u.messages += 1;
        }
        self.chat(log_line);
    }

    pub(crate) fn look(&mut self, token: u64) {
        let Some(c) = self.conns.get(&token) else {
            return;
        };
        let room = self.rooms.get(c.room);
        let mut others: Vec<&str> = self.members[c.room]
            .iter()
            .filter(|&&t| t != token)
            .filter_map(|t| self.conns.get(t)?.name())
            .collect();
        others.sort_unstable();
        let here = if others.is_empty() {
            "You are alone here.".to_string()
        } else {
            format!("Here: {}.", others.join(", "))
        };
        let text = format!(
            "{}\n{}\nExits: {}.\n{here}",
            room.name,
            room.description,
            room.exits.join(", ")
        );
        self.send(token, &text);
    }

    fn go(&mut self, token: u64, name: &str, from: usize, where_: &str) {
        if where_.is_empty() {
            return self.send(token, "Go where? Type 'look' to see the exits.");
        }
        let to = match self.rooms.exit(from, where_) {
            Ok(to) => to,
            Err(why) => return self.send(token, &why),
        };
        let to_name = self.rooms.get(to).name.clone();
        self.broadcast(
            Some(from),
            Some(token),
            &format!("{name} leaves for {to_name}."),
        );
        if let Some(c) = self.conns.get_mut(&token) {
            c.room = to;
            self.members[from].remove(&token);
            self.members[to].insert(token);
        }
        self.broadcast(Some(to), Some(token), &format!("{name} arrives."));
        self.look(token);
    }

    /// The `who` list, one line per user.
    pub(crate) fn who_text(&self) -> String {
        let now = Instant::now();
        let mut rows: Vec<(String, String, String, String)> = self
            .conns
            .values()
            .filter_map(|c| {
                let name = c.name()?;
                Some((
                    name.to_string(),
                    self.rooms.get(c.room).id.clone(),
                    fmt_duration(now.duration_since(c.last_input)),
                    c.from(),
                ))
            })
            .collect();
        rows.sort();
        let mut out = format!("{} user(s) on:", rows.len());
        for (name, room, idle, from) in rows {
            out.push_str(&format!(
                "\n  {name:<16} {room:<10} idle {idle:<7} from {from}"
            ));
        }
        out
    }
}
