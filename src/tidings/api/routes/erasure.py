"""Erasure of personal data (issue 22 section 4), platform admin keys: one event
(`POST /v1/events/{id}/erase`) or every event about a subject (`POST /v1/subjects/{subject}/erase`,
in one organization or all). The skeleton stays; `services.erasure` says what goes."""

from __future__ import annotations

from typing import Annotated

from fastapi import APIRouter, Body, Path
from pydantic import BaseModel, ConfigDict, Field

from tidings.api.context import Ctx, PlatformKey
from tidings.clock import to_rfc3339
from tidings.services import erasure
from tidings.services.erasure import Erased

router = APIRouter(tags=["erasure"])

Id = Annotated[str, Path(min_length=1, max_length=200)]


class EventErasureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    organizationUuid: str = Field(min_length=1, max_length=200,
                                  description="the organization the event belongs to")  # fmt: skip


class SubjectErasureIn(BaseModel):
    model_config = ConfigDict(extra="forbid")
    organizationUuid: str | None = Field(
        default=None, min_length=1, max_length=200, description="only this organization's events"
    )


class ErasureCountsOut(BaseModel):
    events: int = Field(description="events whose data was erased now (0: erased before)")
    deliveriesStopped: int = Field(description="pending or held deliveries now skipped")
    responsesCleared: int = Field(description="attempts whose response excerpt was removed")
    projections: int = Field(description="state projections whose copy of the data was removed")


class ErasureOut(BaseModel):
    erasedAt: str = Field(description="when the data was erased (RFC 3339)")
    organizations: list[str] = Field(description="the organizations whose events were erased")
    erased: ErasureCountsOut


def _view(done: Erased) -> ErasureOut:
    return ErasureOut(
        erasedAt=to_rfc3339(done.erased_at),
        organizations=list(done.organizations),
        erased=ErasureCountsOut(**done.counts.as_json()),
    )


@router.post(
    "/v1/events/{event_id}/erase",
    response_model=ErasureOut,
    summary="erase an event's data (payload, response excerpts, state details); keep its skeleton",
    description="The event, its deliveries and attempts stay with their ids, types, times and "
    "statuses; its `data` becomes null and `erasedAt` is set. Pending deliveries are not sent, "
    "and its deliveries can no longer be replayed (409 `event_erased`). Erasing again changes "
    "nothing. Recorded in the audit trail (`event.erase`).",
)
async def erase_event(
    event_id: Id, body: EventErasureIn, ctx: Ctx, actor: PlatformKey
) -> ErasureOut:
    return _view(await erasure.erase_event(ctx.deps, actor, body.organizationUuid, event_id))


@router.post(
    "/v1/subjects/{subject}/erase",
    response_model=ErasureOut,
    summary="erase the data of every event about a subject (an order, an owner, a person)",
    description="Every event whose envelope names this `subject`, in every organization or in "
    "`organizationUuid`'s, is erased as `POST /v1/events/{id}/erase` erases one. Recorded in "
    "the audit trail (`subject.erase`), also when there was nothing to erase.",
)
async def erase_subject(
    subject: Id,
    ctx: Ctx,
    actor: PlatformKey,
    body: Annotated[SubjectErasureIn | None, Body()] = None,
) -> ErasureOut:
    organization = None if body is None else body.organizationUuid
    return _view(await erasure.erase_subject(ctx.deps, actor, subject, organization))
