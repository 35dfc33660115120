//! Every command, parsed once: a line a user types, a line of the
//! operator's console, or an MCP tool call all become a [`Command`], which
//! the server applies for a user ([`Server::command`](crate::server::Server))
//! or for the operator ([`Server::operator`](crate::server::Server)).

/// One command.
#[derive(Clone, Debug, PartialEq, Eq)]
pub enum Command {
    /// `say TEXT` or `'TEXT`: to the room (the operator: to everyone).
    Say(String),
    /// `emote TEXT` or `:TEXT`.
    Emote(String),
    /// `shout TEXT`: to every room.
    Shout(String),
    /// `tell NAME TEXT`.
    Tell(String, String),
    /// `who`.
    Who,
    /// `look` or `l`.
    Look,
    /// `go ROOM`.
    Go(String),
    /// `help` or `?`.
    Help,
    /// `quit`.
    Quit,
    /// `ignore [NAME]`: toggle ignoring NAME, or list.
    Ignore(Option<String>),
    /// `review`: the room's last lines.
    Review,
    /// `last`: who was on lately.
    Last,
    /// `colour [on|off]` (or `color`).
    Colour(Option<bool>),
    /// `kick NAME` (operator).
    Kick(String),
    /// `wall TEXT` (operator): from the system to everyone.
    Wall(String),
    /// `stats` (operator).
    Stats,
    /// `save` (operator).
    Save,
    /// `shutdown` (operator).
    Shutdown,
}

impl Command {
    /// Parses a line; `Ok(None)` for an empty one.
    ///
    /// # Errors
    ///
    /// What to tell whoever typed it: an unknown verb, or the usage of a
    /// known one given too little.
    pub fn parse(line: &str) -> Result<Option<Command>, String> {
        let line = line.trim();
        if line.is_empty() {
            return Ok(None);
        }
        let (verb, rest) = if let Some(rest) = line.strip_prefix('\'') {
            ("say".to_string(), rest.trim())
        } else if let Some(rest) = line.strip_prefix(':') {
            ("emote".to_string(), rest.trim())
        } else {
            let (verb, rest) = line.split_once(' ').unwrap_or((line, ""));
            (verb.to_ascii_lowercase(), rest.trim())
        };
        let text = |what: &str| {
            if rest.is_empty() {
                Err(format!("{what} what?"))
            } else {
                Ok(rest.to_string())
            }
        };
        let cmd = match verb.as_str() {
            "say" => Command::Say(text("say")?),
            "emote" => Command::Emote(text("emote")?),
            "shout" => Command::Shout(text("shout")?),
            "wall" => Command::Wall(text("wall")?),
            "tell" => {
                let (to, msg) = rest.split_once(' ').unwrap_or((rest, ""));
                if to.is_empty() || msg.trim().is_empty() {
                    return Err("Usage: tell NAME TEXT".to_string());
                }
                Command::Tell(to.to_string(), msg.trim().to_string())
            }
            "who" => Command::Who,
            "look" | "l" => Command::Look,
            "go" => {
                if rest.is_empty() {
                    return Err("Go where? Type 'look' to see the exits.".to_string());
                }
                Command::Go(rest.to_string())
            }
            "help" | "?" => Command::Help,
            "quit" => Command::Quit,
            "ignore" => Command::Ignore((!rest.is_empty()).then(|| rest.to_string())),
            "review" => Command::Review,
            "last" => Command::Last,
            "colour" | "color" => match rest.to_ascii_lowercase().as_str() {
                "" => Command::Colour(None),
                "on" => Command::Colour(Some(true)),
                "off" => Command::Colour(Some(false)),
                _ => return Err("Usage: colour on|off".to_string()),
            },
            "kick" => {
                if rest.is_empty() {
                    return Err("Usage: kick NAME".to_string());
                }
                Command::Kick(rest.to_string())
            }
            "stats" => Command::Stats,
            "save" => Command::Save,
            "shutdown" => Command::Shutdown,
            _ => {
                return Err(format!(
                    "Unknown command '{verb}'. Type 'help' for the commands."
                ))
            }
        };
        Ok(Some(cmd))
    }

    /// Whether only the operator may give it.
    pub fn operator_only(&self) -> bool {
        matches!(
            self,
            Command::Kick(_)
                | Command::Wall(_)
                | Command::Stats
                | Command::Save
                | Command::Shutdown
        )
    }

    /// Whether it sends words to others (flood control applies).
    pub fn speaks(&self) -> bool {
        matches!(
            self,
            Command::Say(_) | Command::Emote(_) | Command::Shout(_) | Command::Tell(..)
        )
    }

    /// The verb, for messages.
    pub fn verb(&self) -> &'static str {
        match self {
            Command::Say(_) => "say",
            Command::Emote(_) => "emote",
            Command::Shout(_) => "shout",
            Command::Tell(..) => "tell",
            Command::Who => "who",
            Command::Look => "look",
            Command::Go(_) => "go",
            Command::Help => "help",
            Command::Quit => "quit",
            Command::Ignore(_) => "ignore",
            Command::Review => "review",
            Command::Last => "last",
            Command::Colour(_) => "colour",
            Command::Kick(_) => "kick",
            Command::Wall(_) => "wall",
            Command::Stats => "stats",
            Command::Save => "save",
            Command::Shutdown => "shutdown",
        }
    }
}

#[cfg(test)]
mod tests {
    use super::*;

    fn p(line: &str) -> Result<Option<Command>, String> {
        Command::parse(line)
    }

    #[test]
    fn verbs_and_shortcuts() {
        assert_eq!(p("  "), Ok(None));
        assert_eq!(p("'hi there"), Ok(Some(Command::Say("hi there".into()))));
        assert_eq!(p(":waves"), Ok(Some(Command::Emote("waves".into()))));
        assert_eq!(p("SAY x"), Ok(Some(Command::Say("x".into()))));
        assert_eq!(
            p("tell bob  a secret "),
            Ok(Some(Command::Tell("bob".into(), "a secret".into())))
        );
        assert_eq!(p("colour on"), Ok(Some(Command::Colour(Some(true)))));
        assert_eq!(p("ignore"), Ok(Some(Command::Ignore(None))));
        assert_eq!(p("kick bob"), Ok(Some(Command::Kick("bob".into()))));
    }

    #[test]
    fn errors_say_what_is_missing() {
        assert_eq!(p("say"), Err("say what?".into()));
        assert_eq!(p("tell bob"), Err("Usage: tell NAME TEXT".into()));
        assert_eq!(p("colour pink"), Err("Usage: colour on|off".into()));
        assert!(p("frobnicate")
            .unwrap_err()
            .contains("Unknown command 'frobnicate'"));
    }

    #[test]
    fn who_may_give_what() {
        assert!(p("kick x").unwrap().unwrap().operator_only());
        assert!(!p("say x").unwrap().unwrap().operator_only());
        assert!(p("tell a b").unwrap().unwrap().speaks());
        assert!(!p("who").unwrap().unwrap().speaks());
    }
}
