"""Admin routes (role ``admin``); the three lists are also open to ``publish`` and ``consume`` keys
(n8n loads its dropdowns from them)."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Depends, Query, Response

from ...core.bus import EventBus
from ...core.errors import InvalidArgument
from ...core.limits import DEFAULT_DLQ_LIST_COUNT, MAX_READ_COUNT
from ..schemas import (
    ENTRY_ID_PATTERN,
    NAME_PATTERN,
    REPLAY_WHAT,
    ChannelsOut,
    CreatedOut,
    CreateGroupBody,
    DestroyedOut,
    DlqOut,
    GroupRef,
    GroupsOut,
    ReplayBody,
    ReplayItem,
    ReplayOut,
    RewindBody,
    RewindOut,
    StatusOut,
    StreamInfo,
    StreamsOut,
    StreamStatusOut,
    dead_letter_out,
    status_out,
    stream_status_out,
)
from ..security import requires
from .common import GroupName, StreamName, errors, get_bus

router = APIRouter(prefix="/api/v1", tags=["admin"])
Bus = Annotated[EventBus, Depends(get_bus)]
LIST_ROLES = requires("publish", "consume", "admin")
ADMIN = requires("admin")


@router.get("/streams", response_model=StreamsOut, responses=errors(), **LIST_ROLES,
            summary="List the topology's streams with their groups (also those created at run time)")
async def list_streams(bus: Bus) -> StreamsOut:
    return StreamsOut(streams=[StreamInfo(name=s.name, groups=s.groups, retention=s.retention) for s in await bus.list_streams()])


@router.get("/channels", response_model=ChannelsOut, responses=errors(), **LIST_ROLES,
            summary="List the informational channels")
async def list_channels(bus: Bus) -> ChannelsOut:
    return ChannelsOut(channels=bus.channel_names())


@router.get("/groups", response_model=GroupsOut, responses=errors(404), **LIST_ROLES,
            summary="List consumer groups, of every topology stream or of one stream")
async def list_groups(
    bus: Bus,
    stream: Annotated[str | None, Query(pattern=NAME_PATTERN, description="Only this stream's groups.",
                                        examples=["email.received"])] = None,
) -> GroupsOut:
    return GroupsOut(groups=[GroupRef(stream=s, name=g) for s, g in await bus.list_groups(stream)])


@router.get("/status", response_model=StatusOut, responses=errors(), **ADMIN,
            summary="Status of every topology stream: lengths, groups, consumers, pending, lag, alerts")
async def status(bus: Bus) -> StatusOut:
    return status_out(await bus.status())


@router.get("/streams/{stream}/status", response_model=StreamStatusOut, responses=errors(404), **ADMIN,
            summary="Status of one stream")
async def stream_status(stream: StreamName, bus: Bus) -> StreamStatusOut:
    return stream_status_out(await bus.stream_status(stream))


@router.post(
    "/streams/{stream}/groups", status_code=201, response_model=CreatedOut, **ADMIN,
    responses={201: {"description": "Created.", "model": CreatedOut},
               200: {"description": "It already existed (left unchanged): {\"created\": false}.", "model": CreatedOut},
               **errors(404)},
    summary="Create a consumer group (idempotent)",
)
async def create_group(stream: StreamName, body: CreateGroupBody, response: Response, bus: Bus) -> CreatedOut:
    created = await bus.create_group(stream, body.group, body.start)
    if not created:
        response.status_code = 200
    return CreatedOut(created=created)


@router.delete(
    "/streams/{stream}/groups/{group}", response_model=DestroyedOut, responses=errors(404, 409), **ADMIN,
    summary="Destroy a consumer group",
    description="Refused (409) while the group holds pending entries, unless force=true (they would never be processed by it).",
)
async def destroy_group(
    stream: StreamName, group: GroupName, bus: Bus,
    force: Annotated[bool, Query(description="Destroy even with pending entries.")] = False,
) -> DestroyedOut:
    dropped = await bus.destroy_group(stream, group, force=force)
    return DestroyedOut(destroyed=True, pending_dropped=dropped)


@router.post(
    "/streams/{stream}/groups/{group}/rewind", response_model=RewindOut, responses=errors(404), **ADMIN,
    summary="Move a group's position so entries after it are delivered again",
    description="Give exactly one of to_id (entries after it are redelivered) or to_time_ms (entries published "
    "at or after it are redelivered). Pending entries are untouched.",
)
async def rewind(stream: StreamName, group: GroupName, body: RewindBody, bus: Bus) -> RewindOut:
    target = await bus.rewind(stream, group, to_id=body.to_id, to_time_ms=body.to_time_ms)
    return RewindOut(rewound=True, last_delivered_id=target)


@router.get("/streams/{stream}/dlq", response_model=DlqOut, responses=errors(404), **ADMIN,
            summary="List a stream's dead letters, oldest first")
async def dlq_list(
    stream: StreamName, bus: Bus,
    count: Annotated[int, Query(ge=1, le=MAX_READ_COUNT, description=f"At most this many (1 to {MAX_READ_COUNT}).")] = (
        DEFAULT_DLQ_LIST_COUNT),
    after: Annotated[str | None, Query(pattern=ENTRY_ID_PATTERN, description="Start after this dead-letter id (paging).")] = None,
) -> DlqOut:
    return DlqOut(entries=[dead_letter_out(d) for d in await bus.dlq_list(stream, count, after)])


@router.post(
    "/streams/{stream}/dlq/replay", response_model=ReplayOut, responses=errors(404),
    summary="Publish dead letters again into their stream",
    description="Each replayed dead letter becomes a new entry (seen by every group of the stream) and leaves the "
    'dead-letter stream, atomically. Say what to replay: `{"ids": [...]}` names the dead letters, `{"all": true}` '
    f"replays every one. No body, `{{}}`, all false without ids, or both ids and all: 400 ({REPLAY_WHAT}), "
    "and nothing is replayed.",
    # The body is required (the OpenAPI says so), but declared optional here so that a missing one is
    # answered with REPLAY_WHAT rather than a generic "body is required".
    openapi_extra={**ADMIN["openapi_extra"], "requestBody": {"required": True}},
)
async def dlq_replay(stream: StreamName, bus: Bus, body: Annotated[ReplayBody, Body()] = None) -> ReplayOut:  # type: ignore[assignment]
    if body is None:
        raise InvalidArgument(REPLAY_WHAT, field="body")
    done = await bus.dlq_replay(stream, body.target())
    return ReplayOut(replayed=[ReplayItem(dlq_id=r.dlq_id, new_id=r.new_entry_id) for r in done])
