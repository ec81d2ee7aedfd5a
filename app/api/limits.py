"""Request body size limits, enforced before a route reads the body.

A declared ``Content-Length`` over the limit is refused at once; a body without one (chunked) is counted as it
arrives and refused when it passes the limit. Uploads get ``max_upload_mb``, every other route ``max_request_kb``.
"""

from __future__ import annotations

import json
from collections.abc import Collection

from starlette.types import ASGIApp, Message, Receive, Scope, Send

from app.api.errors import error_body


class BodySizeLimit:
    def __init__(self, app: ASGIApp, *, request_bytes: int, upload_bytes: int, upload_paths: Collection[str]) -> None:
        self.app, self.request_bytes, self.upload_bytes = app, request_bytes, upload_bytes
        self.upload_paths = upload_paths

    def _limit(self, scope: Scope) -> tuple[int, str]:
        if scope["method"] == "POST" and scope["path"] in self.upload_paths:
            return self.upload_bytes, "RAGLINE_MAX_UPLOAD_MB"
        return self.request_bytes, "RAGLINE_MAX_REQUEST_KB"

    async def __call__(self, scope: Scope, receive: Receive, send: Send) -> None:
        if scope["type"] != "http":
            await self.app(scope, receive, send)
            return
        limit, setting = self._limit(scope)
        declared = dict(scope["headers"]).get(b"content-length")
        if declared is not None:
            if not declared.isdigit():
                await _reply(send, 400, f"Content-Length {declared.decode(errors='replace')!r} is not a number")
                return
            if int(declared) > limit:
                await _reply(send, 413, _too_large(int(declared), limit, setting))
                return
        received = 0
        exceeded = False

        async def counted_receive() -> Message:
            nonlocal received, exceeded
            message = await receive()
            if message["type"] == "http.request":
                received += len(message.get("body", b""))
                if received > limit:
                    exceeded = True
                    return {"type": "http.disconnect"}
            return message

        replaced = False

        async def guarded_send(message: Message) -> None:
            nonlocal replaced
            if exceeded and message["type"] == "http.response.start":
                replaced = True
                await _reply(send, 413, _too_large(received, limit, setting))
                return
            if not replaced:
                await send(message)

        await self.app(scope, counted_receive, guarded_send)
        if exceeded and not replaced:  # the route gave up on the body without answering
            await _reply(send, 413, _too_large(received, limit, setting))


def _too_large(size: int, limit: int, setting: str) -> str:
    return (
        f"request body of at least {size:,} bytes is over the {limit:,}-byte limit ({setting}); "
        "send less, split the upload, or raise the limit"
    )


async def _reply(send: Send, status: int, message: str) -> None:
    body = json.dumps(error_body(status, message)).encode()
    headers = [(b"content-type", b"application/json"), (b"content-length", str(len(body)).encode())]
    await send({"type": "http.response.start", "status": status, "headers": headers})
    await send({"type": "http.response.body", "body": body})
