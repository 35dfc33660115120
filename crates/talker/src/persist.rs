//! The talker's saved state and how it is written: on a worker thread, to
//! a temporary file that is synced and then renamed over the old one, so a
//! failed save never loses the previous file. Progress of a large save
//! goes back to the loop through a [`Queue`].

use std::collections::BTreeMap;
use std::fs::{self, File};
use std::io::{self, Write};
use std::path::{Path, PathBuf};
use std::time::{Duration, Instant};

use serde::{Deserialize, Serialize};
use uniloop::Queue;

/// The state file's name inside `--data-dir`.
pub const STATE_FILE: &str = "state.json";

/// What is remembered across restarts.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct Saved {
    /// Everyone who ever logged in, by lower-case name.
    pub users: BTreeMap<String, UserRecord>,
    /// Logins since the state was first made.
    pub total_logins: u64,
    /// Messages (say, emote, tell, shout) since then.
    pub total_messages: u64,
}

/// One user.
#[derive(Clone, Debug, Default, PartialEq, Eq, Serialize, Deserialize)]
pub struct UserRecord {
    /// The name as they typed it.
    pub name: String,
    /// How many times they logged in.
    pub logins: u64,
    /// Messages they sent.
    pub messages: u64,
    /// When they were last seen (seconds since the Unix epoch).
    pub last_seen: u64,
    /// The room they were last in.
    pub room: String,
    /// The password's Argon2id hash (PHC string); `None` in state files
    /// from before accounts had passwords: set at the next login.
    #[serde(default, skip_serializing_if = "Option::is_none")]
    pub password: Option<String>,
    /// Lower-case names they ignore.
    #[serde(default, skip_serializing_if = "Vec::is_empty")]
    pub ignoring: Vec<String>,
    /// Whether they turned ANSI colour on.
    #[serde(default, skip_serializing_if = "is_false")]
    pub colour: bool,
}

fn is_false(b: &bool) -> bool {
    !*b
}

/// A save's progress: bytes written of the total.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub struct Progress {
    /// Written so far.
    pub written: usize,
    /// All of it.
    pub total: usize,
}

/// A finished save.
#[derive(Clone, Debug, PartialEq, Eq)]
pub struct Report {
    /// Where it went.
    pub path: PathBuf,
    /// Its size.
    pub bytes: usize,
    /// How long it took.
    pub took: Duration,
}

/// Bytes per write (and per progress report).
pub const CHUNK: usize = 64 * 1024;

/// Path of the state file in `dir`.
pub fn state_path(dir: &Path) -> PathBuf {
    dir.join(STATE_FILE)
}

/// Reads the saved state from `dir`: `Ok(None)` if there is none yet.
///
/// # Errors
///
/// The file exists but cannot be read or parsed.
pub fn load(dir: &Path) -> Result<Option<Saved>, String> {
    let path = state_path(dir);
    match fs::read(&path) {
        Ok(bytes) => serde_json::from_slice(&bytes)
            .map(Some)
            .map_err(|e| format!("{}: {e}", path.display())),
        Err(e) if e.kind() == io::ErrorKind::NotFound => Ok(None),
        Err(e) => Err(format!("{}: {e}", path.display())),
    }
}

/// Writes `state` to `dir` (made if missing): temp file, fsync, rename,
/// fsync of the directory. Blocking: run it on a worker. Pushes a
/// [`Progress`] per chunk into `progress` (never waits for the reader: the
/// queue drops the oldest report when full).
///
/// # Errors
///
/// What went wrong, as a sentence; the previous state file is untouched.
pub fn save(
    dir: &Path,
    state: &Saved,
    progress: Option<&Queue<Progress>>,
) -> Result<Report, String> {
    let started = Instant::now();
    let bytes = serde_json::to_vec_pretty(state).map_err(|e| format!("encoding: {e}"))?;
    let path = state_path(dir);
    let tmp = dir.join(format!("{STATE_FILE}.tmp"));
    let fail = |what: &str, p: &Path, e: io::Error| format!("{what} {}: {e}", p.display());
    fs::create_dir_all(dir).map_err(|e| fail("creating", dir, e))?;
    let result = (|| {
        let mut file = File::create(&tmp).map_err(|e| fail("creating", &tmp, e))?;
        let mut written = 0;
        for chunk in bytes.chunks(CHUNK) {
            file.write_all(chunk)
                .map_err(|e| fail("writing", &tmp, e))?;
            written += chunk.len();
            if let Some(q) = progress {
                let _ = q.push(Progress {
                    written,
                    total: bytes.len(),
                });
            }
        }
        file.sync_all().map_err(|e| fail("syncing", &tmp, e))?;
        drop(file);
        fs::rename(&tmp, &path).map_err(|e| fail("renaming to", &path, e))?;
        // The rename itself is durable once the directory is synced.
        crate::sys::sync_dir(dir);
        Ok(())
    })();
    if result.is_err() {
        let _ = fs::remove_file(&tmp);
    }
    result.map(|()| Report {
        path,
        bytes: bytes.len(),
        took: started.elapsed(),
    })
}

#[cfg(test)]
mod tests {
    use super::*;
    use uniloop::Overflow;

    fn temp_dir(name: &str) -> PathBuf {
        let dir =
            std::env::temp_dir().join(format!("talker-persist-{name}-{}", std::process::id()));
        let _ = fs::remove_dir_all(&dir);
        dir
    }

    fn sample(users: usize) -> Saved {
        let mut s = Saved {
            total_logins: 3,
            total_messages: 9,
            ..Saved::default()
        };
        for i in 0..users {
            s.users.insert(
                format!("user{i}"),
                UserRecord {
                    name: format!("User{i}"),
                    logins: 1,
                    ..UserRecord::default()
                },
            );
        }
        s
    }

    #[test]
    fn save_then_load_round_trips_with_progress() {
        let dir = temp_dir("round");
        assert_eq!(load(&dir), Ok(None));
        let q = Queue::bounded(64, Overflow::DropOldest);
        let state = sample(2000); // several chunks
        let report = save(&dir, &state, Some(&q)).unwrap();
        assert!(report.bytes > CHUNK);
        let mut last = None;
        while let Some(p) = q.try_pop() {
            last = Some(p);
        }
        assert_eq!(
            last,
            Some(Progress {
                written: report.bytes,
                total: report.bytes
            })
        );
        assert_eq!(load(&dir), Ok(Some(state)));
        assert!(!dir.join("state.json.tmp").exists());
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_failed_save_keeps_the_previous_file() {
        let dir = temp_dir("fail");
        let first = sample(1);
        save(&dir, &first, None).unwrap();
        // A directory where the temp file must go makes the save fail.
        fs::create_dir(dir.join("state.json.tmp")).unwrap();
        let err = save(&dir, &sample(5), None).unwrap_err();
        assert!(err.contains("state.json.tmp"), "{err}");
        assert_eq!(load(&dir), Ok(Some(first)));
        fs::remove_dir_all(&dir).unwrap();
    }

    #[test]
    fn a_corrupt_file_is_an_error_not_a_panic() {
        let dir = temp_dir("corrupt");
        fs::create_dir_all(&dir).unwrap();
        fs::write(dir.join(STATE_FILE), b"{not json").unwrap();
        assert!(load(&dir).is_err());
        fs::remove_dir_all(&dir).unwrap();
    }
}
