//! Saving, from the loop's side: a snapshot of the state goes to the saver
//! pool (one thread, so saves never overlap), progress comes back through
//! a queue, the result as a completion; a save asked for while one runs
//! is done right after it. The writing itself is in [`persist`].

use uniloop::{JobId, WorkerPool};

use crate::persist::{self, Saved};
use crate::server::{log, unix_now, Server};

/// Who asked for a save, so the answer goes to them.
#[derive(Clone, Copy, Debug, PartialEq, Eq)]
pub(crate) enum SaveBy {
    /// The autosave timer.
    Timer,
    /// The console or MCP: the outcome is reported back.
    Operator,
}

impl Server {
    /// The state as it would be saved now (online users' rooms included).
    pub(crate) fn snapshot(&self) -> Saved {
        let mut s = self.saved.clone();
        for c in self.conns.values() {
            if let Some(name) = c.name() {
                if let Some(u) = s.users.get_mut(&name.to_ascii_lowercase()) {
                    u.last_seen = unix_now();
                    u.room = self.rooms.get(c.room).id.clone();
                }
            }
        }
        s.total_messages = self.saved.total_messages;
        s
    }

    pub(crate) fn request_save(&mut self, by: SaveBy) {
        if self.save_job.is_some() {
            self.save_again = true;
            return;
        }
        let Some(pool) = &self.saver else { return };
        let snapshot = self.snapshot();
        let dir = self.cfg.data_dir.clone();
        let progress = self.save_progress.clone();
        match pool.submit(move || persist::save(&dir, &snapshot, Some(&progress))) {
            Ok(id) => self.save_job = Some((id, by)),
            Err(_) => log("save: the saver is busy; skipped"),
        }
    }

    pub(crate) fn on_saved(&mut self, id: JobId) {
        let result = self.saver.as_ref().and_then(|p| p.take_result(id));
        let by = match self.save_job {
            Some((job, by)) if job == id => by,
            _ => return,
        };
        self.save_job = None;
        let text = match result {
            Some(Ok(Ok(r))) => {
                self.counters.saves += 1;
                format!(
                    "saved {} bytes to {} in {} ms",
                    r.bytes,
                    r.path.display(),
                    r.took.as_millis()
                )
            }
            Some(Ok(Err(e))) => {
                self.counters.save_failures += 1;
                format!("SAVE FAILED: {e} (the previous file is kept)")
            }
            Some(Err(panic)) => {
                self.counters.save_failures += 1;
                format!("SAVE FAILED: the saver panicked: {}", panic.0)
            }
            None => return,
        };
        // Said once: to the operator who asked, or to the log.
        if by == SaveBy::Operator {
            self.operator_says(&text);
        } else {
            log(&text);
        }
        if std::mem::take(&mut self.save_again) {
            self.request_save(SaveBy::Timer);
        }
    }

    /// A save the operator asked for: its outcome is reported back.
    pub(crate) fn request_operator_save(&mut self) {
        self.request_save(SaveBy::Operator);
    }

    /// (resolver, saver) pool statistics for `stats`.
    pub(crate) fn pool_stats(&self) -> (serde_json::Value, serde_json::Value) {
        fn one<R: Send + 'static>(p: Option<&WorkerPool<R>>) -> serde_json::Value {
            match p {
                Some(p) => {
                    serde_json::json!({
                        "threads": p.threads(), "queued": p.queued(), "running": p.running(),
                        "completed": p.completed(), "untaken": p.untaken(),
                    })
                }
                None => serde_json::Value::Null,
            }
        }
        (one(self.resolver.as_ref()), one(self.saver.as_ref()))
    }
}
