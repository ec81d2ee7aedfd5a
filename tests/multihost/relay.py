"""A byte relay between a TCP address and a Unix socket, for the multi-host lab.

Two CPU-bound vLLM servers do not fit on two cores, so the lab's LLM hosts reach the test session's one real vLLM
(listening on 127.0.0.1 in the machine's namespace) through a Unix socket, which is a file and so crosses network
namespaces: ``unix-listen`` runs outside the lab and forwards the socket to vLLM's TCP port; ``tcp-listen`` runs
on an LLM host inside the lab and forwards its TCP port to the socket. Killing a host's relay is that replica dying:
its port refuses, exactly as a crashed server's would.

    python -m tests.multihost.relay unix-listen SOCKET_PATH TARGET_HOST TARGET_PORT
    python -m tests.multihost.relay tcp-listen LISTEN_HOST LISTEN_PORT SOCKET_PATH
"""

from __future__ import annotations

import asyncio
import contextlib
import sys
from collections.abc import Awaitable, Callable

Opener = Callable[[], Awaitable[tuple[asyncio.StreamReader, asyncio.StreamWriter]]]


async def _pipe(reader: asyncio.StreamReader, writer: asyncio.StreamWriter) -> None:
    try:
        while data := await reader.read(65536):
            writer.write(data)
            await writer.drain()
    except (ConnectionError, OSError):
        pass
    finally:
        with contextlib.suppress(Exception):
            writer.close()


def _handler(
    open_target: Opener,
) -> Callable[[asyncio.StreamReader, asyncio.StreamWriter], Awaitable[None]]:
    async def handle(client_reader: asyncio.StreamReader, client_writer: asyncio.StreamWriter) -> None:
        try:
            target_reader, target_writer = await open_target()
        except OSError:
            client_writer.close()  # the target is down: the client sees its connection closed, as with a dead server
            return
        await asyncio.gather(_pipe(client_reader, target_writer), _pipe(target_reader, client_writer))

    return handle


async def main(argv: list[str]) -> None:
    mode, *args = argv
    if mode == "unix-listen":
        path, host, port = args
        server = await asyncio.start_unix_server(_handler(lambda: asyncio.open_connection(host, int(port))), path=path)
    elif mode == "tcp-listen":
        host, port, path = args
        server = await asyncio.start_server(
            _handler(lambda: asyncio.open_unix_connection(path)), host=host, port=int(port), backlog=128
        )
    else:
        raise SystemExit(__doc__)
    print(f"relay {mode} {' '.join(args)} ready", flush=True)
    async with server:
        await server.serve_forever()


if __name__ == "__main__":
    asyncio.run(main(sys.argv[1:]))
