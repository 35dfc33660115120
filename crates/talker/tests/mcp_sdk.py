"""Drives `talker --mcp` with the official MCP Python SDK's stdio client.

Usage: python mcp_sdk.py PATH_TO_TALKER DATA_DIR
Run by tests/mcp_sdk.rs, which installs the `mcp` package into a venv.
"""

import asyncio
import json
import sys

from mcp import ClientSession, StdioServerParameters
from mcp.client.stdio import stdio_client


def attr(obj, snake: str, camel: str):
    """SDK 1.x spells fields in camelCase, 2.x in snake_case."""
    return getattr(obj, snake) if hasattr(obj, snake) else getattr(obj, camel)


def is_error(result) -> bool:
    return bool(attr(result, "is_error", "isError"))


async def main(exe: str, data_dir: str) -> None:
    params = StdioServerParameters(
        command=exe, args=["--mcp", "--addr", "127.0.0.1:0", "--data-dir", data_dir]
    )
    async with stdio_client(params) as (read, write):
        async with ClientSession(read, write) as session:
            init = await session.initialize()
            assert attr(init, "server_info", "serverInfo").name == "talker", init
            print("protocol", attr(init, "protocol_version", "protocolVersion"))
            await session.send_ping()

            tools = await session.list_tools()
            names = [t.name for t in tools.tools]
            assert names == ["who", "say", "tell", "kick", "stats"], names

            who = await session.call_tool("who", {})
            assert not is_error(who), who
            assert json.loads(who.content[0].text) == {"users": []}, who

            said = await session.call_tool("say", {"message": "hello from the sdk"})
            assert not is_error(said), said

            tell = await session.call_tool("tell", {"name": "nobody", "message": "x"})
            assert is_error(tell), tell

            stats = await session.call_tool("stats", {})
            assert json.loads(stats.content[0].text)["connections"]["total"] == 0

            resources = await session.list_resources()
            uris = [str(r.uri) for r in resources.resources]
            assert uris == ["talker://rooms", "talker://chat-log"], uris
            rooms = await session.read_resource("talker://rooms")
            assert json.loads(rooms.contents[0].text)["rooms"][0]["id"] == "lobby"
            chat = await session.read_resource("talker://chat-log")
            assert "hello from the sdk" in chat.contents[0].text, chat
    print("mcp sdk client: all checks passed")


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1], sys.argv[2]))
