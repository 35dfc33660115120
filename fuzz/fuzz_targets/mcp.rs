//! The talker's MCP reader on arbitrary bytes: stdin framed into lines as
//! `uniloop::Console` frames it (a `LineSplitter` of `Console::MAX_LINE` in
//! `Split` mode, invalid UTF-8 replaced — the console's reader thread does
//! exactly this), cut into arbitrary reads, each line handed to
//! `talker::mcp::McpSession::handle` with a stand-in talker.
//!
//! Input layout: byte 0 seeds the cuts; the rest is what the MCP client
//! wrote. Checked: nothing panics; every line gets at most one reply, and
//! every reply and log notification is one line of JSON (no LF: it must
//! not break the framing) holding `"jsonrpc": "2.0"`; a reply has an `id`
//! and exactly one of `result` and `error`, an error a code of the
//! documented set; a request with a string or number `id` is answered
//! with that `id`; a line without an `id` that is valid JSON-RPC (a
//! notification) gets no reply; and the replies do not depend on how the
//! stream was cut into reads. Not covered here: the stdio plumbing itself
//! (`tests/mcp.rs` and `tests/mcp_sdk.rs` drive the real binary).
#![no_main]

use libfuzzer_sys::fuzz_target;
use serde_json::{json, Value};
use talker::mcp::{McpSession, Talker};
use uniloop::{Console, LineSplitter, LongLines};

/// Error codes `talker::mcp` documents.
const CODES: [i64; 5] = [-32700, -32600, -32601, -32602, -32002];

#[derive(Default)]
struct Fake {
    users: Vec<String>,
    said: usize,
}

impl Talker for Fake {
    fn who(&self) -> Value {
        json!({ "users": self.users })
    }
    fn say(&mut self, _text: &str) {
        self.said += 1;
    }
    fn tell(&mut self, name: &str, _text: &str) -> Result<(), String> {
        if self.users.iter().any(|u| u == name) {
            Ok(())
        } else {
            Err(format!("no one called {name} is on"))
        }
    }
    fn kick(&mut self, name: &str) -> Result<(), String> {
        let before = self.users.len();
        self.users.retain(|u| u != name);
        if self.users.len() < before {
            Ok(())
        } else {
            Err(format!("no one called {name} is on"))
        }
    }
    fn stats(&self) -> Value {
        json!({ "said": self.said })
    }
    fn rooms(&self) -> Value {
        json!({ "rooms": [{ "id": "lobby", "users": self.users }] })
    }
    fn chat_log(&self) -> Vec<String> {
        vec!["alice says: hi".into(), "line\nwith a LF".into()]
    }
}

fn one_json_line(s: &str) -> Value {
    assert!(
        !s.contains('\n') && !s.contains('\r'),
        "a reply breaks the framing: {s:?}"
    );
    let v: Value = serde_json::from_str(s).unwrap_or_else(|e| panic!("not JSON ({e}): {s}"));
    assert_eq!(v["jsonrpc"], "2.0", "{s}");
    v
}

fn check_reply(line: &str, reply: &str) {
    let v = one_json_line(reply);
    let obj = v.as_object().expect("a reply is an object");
    assert!(obj.contains_key("id"), "no id: {reply}");
    assert!(
        obj.contains_key("result") != obj.contains_key("error"),
        "result xor error: {reply}"
    );
    if let Some(e) = obj.get("error") {
        let code = e["code"].as_i64().expect("an error code");
        assert!(CODES.contains(&code), "undocumented code {code}: {reply}");
        assert!(e["message"].is_string(), "{reply}");
    }
    // What the request said, if it was a JSON object.
    let req: Option<Value> = serde_json::from_str(line.trim()).ok();
    if let Some(Value::Object(req)) = req {
        let id = req.get("id");
        let integer = |n: &serde_json::Number| n.is_i64() || n.is_u64();
        match id {
            Some(Value::String(_)) => {
                assert_eq!(obj.get("id"), id, "answered with another id: {line} -> {reply}")
            }
            Some(Value::Number(n)) if integer(n) => {
                assert_eq!(obj.get("id"), id, "answered with another id: {line} -> {reply}")
            }
            // A fractional or past-64-bit id is a bad id: answered with null.
            Some(Value::Number(_)) => {
                assert_eq!(obj.get("id"), Some(&Value::Null), "{line} -> {reply}")
            }
            _ => {}
        }
    }
}

/// Frames `reads` into lines, as the console does, and runs the session.
fn run(reads: &[&[u8]]) -> Vec<String> {
    let mut split = LineSplitter::new(Console::MAX_LINE).long_lines(LongLines::Split);
    let mut lines = Vec::new();
    for read in reads {
        split.push(read);
        while let Some(l) = split.next_line() {
            lines.push(String::from_utf8_lossy(l.bytes()).into_owned());
        }
    }
    while let Some(l) = split.finish() {
        lines.push(String::from_utf8_lossy(l.bytes()).into_owned());
    }

    let mut session = McpSession::new();
    let mut talker = Fake {
        users: vec!["alice".into(), "bob".into()],
        said: 0,
    };
    let mut out = Vec::new();
    for line in &lines {
        let replies = session.handle(line, &mut talker);
        assert!(replies.len() <= 1, "{line} -> {replies:?}");
        for r in &replies {
            check_reply(line, r);
        }
        if replies.is_empty() {
            // Unanswered: blank, a notification, or a response to us.
            if let Ok(Value::Object(req)) = serde_json::from_str::<Value>(line.trim()) {
                if req.get("jsonrpc") == Some(&json!("2.0"))
                    && req.get("method").is_some_and(Value::is_string)
                {
                    assert!(!req.contains_key("id"), "a request left unanswered: {line}");
                }
            }
        }
        out.extend(replies);
        for level in ["debug", "info", "notice", "error", "bogus"] {
            if let Some(n) = session.log_notification(level, "someone logged in\nor out") {
                let v = one_json_line(&n);
                assert_eq!(v["method"], "notifications/message");
                out.push(n);
            }
        }
    }
    out
}

fuzz_target!(|data: &[u8]| {
    let Some((&seed, stream)) = data.split_first() else {
        return;
    };
    let mut seed = u32::from(seed) | 1;
    let mut reads = Vec::new();
    let mut rest = stream;
    while !rest.is_empty() {
        seed ^= seed << 13;
        seed ^= seed >> 17;
        seed ^= seed << 5;
        let n = (seed as usize % 61 + 1).min(rest.len());
        reads.push(&rest[..n]);
        rest = &rest[n..];
    }
    let cut = run(&reads);
    let whole = run(&[stream]);
    assert_eq!(cut, whole, "the replies depend on the reads");
});
