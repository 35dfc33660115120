//! Rooms (loaded from a small text file) and the rules for names.

use std::collections::HashMap;
use std::fmt;

/// The rooms shipped with the talker (`data/rooms.txt`).
pub const DEFAULT_ROOMS: &str = include_str!("../data/rooms.txt");

/// One room.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Room {
    /// Short id, used by `go`.
    pub id: String,
    /// Display name.
    pub name: String,
    /// Description shown by `look`.
    pub description: String,
    /// Ids of the rooms one can go to from here.
    pub exits: Vec<String>,
}

/// Every room; the first is where newcomers start.
#[derive(Clone, Debug)]
pub struct Rooms {
    rooms: Vec<Room>,
    by_id: HashMap<String, usize>,
}

/// A rooms file that cannot be used, with the line at fault.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct RoomsError {
    /// 1-based line number (0: the file as a whole).
    pub line: usize,
    /// What is wrong.
    pub message: String,
}

impl fmt::Display for RoomsError {
    fn fmt(&self, f: &mut fmt::Formatter<'_>) -> fmt::Result {
        write!(f, "line {}: {}", self.line, self.message)
    }
}

impl std::error::Error for RoomsError {}

impl Rooms {
    /// Parses a rooms file (format in `data/rooms.txt`).
    ///
    /// # Errors
    ///
    /// A line outside a room, a duplicate or malformed id, an exit to a
    /// room that does not exist, or no rooms at all.
    pub fn parse(text: &str) -> Result<Rooms, RoomsError> {
        let err = |line, message: String| RoomsError { line, message };
        let mut rooms: Vec<Room> = Vec::new();
        // (room index, line) of each `exits:` line, for error messages.
        let mut exit_lines: Vec<(usize, usize)> = Vec::new();
        for (n, raw) in text.lines().enumerate() {
            let n = n + 1;
            let line = raw.trim();
            if line.is_empty() || line.starts_with('#') {
                continue;
            }
            if let Some(rest) = line.strip_prefix('[') {
                let (id, name) = rest
                    .split_once(']')
                    .ok_or_else(|| err(n, "missing ']'".into()))?;
                let id = id.trim().to_ascii_lowercase();
                if id.is_empty() || !id.chars().all(|c| c.is_ascii_alphanumeric() || c == '-') {
                    return Err(err(n, format!("bad room id {id:?}")));
                }
                if rooms.iter().any(|r| r.id == id) {
                    return Err(err(n, format!("duplicate room {id:?}")));
                }
                let name = name.trim();
                rooms.push(Room {
                    name: if name.is_empty() {
                        id.clone()
                    } else {
                        name.to_string()
                    },
                    id,
                    description: String::new(),
                    exits: Vec::new(),
                });
                continue;
            }
            let room = rooms
                .last_mut()
                .ok_or_else(|| err(n, "text before the first [room]".into()))?;
            if let Some(exits) = line.strip_prefix("exits:") {
                room.exits = exits
                    .split_whitespace()
                    .map(str::to_ascii_lowercase)
                    .collect();
                exit_lines.push((rooms.len() - 1, n));
            } else {
                if !room.description.is_empty() {
                    room.description.push(' ');
                }
                room.description.push_str(line);
            }
        }
        if rooms.is_empty() {
            return Err(err(0, "no rooms".into()));
        }
        let by_id: HashMap<String, usize> = rooms
            .iter()
            .enumerate()
            .map(|(i, r)| (r.id.clone(), i))
            .collect();
        for (index, line) in exit_lines {
            let room = &rooms[index];
            for exit in &room.exits {
                if !by_id.contains_key(exit) {
                    return Err(err(
                        line,
                        format!("room {:?} has an exit to unknown room {exit:?}", room.id),
                    ));
                }
            }
        }
        Ok(Rooms { rooms, by_id })
    }

    /// The room newcomers start in.
    pub fn start(&self) -> usize {
        0
    }

    /// Room by index.
    pub fn get(&self, index: usize) -> &Room {
        &self.rooms[index]
    }

    /// Index of the room with this id.
    pub fn find(&self, id: &str) -> Option<usize> {
        self.by_id.get(&id.to_ascii_lowercase()).copied()
    }

    /// All rooms.
    pub fn iter(&self) -> impl Iterator<Item = &Room> {
        self.rooms.iter()
    }

    /// Where `go WHERE` leads from room `from`: an exit named exactly, or
    /// the one exit `where_` is a prefix of.
    pub fn exit(&self, from: usize, where_: &str) -> Result<usize, String> {
        let want = where_.trim().to_ascii_lowercase();
        let exits = &self.rooms[from].exits;
        if let Some(e) = exits.iter().find(|e| **e == want) {
            return Ok(self.by_id[e]);
        }
        let matches: Vec<&String> = exits.iter().filter(|e| e.starts_with(&want)).collect();
        match matches[..] {
            [one] if !want.is_empty() => Ok(self.by_id[one]),
            [] | [_] => Err(format!("There is no exit '{where_}' here.")),
            _ => Err(format!("'{where_}' could be any of: {}.", join(&matches))),
        }
    }
}

fn join(items: &[&String]) -> String {
    items
        .iter()
        .map(|s| s.as_str())
        .collect::<Vec<_>>()
        .join(", ")
}

/// Longest name.
pub const MAX_NAME: usize = 16;

/// Checks a login name: 2 to 16 characters, a letter first, then letters,
/// digits, `-` or `_`; not a reserved word.
///
/// # Errors
///
/// Why the name cannot be used, as a sentence for the user.
pub fn validate_name(name: &str) -> Result<(), String> {
    let len = name.chars().count();
    if !(2..=MAX_NAME).contains(&len) {
        return Err(format!("A name has 2 to {MAX_NAME} characters."));
    }
    let mut chars = name.chars();
    if !chars.next().is_some_and(|c| c.is_ascii_alphabetic()) {
        return Err("A name starts with a letter.".into());
    }
    if !chars.all(|c| c.is_ascii_alphanumeric() || c == '-' || c == '_') {
        return Err("A name has only letters, digits, '-' and '_'.".into());
    }
    const RESERVED: [&str; 6] = ["system", "you", "all", "everyone", "admin", "operator"];
    if RESERVED.contains(&name.to_ascii_lowercase().as_str()) {
        return Err(format!("'{name}' is reserved; choose another."));
    }
    Ok(())
}

#[cfg(test)]
mod tests {
    use super::*;

    #[test]
    fn shipped_rooms_load() {
        let rooms = Rooms::parse(DEFAULT_ROOMS).unwrap();
        assert_eq!(rooms.get(rooms.start()).id, "lobby");
        let lobby = rooms.find("LOBBY").unwrap();
        assert_eq!(rooms.exit(lobby, "gar"), Ok(rooms.find("garden").unwrap()));
        assert!(rooms.exit(lobby, "nowhere").is_err());
        assert!(rooms.exit(lobby, "").is_err());
    }

    #[test]
    fn bad_files_are_refused_with_a_line() {
        assert_eq!(Rooms::parse("hello").unwrap_err().line, 1);
        assert_eq!(Rooms::parse("[a] A\nexits: b").unwrap_err().line, 2);
        assert!(Rooms::parse("[a] A\n[a] again").is_err());
        assert!(Rooms::parse("# nothing").is_err());
        assert!(Rooms::parse("[a b] x").is_err());
    }

    #[test]
    fn names() {
        assert!(validate_name("Alice").is_ok());
        assert!(validate_name("bob_2").is_ok());
        for bad in [
            "",
            "a",
            "1abc",
            "al ice",
            "System",
            "averyveryverylongname",
            "zoë",
        ] {
            assert!(validate_name(bad).is_err(), "{bad}");
        }
    }
}
