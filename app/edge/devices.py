"""`POST /api/v1/polls/{poll_id}/devices`: the page registers its device's key while the poll is
open, so that a vote it delivers after the close, within the late-delivery grace, is admitted."""

from __future__ import annotations

import msgspec
from litestar import post
from litestar.handlers import HTTPRouteHandler

from app.core import problems
from app.core.protocol import PublicKeyB64
from app.edge.errors import problem_specs
from app.edge.http import ClosedJsonBody, JsonBodyRequest, PollId, require_json_body
from app.votes.service import VoteService


class DeviceRegistration(msgspec.Struct, forbid_unknown_fields=True):
    public_key: PublicKeyB64
    """The device's per-poll Ed25519 public key, as its votes will carry it."""


class DeviceRegistered(msgspec.Struct):
    registered_at: int
    """When the service first saw the key in this poll, in ms since the epoch by its own clock."""


def device_routes(votes: VoteService) -> list[HTTPRouteHandler]:
    @post(
        "/api/v1/polls/{poll_id:str}/devices",
        operation_id="registerDevice",
        summary="Register a device's key while the poll is open, for late delivery",
        description="Safe to repeat: the first registration's time stands. See docs/protocol.md, Late delivery.",
        status_code=200,
        tags=["polls"],
        opt={"invalid_body_problem": problems.InvalidRequest},
        before_request=require_json_body,
        request_class=JsonBodyRequest,
        responses=problem_specs(
            problems.InvalidRequest,
            problems.MalformedJson,
            problems.DuplicateHeader,
            problems.UnsupportedMediaType,
            problems.PollNotFound,
            problems.PollClosed,
        ),
    )
    async def register_device(poll_id: PollId, data: ClosedJsonBody[DeviceRegistration]) -> DeviceRegistered:
        return DeviceRegistered(registered_at=await votes.register_device(poll_id, data.public_key))

    return [register_device]
