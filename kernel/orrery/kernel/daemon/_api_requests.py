"""``POST /v1/requests``: send a request on the bus and answer with the reply."""

from __future__ import annotations

import time

import msgspec
from aiohttp import web
from orrery.kernel.bus import BusClosed
from orrery.sdk import InvalidTopic, NoResponders, RequestTimeout

from ._endpoints import Endpoint
from ._http import KERNEL, authorize, parse_body
from ._models import RequestBody, RequestReply
from .errors import HttpError

__all__ = ["REQUEST_ENDPOINTS"]

_encode = msgspec.json.Encoder().encode


async def send_request(request: web.Request) -> web.Response:
    body = await parse_body(request, RequestBody)
    # A request is a publish whose reply comes back: the same permission.
    await authorize(request, "events.publish", body.topic)
    kernel = request.app[KERNEL]
    began = time.perf_counter()
    try:
        reply = await kernel.bus.request(body.topic, body.data, timeout=body.timeout)
    except InvalidTopic as e:
        raise HttpError(422, str(e), field="topic") from e
    except NoResponders as e:
        raise HttpError(404, str(e), field="topic") from e
    except RequestTimeout as e:
        # The daemon's own replay recorder subscribes to everything, so "nobody
        # subscribes" cannot be told apart from "nobody answered" here: say both.
        raise HttpError(
            504,
            f"no reply on {body.topic!r} within {body.timeout:g}s: no handler answered; "
            f"check the topic's spelling and that the answering plugin is active, or "
            f"allow a longer timeout",
            field="timeout",
        ) from e
    except BusClosed as e:
        raise HttpError(503, "the daemon is shutting down; retry against the next one") from e
    answer = {
        "topic": body.topic,
        "reply": reply,
        "elapsed_ms": round((time.perf_counter() - began) * 1000, 3),
    }
    try:
        raw = _encode(answer)
    except (TypeError, ValueError, OverflowError) as e:
        raise HttpError(
            502,
            f"the reply on {body.topic!r} cannot be encoded as JSON ({e}); the responding "
            f"handler must return JSON-able data",
        ) from e
    return web.Response(body=raw, content_type="application/json")


REQUEST_ENDPOINTS = (
    Endpoint(
        "POST",
        "/v1/requests",
        send_request,
        "sendRequest",
        "Send a request on the bus and wait for the first reply",
        "events",
        response=RequestReply,
        body=RequestBody,
        errors=(403, 404, 502, 503, 504),
        action="events.publish",
        description="Publishes the data on the topic with a reply inbox and answers with "
        "the first reply (what the first handler returned that was not None). 504 when "
        "none arrives within 'timeout' seconds; 404 when nothing subscribes to the topic "
        "(on a daemon every topic has the replay recorder, so that case is a 504 too).",
    ),
)
