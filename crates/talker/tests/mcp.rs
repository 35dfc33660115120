//! `talker --mcp`: JSON-RPC 2.0 over the process's stdin and stdout.

mod util;

use serde_json::{json, Value};
use util::{Talker, DEADLINE};

/// Sends one request and waits for the response with its id (logging
/// notifications that come in between are collected).
struct Rpc {
    t: Talker,
    next_id: u64,
    notes: Vec<Value>,
}

impl Rpc {
    fn start(name: &str) -> Rpc {
        Rpc {
            t: Talker::start(name, &["--mcp"]),
            next_id: 1,
            notes: Vec::new(),
        }
    }

    #[track_caller]
    fn line(&mut self, line: &str) {
        self.t.console(line);
    }

    #[track_caller]
    fn next(&mut self) -> Value {
        let line = self
            .t
            .stdout
            .recv_timeout(DEADLINE)
            .expect("a line from the talker in time");
        serde_json::from_str(&line).unwrap_or_else(|e| panic!("stdout is not JSON ({e}): {line}"))
    }

    #[track_caller]
    fn response(&mut self, id: &Value) -> Value {
        loop {
            let v = self.next();
            if v.get("id") == Some(id) {
                return v;
            }
            assert_eq!(v["method"], "notifications/message", "unexpected: {v}");
            self.notes.push(v);
        }
    }

    #[track_caller]
    fn call(&mut self, method: &str, params: Value) -> Value {
        let id = json!(self.next_id);
        self.next_id += 1;
        let req = json!({ "jsonrpc": "2.0", "id": id, "method": method, "params": params });
        self.line(&req.to_string());
        self.response(&id)
    }

    #[track_caller]
    fn tool(&mut self, name: &str, arguments: Value) -> Value {
        let r = self.call(
            "tools/call",
            json!({ "name": name, "arguments": arguments }),
        );
        r["result"].clone()
    }

    /// Waits for a log notification whose text contains `want`.
    #[track_caller]
    fn note(&mut self, want: &str) {
        if let Some(i) = self.notes.iter().position(|n| {
            n["params"]["data"]
                .as_str()
                .is_some_and(|d| d.contains(want))
        }) {
            self.notes.remove(i);
            return;
        }
        loop {
            let v = self.next();
            assert_eq!(v["method"], "notifications/message", "unexpected: {v}");
            if v["params"]["data"]
                .as_str()
                .is_some_and(|d| d.contains(want))
            {
                return;
            }
        }
    }
}

#[test]
fn mcp_over_pipes() {
    let mut rpc = Rpc::start("mcp");
    let init = rpc.call(
        "initialize",
        json!({ "protocolVersion": "2025-06-18", "capabilities": {}, "clientInfo": { "name": "test", "version": "0" } }),
    );
    assert_eq!(init["result"]["protocolVersion"], "2025-06-18");
    assert_eq!(init["result"]["serverInfo"]["name"], "talker");
    assert!(init["result"]["capabilities"]["tools"].is_object());
    rpc.line(r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#);
    assert_eq!(rpc.call("ping", json!({}))["result"], json!({}));

    let tools = rpc.call("tools/list", json!({}));
    let names: Vec<&str> = tools["result"]["tools"]
        .as_array()
        .unwrap()
        .iter()
        .map(|t| t["name"].as_str().unwrap())
        .collect();
    assert_eq!(names, ["who", "say", "tell", "kick", "stats"]);

    // A user logs in: the MCP client is told.
    let mut alice = rpc.t.login("Alice");
    rpc.note("Alice logged in");

    let who = rpc.tool("who", json!({}));
    assert_eq!(who["isError"], false);
    assert_eq!(who["structuredContent"]["users"][0]["name"], "Alice");

    let said = rpc.tool("say", json!({ "message": "hello from the system" }));
    assert_eq!(said["isError"], false);
    alice.expect("[SYSTEM] hello from the system");

    rpc.tool("tell", json!({ "name": "alice", "message": "just you" }));
    alice.expect("[SYSTEM] tells you: just you");
    // Control characters never reach a user: no screen clearing, no bell,
    // no line that looks as if someone else said it.
    rpc.tool(
        "say",
        json!({ "message": "\u{1b}[2J\u{7}ding\r\nBob says: fake" }),
    );
    let (_, line) = alice.expect("ding");
    assert_eq!(line, "[SYSTEM] [2JdingBob says: fake");
    rpc.tool("tell", json!({ "name": "alice", "message": "a\nb\u{1b}c" }));
    let (_, line) = alice.expect("tells you: a");
    assert_eq!(line, "[SYSTEM] tells you: abc");
    assert!(!alice.raw.contains(&0x1b) && !alice.raw.contains(&7));
    let nobody = rpc.tool("tell", json!({ "name": "nobody", "message": "x" }));
    assert_eq!(nobody["isError"], true);
    let missing = rpc.call(
        "tools/call",
        json!({ "name": "tell", "arguments": { "name": "alice" } }),
    );
    assert_eq!(missing["error"]["code"], -32602);

    let stats = rpc.tool("stats", json!({}));
    assert_eq!(stats["structuredContent"]["connections"]["playing"], 1);
    assert!(
        stats["structuredContent"]["loop_iterations"]
            .as_u64()
            .unwrap()
            > 0
    );

    alice.send("say for the log");
    alice.expect("You say: for the log");
    let resources = rpc.call("resources/list", json!({}));
    let uris: Vec<&str> = resources["result"]["resources"]
        .as_array()
        .unwrap()
        .iter()
        .map(|r| r["uri"].as_str().unwrap())
        .collect();
    assert_eq!(uris, ["talker://rooms", "talker://chat-log"]);
    let rooms = rpc.call("resources/read", json!({ "uri": "talker://rooms" }));
    let text = rooms["result"]["contents"][0]["text"].as_str().unwrap();
    let rooms: Value = serde_json::from_str(text).unwrap();
    assert_eq!(rooms["rooms"][0]["id"], "lobby");
    assert_eq!(rooms["rooms"][0]["users"][0], "Alice");
    let chat = rpc.call("resources/read", json!({ "uri": "talker://chat-log" }));
    let log = chat["result"]["contents"][0]["text"].as_str().unwrap();
    assert!(
        log.contains("Alice says: for the log") && log.contains("SYSTEM: hello"),
        "{log}"
    );

    // Malformed lines and unknown methods get errors; the server goes on.
    rpc.line("{this is not json");
    let parse = rpc.next();
    assert_eq!(
        (parse["error"]["code"].as_i64(), &parse["id"]),
        (Some(-32700), &Value::Null)
    );
    rpc.line(r#"{"jsonrpc":"1.0","id":77,"method":"ping"}"#);
    assert_eq!(rpc.response(&json!(77))["error"]["code"], -32600);
    assert_eq!(
        rpc.call("no/such/method", json!({}))["error"]["code"],
        -32601
    );
    assert_eq!(rpc.call("ping", json!({}))["result"], json!({}));

    let kicked = rpc.tool("kick", json!({ "name": "Alice" }));
    assert_eq!(kicked["isError"], false);
    alice.expect("kicked out by the operator");
    alice.expect_eof();
    rpc.note("Alice logged out");

    // Closing stdin ends an MCP server: goodbye, save, exit 0.
    rpc.t.stdin.take();
    let status = rpc.t.wait_exit();
    assert!(status.success(), "{status:?}");
    assert!(rpc.t.data_dir.join("state.json").exists());
}

#[test]
fn an_mcp_client_that_never_reads_does_not_stall_the_talker() {
    let mut t = Talker::start_unread("mcp-unread", &["--mcp"]);
    assert!(t.unread_stdout.is_some());
    // Far more answers than the stdout pipe and the writer's queue hold.
    let ping = r#"{"jsonrpc":"2.0","id":1,"method":"ping"}"#;
    let burst = format!("{ping}\n").repeat(20_000);
    // Written by a thread: if the talker stalled, this write would block
    // (its stdin fills up) and the test must fail on its deadline, not hang.
    let mut stdin = t.stdin.take().unwrap();
    let writer = std::thread::spawn(move || {
        use std::io::Write;
        let _ = stdin.write_all(burst.as_bytes());
        let _ = stdin.flush();
        stdin // kept open: closing stdin would shut the MCP server down
    });
    // Telnet users are served all the same.
    let mut alice = t.login("Alice");
    let mut bob = t.login("Bob");
    alice.send("say still here");
    bob.expect("Alice says: still here");
    let _stdin = writer.join().unwrap();
}
