//! The Model Context Protocol over stdio (revision 2025-06-18): JSON-RPC
//! 2.0, one message per line. Pure: [`McpSession::handle`] takes a line
//! and returns the lines to write; the talker is reached through the
//! [`Talker`] trait, so this module is tested without sockets.
//!
//! Errors are JSON-RPC errors: -32700 for a line that is not JSON, -32600
//! for JSON that is not a request, -32601 for an unknown method, -32602
//! for bad parameters (an unknown tool or a missing argument); -32002 for
//! an unknown resource, as the spec suggests. A failing tool is a result
//! with `isError: true`. No line, however malformed, stops the server.

use serde_json::{json, Map, Value};

/// The revision spoken unless the client asks for an older one we know.
pub const PROTOCOL_VERSION: &str = "2025-06-18";
const KNOWN_VERSIONS: [&str; 3] = ["2025-06-18", "2025-03-26", "2024-11-05"];

const PARSE_ERROR: i64 = -32700;
const INVALID_REQUEST: i64 = -32600;
const METHOD_NOT_FOUND: i64 = -32601;
const INVALID_PARAMS: i64 = -32602;
const RESOURCE_NOT_FOUND: i64 = -32002;

const ROOMS_URI: &str = "talker://rooms";
const CHAT_URI: &str = "talker://chat-log";

const LEVELS: [&str; 8] = [
    "debug",
    "info",
    "notice",
    "warning",
    "error",
    "critical",
    "alert",
    "emergency",
];

/// What MCP can do to the talker.
pub trait Talker {
    /// Who is on, as JSON.
    fn who(&self) -> Value;
    /// A message from the system to everyone.
    fn say(&mut self, text: &str);
    /// A private message from the system.
    ///
    /// # Errors
    ///
    /// No such user.
    fn tell(&mut self, name: &str, text: &str) -> Result<(), String>;
    /// Disconnects a user.
    ///
    /// # Errors
    ///
    /// No such user.
    fn kick(&mut self, name: &str) -> Result<(), String>;
    /// Statistics, as JSON.
    fn stats(&self) -> Value;
    /// The rooms, as JSON.
    fn rooms(&self) -> Value;
    /// Recent chat, oldest first.
    fn chat_log(&self) -> Vec<String>;
}

/// One MCP client's session.
#[derive(Debug, Default)]
pub struct McpSession {
    initialized: bool,
    /// Index into [`LEVELS`] of the least severe level sent.
    min_level: usize,
}

struct RpcError {
    code: i64,
    message: String,
}

fn rpc_err(code: i64, message: impl Into<String>) -> RpcError {
    RpcError {
        code,
        message: message.into(),
    }
}

impl McpSession {
    /// A session waiting for `initialize`.
    pub fn new() -> McpSession {
        McpSession {
            initialized: false,
            min_level: 1,
        }
    }

    /// Handles one line; returns the lines to write back (none for a
    /// notification or a blank line).
    pub fn handle(&mut self, line: &str, talker: &mut dyn Talker) -> Vec<String> {
        let line = line.trim();
        if line.is_empty() {
            return Vec::new();
        }
        let msg: Value = match serde_json::from_str(line) {
            Ok(v) => v,
            Err(e) => {
                return vec![error_line(
                    Value::Null,
                    rpc_err(PARSE_ERROR, format!("parse error: {e}")),
                )]
            }
        };
        let Value::Object(obj) = msg else {
            let why = if msg.is_array() {
                "batches are not supported"
            } else {
                "not a JSON-RPC object"
            };
            return vec![error_line(Value::Null, rpc_err(INVALID_REQUEST, why))];
        };
        let id = obj.get("id").cloned();
        // A string or an integer id (JSON-RPC: numbers should have no
        // fraction). A number past 64 bits would come back altered — JSON
        // parsers read it into a float — so it counts as a bad id (found
        // by fuzz/fuzz_targets/mcp.rs).
        let id_ok = match &id {
            Some(Value::String(_)) => true,
            Some(Value::Number(n)) => n.is_i64() || n.is_u64(),
            _ => false,
        };
        if obj.get("jsonrpc") != Some(&json!("2.0")) {
            let id = if id_ok {
                id.unwrap_or(Value::Null)
            } else {
                Value::Null
            };
            return vec![error_line(
                id,
                rpc_err(INVALID_REQUEST, "jsonrpc must be \"2.0\""),
            )];
        }
        let Some(method) = obj.get("method").and_then(Value::as_str) else {
            if obj.contains_key("result") || obj.contains_key("error") {
                return Vec::new(); // a response to something we never ask
            }
            let id = if id_ok {
                id.unwrap_or(Value::Null)
            } else {
                Value::Null
            };
            return vec![error_line(id, rpc_err(INVALID_REQUEST, "no method"))];
        };
        let params = obj.get("params").cloned().unwrap_or(Value::Null);
        let params_ok = params.is_null() || params.is_object();
        let Some(id) = id else {
            // A notification: never answered.
            if params_ok && method == "notifications/initialized" {
                self.initialized = true;
            }
            return Vec::new();
        };
        // A bad id first: a request with a bad id and bad params is still
        // answered (found by fuzz/fuzz_targets/mcp.rs).
        if !id_ok {
            return vec![error_line(
                Value::Null,
                rpc_err(INVALID_REQUEST, "id must be a string or an integer"),
            )];
        }
        if !params_ok {
            return vec![error_line(
                id,
                rpc_err(INVALID_PARAMS, "params must be an object"),
            )];
        }
        let reply = match self.request(method, &params, talker) {
            Ok(result) => json!({ "jsonrpc": "2.0", "id": id, "result": result }),
            Err(e) => return vec![error_line(id, e)],
        };
        vec![reply.to_string()]
    }

    /// A `notifications/message` for `text`, if the client is initialized
    /// and wants messages of this level.
    pub fn log_notification(&self, level: &str, text: &str) -> Option<String> {
        let rank = LEVELS.iter().position(|l| *l == level)?;
        if !self.initialized || rank < self.min_level {
            return None;
        }
        let n = json!({
            "jsonrpc": "2.0",
            "method": "notifications/message",
            "params": { "level": level, "logger": "talker", "data": text },
        });
        Some(n.to_string())
    }

    fn request(
        &mut self,
        method: &str,
        params: &Value,
        talker: &mut dyn Talker,
    ) -> Result<Value, RpcError> {
        match method {
            "initialize" => {
                let asked = params.get("protocolVersion").and_then(Value::as_str);
                let version = asked
                    .filter(|v| KNOWN_VERSIONS.contains(v))
                    .unwrap_or(PROTOCOL_VERSION);
                Ok(json!({
                    "protocolVersion": version,
                    "capabilities": {
                        "tools": { "listChanged": false },
                        "resources": { "listChanged": false, "subscribe": false },
                        "logging": {},
                    },
                    "serverInfo": { "name": "talker", "title": "uniloop talker", "version": env!("CARGO_PKG_VERSION") },
                    "instructions": "A chat server. Tools: who, say, tell, kick, stats. Resources: the rooms and the recent chat log. Log messages report logins and logouts.",
                }))
            }
            "ping" => Ok(json!({})),
            "tools/list" => Ok(json!({ "tools": tools() })),
            "tools/call" => call_tool(params, talker),
            "resources/list" => Ok(json!({ "resources": [
                { "uri": ROOMS_URI, "name": "rooms", "title": "Rooms", "description": "Every room, its exits and who is in it", "mimeType": "application/json" },
                { "uri": CHAT_URI, "name": "chat-log", "title": "Recent chat", "description": "The last lines said, emoted, told and shouted", "mimeType": "text/plain" },
            ]})),
            "resources/read" => {
                let uri = params
                    .get("uri")
                    .and_then(Value::as_str)
                    .ok_or_else(|| rpc_err(INVALID_PARAMS, "uri (a string) is required"))?;
                let (mime, text) = match uri {
                    ROOMS_URI => ("application/json", talker.rooms().to_string()),
                    CHAT_URI => ("text/plain", talker.chat_log().join("\n")),
                    _ => {
                        return Err(rpc_err(
                            RESOURCE_NOT_FOUND,
                            format!("resource not found: {uri}"),
                        ))
                    }
                };
                Ok(json!({ "contents": [{ "uri": uri, "mimeType": mime, "text": text }] }))
            }
            "logging/setLevel" => {
                let level = params.get("level").and_then(Value::as_str).unwrap_or("");
                let rank = LEVELS
                    .iter()
                    .position(|l| *l == level)
                    .ok_or_else(|| rpc_err(INVALID_PARAMS, format!("unknown level {level:?}")))?;
                self.min_level = rank;
                Ok(json!({}))
            }
            _ => Err(rpc_err(
                METHOD_NOT_FOUND,
                format!("method not found: {method}"),
            )),
        }
    }
}

fn error_line(id: Value, e: RpcError) -> String {
    json!({ "jsonrpc": "2.0", "id": id, "error": { "code": e.code, "message": e.message } })
        .to_string()
}

fn schema(props: &[(&str, &str)]) -> Value {
    let mut properties = Map::new();
    for (name, description) in props {
        properties.insert(
            (*name).into(),
            json!({ "type": "string", "description": description }),
        );
    }
    let required: Vec<&str> = props.iter().map(|(n, _)| *n).collect();
    json!({ "type": "object", "properties": properties, "required": required })
}

fn tools() -> Value {
    json!([
        { "name": "who", "title": "Who is on", "description": "List the users logged in, their rooms, idle times and hosts.", "inputSchema": schema(&[]) },
        { "name": "say", "title": "Say as the system", "description": "Send a message from the system to every user.", "inputSchema": schema(&[("message", "What to say")]) },
        { "name": "tell", "title": "Tell a user", "description": "Send a private message from the system to one user.", "inputSchema": schema(&[("name", "The user"), ("message", "What to tell them")]) },
        { "name": "kick", "title": "Kick a user", "description": "Disconnect a user with a notice.", "inputSchema": schema(&[("name", "The user")]) },
        { "name": "stats", "title": "Statistics", "description": "Connections, messages per second, queue and pool statistics, loop iterations.", "inputSchema": schema(&[]) },
    ])
}

fn call_tool(params: &Value, talker: &mut dyn Talker) -> Result<Value, RpcError> {
    let name = params
        .get("name")
        .and_then(Value::as_str)
        .ok_or_else(|| rpc_err(INVALID_PARAMS, "name (a string) is required"))?;
    let args = params
        .get("arguments")
        .cloned()
        .unwrap_or_else(|| json!({}));
    let arg = |key: &str| -> Result<String, RpcError> {
        args.get(key)
            .and_then(Value::as_str)
            .map(str::to_string)
            .ok_or_else(|| {
                rpc_err(
                    INVALID_PARAMS,
                    format!("tool {name}: argument {key:?} (a string) is required"),
                )
            })
    };
    let outcome: Result<Value, String> = match name {
        "who" => Ok(talker.who()),
        "stats" => Ok(talker.stats()),
        "say" => {
            let message = arg("message")?;
            talker.say(&message);
            Ok(json!({ "sent": message }))
        }
        "tell" => {
            let (to, message) = (arg("name")?, arg("message")?);
            talker.tell(&to, &message).map(|()| json!({ "told": to }))
        }
        "kick" => {
            let who = arg("name")?;
            talker.kick(&who).map(|()| json!({ "kicked": who }))
        }
        _ => return Err(rpc_err(INVALID_PARAMS, format!("unknown tool: {name}"))),
    };
    Ok(match outcome {
        Ok(value) => json!({
            "content": [{ "type": "text", "text": value.to_string() }],
            "structuredContent": value,
            "isError": false,
        }),
        Err(why) => json!({ "content": [{ "type": "text", "text": why }], "isError": true }),
    })
}

#[cfg(test)]
mod tests {
    use super::*;

    #[derive(Default)]
    struct Fake {
        said: Vec<String>,
        kicked: Vec<String>,
    }

    impl Talker for Fake {
        fn who(&self) -> Value {
            json!({ "users": [{ "name": "alice" }] })
        }
        fn say(&mut self, text: &str) {
            self.said.push(text.into());
        }
        fn tell(&mut self, name: &str, text: &str) -> Result<(), String> {
            if name == "alice" {
                self.said.push(format!("{name}:{text}"));
                Ok(())
            } else {
                Err(format!("no one called {name} is on"))
            }
        }
        fn kick(&mut self, name: &str) -> Result<(), String> {
            self.kicked.push(name.into());
            Ok(())
        }
        fn stats(&self) -> Value {
            json!({ "connections": 1 })
        }
        fn rooms(&self) -> Value {
            json!({ "rooms": [{ "id": "lobby" }] })
        }
        fn chat_log(&self) -> Vec<String> {
            vec!["alice says: hi".into()]
        }
    }

    fn one(s: &mut McpSession, t: &mut Fake, line: &str) -> Value {
        let out = s.handle(line, t);
        assert_eq!(out.len(), 1, "{line} -> {out:?}");
        serde_json::from_str(&out[0]).unwrap()
    }

    fn code(v: &Value) -> i64 {
        v["error"]["code"]
            .as_i64()
            .unwrap_or_else(|| panic!("not an error: {v}"))
    }

    #[test]
    fn handshake_then_tools_and_resources() {
        let (mut s, mut t) = (McpSession::new(), Fake::default());
        let init = one(
            &mut s,
            &mut t,
            r#"{"jsonrpc":"2.0","id":1,"method":"initialize","params":{"protocolVersion":"2025-06-18","capabilities":{},"clientInfo":{"name":"t","version":"1"}}}"#,
        );
        assert_eq!(init["result"]["protocolVersion"], "2025-06-18");
        assert!(
            s.log_notification("info", "x").is_none(),
            "not before initialized"
        );
        assert!(s
            .handle(
                r#"{"jsonrpc":"2.0","method":"notifications/initialized"}"#,
                &mut t
            )
            .is_empty());
        assert!(s
            .log_notification("info", "alice logged in")
            .unwrap()
            .contains("notifications/message"));
        assert!(s.log_notification("debug", "x").is_none());

        let list = one(
            &mut s,
            &mut t,
            r#"{"jsonrpc":"2.0","id":"a","method":"tools/list"}"#,
        );
        let names: Vec<&str> = list["result"]["tools"]
            .as_array()
            .unwrap()
            .iter()
            .map(|t| t["name"].as_str().unwrap())
            .collect();
        assert_eq!(names, ["who", "say", "tell", "kick", "stats"]);
        assert_eq!(list["id"], "a");

        let who = one(
            &mut s,
            &mut t,
            r#"{"jsonrpc":"2.0","id":2,"method":"tools/call","params":{"name":"who"}}"#,
        );
        assert_eq!(
            who["result"]["structuredContent"]["users"][0]["name"],
            "alice"
        );
        one(
            &mut s,
            &mut t,
            r#"{"jsonrpc":"2.0","id":3,"method":"tools/call","params":{"name":"say","arguments":{"message":"hello"}}}"#,
        );
        assert_eq!(t.said, ["hello"]);
        let bad_tell = one(
            &mut s,
            &mut t,
            r#"{"jsonrpc":"2.0","id":4,"method":"tools/call","params":{"name":"tell","arguments":{"name":"bob","message":"x"}}}"#,
        );
        assert_eq!(bad_tell["result"]["isError"], true);
        let missing = one(
            &mut s,
            &mut t,
            r#"{"jsonrpc":"2.0","id":5,"method":"tools/call","params":{"name":"tell","arguments":{"name":"bob"}}}"#,
        );
        assert_eq!(code(&missing), INVALID_PARAMS);
        let unknown_tool = one(
            &mut s,
            &mut t,
            r#"{"jsonrpc":"2.0","id":6,"method":"tools/call","params":{"name":"nope"}}"#,
        );
        assert_eq!(code(&unknown_tool), INVALID_PARAMS);
        one(
            &mut s,
            &mut t,
            r#"{"jsonrpc":"2.0","id":7,"method":"tools/call","params":{"name":"kick","arguments":{"name":"alice"}}}"#,
        );
        assert_eq!(t.kicked, ["alice"]);

        let res = one(
            &mut s,
            &mut t,
            r#"{"jsonrpc":"2.0","id":8,"method":"resources/list"}"#,
        );
        assert_eq!(res["result"]["resources"].as_array().unwrap().len(), 2);
        let chat = one(
            &mut s,
            &mut t,
            r#"{"jsonrpc":"2.0","id":9,"method":"resources/read","params":{"uri":"talker://chat-log"}}"#,
        );
        assert_eq!(chat["result"]["contents"][0]["text"], "alice says: hi");
        let nores = one(
            &mut s,
            &mut t,
            r#"{"jsonrpc":"2.0","id":10,"method":"resources/read","params":{"uri":"talker://x"}}"#,
        );
        assert_eq!(code(&nores), RESOURCE_NOT_FOUND);
    }

    #[test]
    fn errors_have_the_right_codes() {
        let (mut s, mut t) = (McpSession::new(), Fake::default());
        let parse = one(&mut s, &mut t, "{not json");
        assert_eq!((code(&parse), &parse["id"]), (PARSE_ERROR, &Value::Null));
        assert_eq!(code(&one(&mut s, &mut t, "[1,2]")), INVALID_REQUEST);
        assert_eq!(code(&one(&mut s, &mut t, "42")), INVALID_REQUEST);
        assert_eq!(
            code(&one(&mut s, &mut t, r#"{"id":1,"method":"ping"}"#)),
            INVALID_REQUEST
        );
        assert_eq!(
            code(&one(
                &mut s,
                &mut t,
                r#"{"jsonrpc":"2.0","id":null,"method":"ping"}"#
            )),
            INVALID_REQUEST
        );
        assert_eq!(
            code(&one(&mut s, &mut t, r#"{"jsonrpc":"2.0","id":1}"#)),
            INVALID_REQUEST
        );
        let nf = one(
            &mut s,
            &mut t,
            r#"{"jsonrpc":"2.0","id":1,"method":"nope"}"#,
        );
        assert_eq!((code(&nf), &nf["id"]), (METHOD_NOT_FOUND, &json!(1)));
        assert_eq!(
            code(&one(
                &mut s,
                &mut t,
                r#"{"jsonrpc":"2.0","id":1,"method":"ping","params":[1]}"#
            )),
            INVALID_PARAMS
        );
        // A bad id with bad params: answered, as a bad id alone is.
        let both = one(
            &mut s,
            &mut t,
            r#"{"jsonrpc":"2.0","id":null,"method":"ping","params":[1]}"#,
        );
        assert_eq!((code(&both), &both["id"]), (INVALID_REQUEST, &Value::Null));
        // A fractional or too-large numeric id is a bad id, answered with a
        // null id rather than echoed altered.
        for id in ["1.5", "888888888888888888888888888888888888888888881"] {
            let r = one(
                &mut s,
                &mut t,
                &format!(r#"{{"jsonrpc":"2.0","id":{id},"method":"ping"}}"#),
            );
            assert_eq!(
                (code(&r), &r["id"]),
                (INVALID_REQUEST, &Value::Null),
                "{id}"
            );
        }
        // Unknown notifications and stray responses are not answered.
        assert!(s
            .handle(
                r#"{"jsonrpc":"2.0","method":"notifications/whatever"}"#,
                &mut t
            )
            .is_empty());
        assert!(s
            .handle(r#"{"jsonrpc":"2.0","id":5,"result":{}}"#, &mut t)
            .is_empty());
        assert!(s.handle("   ", &mut t).is_empty());
        assert_eq!(
            one(
                &mut s,
                &mut t,
                r#"{"jsonrpc":"2.0","id":2,"method":"ping"}"#
            )["result"],
            json!({})
        );
    }

    proptest::proptest! {
        #[test]
        fn any_line_gets_at_most_one_answer_and_no_panic(line in "\\PC{0,80}") {
            let (mut s, mut t) = (McpSession::new(), Fake::default());
            let out = s.handle(&line, &mut t);
            proptest::prop_assert!(out.len() <= 1);
        }
    }
}
