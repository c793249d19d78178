"""`tidings demo`: a complete local scenario a newcomer can watch in about twenty seconds.

One process runs everything, on 127.0.0.1, in a temporary directory that is removed at the end:

- the embedded service (SQLite, the HTTP API and the delivery worker, private URLs allowed, a
  fast retry schedule of 1, 2, 4 seconds instead of the ~72 h production one);
- a local receiver (the `tidings listen` machinery: every request verified with the receiver
  SDK) with one path per endpoint.

Through the HTTP API (the same calls the CLI makes) it creates an organization and a partner,
registers endpoints in all three wire formats (plus one that fails twice before succeeding and
one that answers 410 Gone), publishes a short story from both seeds, prints each delivery as it
arrives, then shows the delivery history with attempts, replays what one endpoint received (its
receiver marks the repeats as duplicates) and the state tidings built from the events. Ctrl-C
stops it cleanly at any moment.
"""

from __future__ import annotations

import asyncio
import contextlib
import json
import logging
import secrets
import signal
import socket
import tempfile
import time
from collections.abc import Awaitable, Callable
from dataclasses import dataclass, field
from pathlib import Path
from typing import Annotated, Any

import typer
from aiohttp import web
from rich.console import Console
from rich.markup import escape
from rich.table import Table

from tidings.cli import app
from tidings.cli.apiclient import ApiClient, ClientError
from tidings.cli.listen import FORMAT_STYLE, Received, ReceiverRoute, describe, make_app
from tidings.cli.output import cell, short_time, styled_status

RETRY_SCHEDULE = (1.0, 2.0, 4.0)
WAIT_FOR_DELIVERIES_SECONDS = 25.0
STEP_PAUSE_SECONDS = 0.7

ORDER_ID = "ord_DEMO_8HJ2K"
BUYER_ID = "buy_DEMO_71C"
OWNER_ID = "own_DEMO_4411"
ENTITLEMENT_ID = "ent_DEMO_onboarding_1"
DLT_ATTRIBUTES = {
    "owner_id": OWNER_ID,
    "owner_type": "person",
    "external_id": "ext_DEMO_9f2c",
    "entitlement_trigger_id": "trg_DEMO_77",
    "entitlement_id": ENTITLEMENT_ID,
}


@dataclass
class DemoEndpoint:
    name: str
    path: str
    fmt: str
    event_types: list[str]
    story: str
    fail_first: int = 0
    answer_status: int | None = None
    id: str = ""


ENDPOINTS = [
    DemoEndpoint(
        "compliance-dashboard",
        "/compliance",
        "novatrade",
        ["compliance.*", "kyc.*"],
        "export-compliance events, novatrade format",
    ),
    DemoEndpoint(
        "kyc-backend",
        "/kyc",
        "dlt",
        ["onboarding.*", "account_locks.*"],
        "KYC workflow notifications, dlt format",
    ),
    DemoEndpoint(
        "ops-alerts",
        "/ops",
        "standard",
        ["webhook.*", "account_locks.*"],
        "meta events and locks, Standard Webhooks format",
    ),
    DemoEndpoint(
        "erp",
        "/erp",
        "novatrade",
        ["compliance.decision_made"],
        "an ERP that is down at first: answers 500 twice",
        fail_first=2,
    ),
    DemoEndpoint(
        "legacy-crm",
        "/legacy",
        "novatrade",
        ["kyc.vies_check_failed"],
        "a retired system: answers 410 Gone",
        answer_status=410,
    ),
]


@dataclass
class Chapter:
    title: str
    note: str
    envelopes: list[dict[str, Any]]
    # (endpoint name, event type) pairs this chapter must deliver with a 2xx
    expect: list[tuple[str, str]] = field(default_factory=list)


def story(org: str, partner: str) -> list[Chapter]:
    def nova(type_name: str, data: dict[str, Any], subject: str) -> dict[str, Any]:
        return {
            "type": type_name,
            "schemaVersion": 1,
            "source": "WEB_APP",
            "organizationUuid": org,
            "partnerUuid": partner,
            "subject": subject,
            "data": data,
        }

    def dlt(type_name: str, data: dict[str, Any]) -> dict[str, Any]:
        return {
            "type": type_name,
            "schemaVersion": 1,
            "source": "SYSTEM",
            "organizationUuid": org,
            "partnerUuid": None,
            "subject": OWNER_ID,
            "attributes": DLT_ATTRIBUTES,
            "data": data,
        }

    now = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime())
    order = [
        nova(
            "compliance.status_changed",
            {"orderId": ORDER_ID, "previousStatus": None, "status": "INCOMPLETE"},
            ORDER_ID,
        ),
        nova(
            "compliance.status_changed",
            {"orderId": ORDER_ID, "previousStatus": "INCOMPLETE", "status": "VALID"},
            ORDER_ID,
        ),
        nova(
            "compliance.decision_made",
            {"orderId": ORDER_ID, "decision": "VALID_EXPORT", "decidedAt": now},
            ORDER_ID,
        ),
        nova(
            "kyc.vies_check_failed",
            {
                "buyerId": BUYER_ID,
                "vatNumber": "123456789",
                "countryCode": "DE",
                "checkedAt": now,
                "viesStatus": "INVALID",
                "message": "VAT number not valid",
            },
            BUYER_ID,
        ),
    ]
    kyc = [
        dlt(
            "onboarding.requirementsIDV",
            {
                "workflow_id": "44907951-1825-4a91-b1c8-f84d708a22e3",
                "branch": "DEU",
                "name": "IDVandQESandBAV",
            },
        ),
        dlt(
            "onboarding.failedIDV",
            {
                "status": "failed",
                "messages": [
                    {"timestamp": now, "statusCode": 422, "description": "Document expired"}
                ],
            },
        ),
        dlt("account_locks.applyFundingLock", {}),
    ]
    return [
        Chapter(
            "An order goes INCOMPLETE → VALID → decision (novatrade seed)",
            "the compliance dashboard gets every step; the ERP only the decision, and it is down "
            "(tidings retries after 1 s, then 2 s); the VIES failure also goes to a retired CRM "
            "that answers 410 Gone, so tidings pauses it and tells ops (webhook.* in standard)",
            order,
            [
                ("compliance-dashboard", "compliance.status_changed"),
                ("compliance-dashboard", "compliance.decision_made"),
                ("compliance-dashboard", "kyc.vies_check_failed"),
                ("erp", "compliance.decision_made"),
                ("ops-alerts", "webhook.endpoint_auto_paused"),
            ],
        ),
        Chapter(
            "A KYC onboarding: IDV required, IDV failed, funding lock (dlt seed)",
            "the KYC backend gets the dlt wire format; the lock also goes to ops in standard",
            kyc,
            [
                ("kyc-backend", "onboarding.requirementsIDV"),
                ("kyc-backend", "onboarding.failedIDV"),
                ("kyc-backend", "account_locks.applyFundingLock"),
                ("ops-alerts", "account_locks.applyFundingLock"),
            ],
        ),
    ]


def free_port() -> int:
    with socket.socket() as s:
        s.bind(("127.0.0.1", 0))
        return int(s.getsockname()[1])


class EmbeddedService:
    """The API and the worker of `tidings serve`, in this event loop, with a stop we own."""

    def __init__(self, data_dir: Path, port: int, platform_key: str) -> None:
        from tidings.config import Settings

        self.settings = Settings(
            database_url=f"sqlite:///{data_dir / 'tidings.db'}",
            platform_key=platform_key,
            host="127.0.0.1",
            port=port,
            retry_schedule_seconds=RETRY_SCHEDULE,
            retry_jitter_fraction=0.0,
            allow_private_urls=True,
            allow_http=True,
        )
        self.url = f"http://127.0.0.1:{port}"
        self._stop = asyncio.Event()
        self._tasks: list[asyncio.Task[None]] = []
        self._server: Any = None
        self._store: Any = None

    async def start(self) -> None:
        from tidings.assembly import (
            _QuietServer,
            bind_listener,
            build_app,
            build_worker,
            open_ready_store,
            register_platform_key,
        )
        from tidings.catalog import Catalog
        from tidings.publishing import Publisher

        settings = self.settings
        self._store = store = await open_ready_store(settings, migrate=True)
        catalog = Catalog.load_default()
        publisher = Publisher(store, catalog)
        await register_platform_key(store, settings.platform_key or "")
        worker = build_worker(settings, store, catalog, publisher)
        await store.listen()
        self._tasks.append(asyncio.create_task(worker.run(self._stop), name="demo-worker"))
        self._server = _QuietServer(
            build_app(settings, store, catalog, publisher),
            settings,
            bind_listener(settings.host, settings.port),
        )
        self._tasks.append(asyncio.create_task(self._server.serve(), name="demo-api"))
        async with ApiClient(self.url, timeout_seconds=2.0) as api:
            for _ in range(200):
                for task in self._tasks:
                    if task.done():
                        task.result()  # raise what stopped it
                with contextlib.suppress(ClientError):
                    await api.get("/healthz")
                    return
                await asyncio.sleep(0.05)
        raise RuntimeError("the embedded service did not start")

    async def stop(self) -> None:
        self._stop.set()
        if self._server is not None:
            self._server.stop()
        await asyncio.gather(*self._tasks, return_exceptions=True)
        if self._store is not None:
            await self._store.close()


class Demo:
    def __init__(self, console: Console, keep_running: bool) -> None:
        self.console = console
        self.keep_running = keep_running
        self.by_path = {e.path: e for e in ENDPOINTS}
        self.routes = {
            e.path: ReceiverRoute(fmt=e.fmt, fail_first=e.fail_first, answer_status=e.answer_status)
            for e in ENDPOINTS
        }
        self.received: list[Received] = []
        self.arrived = asyncio.Event()
        self.event_types: dict[str, str] = {}

    # -- printing --

    def say(self, text: str) -> None:
        self.console.print(text)

    def chapter(self, number: int, title: str, note: str = "") -> None:
        self.console.print()
        self.console.rule(f"[bold]{number}. {escape(title)}[/bold]", align="left")
        if note:
            self.console.print(f"[dim]{escape(note)}[/dim]")

    def published(self, envelope: dict[str, Any]) -> None:
        data = json.dumps(envelope.get("data"), ensure_ascii=False, separators=(", ", ": "))
        if len(data) > 60:
            data = data[:57] + "..."
        self.say(
            f"[bold yellow]↑ published[/bold yellow] [bold]{escape(envelope['type'])}[/bold] "
            f"[dim]{escape(data)}[/dim]"
        )

    def on_received(self, received: Received) -> None:
        self.received.append(received)
        endpoint = self.by_path.get(received.path)
        label = endpoint.name if endpoint else received.path
        line = describe(received, show_data=False, label=f"{label:<20}", show_id=False)
        self.console.print(line)
        self.arrived.set()

    # -- the story --

    async def run(self, service_url: str, platform_key: str) -> None:
        async with ApiClient(service_url, platform_key) as platform:
            org_key, org, partner = await self.setup_organization(platform)
            async with ApiClient(service_url, org_key) as api:
                await self.register_endpoints(api)
                chapters = story(org, partner)
                self.started_at = time.strftime("%Y-%m-%dT%H:%M:%SZ", time.gmtime(time.time() - 1))
                for number, chap in enumerate(chapters, start=3):
                    self.chapter(number, chap.title, chap.note)
                    for envelope in chap.envelopes:
                        stored = await platform.post("/v1/events", envelope)
                        self.published(envelope)
                        self.event_types[str(stored.get("id"))] = envelope["type"]
                        await asyncio.sleep(STEP_PAUSE_SECONDS)
                    await self.wait_for(chap.expect)
                await self.wait_until_settled(api)
                self.chapter(len(chapters) + 3, "Delivery history")
                await self.show_history(api)
                self.chapter(len(chapters) + 4, "Replay: the dashboard asks for it all again")
                await self.show_replay(api)
                self.chapter(len(chapters) + 5, "State tidings built from the events")
                await self.show_state(api)
                if self.keep_running:
                    self.say(
                        "\n[bold]still running[/bold] (Ctrl-C stops): try the CLI against it\n"
                        f"  export TIDINGS_URL={service_url} TIDINGS_KEY={org_key}\n"
                        "  tidings deliveries list; tidings endpoints list; tidings events list"
                    )
                    await asyncio.Event().wait()

    async def setup_organization(self, platform: ApiClient) -> tuple[str, str, str]:
        self.chapter(1, "An operator creates an organization and a partner (platform key)")
        org = await platform.post("/v1/organizations", {"name": "Acme Exports GmbH"})
        partner = await platform.post(
            f"/v1/organizations/{org['organizationUuid']}/partners", {"name": "Dealer Nord"}
        )
        self.say(
            f"organization [bold]{escape(org['name'])}[/bold] {org['organizationUuid']}, "
            f"partner [bold]{escape(partner['name'])}[/bold] {partner['partnerUuid']}"
        )
        return str(org["apiKey"]), str(org["organizationUuid"]), str(partner["partnerUuid"])

    async def register_endpoints(self, api: ApiClient) -> None:
        self.chapter(2, "The integrator registers endpoints (organization key)")
        table = Table("endpoint", "format", "subscribes to", "what it is")
        for e in ENDPOINTS:
            created = await api.post(
                "/v1/endpoints",
                {
                    "url": self.receiver_url + e.path,
                    "eventTypes": e.event_types,
                    "format": e.fmt,
                    "description": e.name,
                },
            )
            e.id = str(created["id"])
            self.routes[e.path].secrets = [str(created["secret"])]
            style = FORMAT_STYLE.get(e.fmt, "white")
            table.add_row(
                e.name, f"[{style}]{e.fmt}[/{style}]", ", ".join(e.event_types), escape(e.story)
            )
        self.console.print(table)
        self.say(
            "[dim]each endpoint got its own secret; below, every line is one HTTP POST that "
            "reached the local receiver: ✓ verified = its signature checked out with that "
            "secret (tidings.receiver), then the wire format, the endpoint, the event type, "
            "the attempt number and the status code the receiver answered[/dim]"
        )

    def delivered(self, name: str, type_name: str) -> bool:
        path = next(e.path for e in ENDPOINTS if e.name == name)
        return any(
            r.path == path and r.status < 300 and r.event is not None and r.event.type == type_name
            for r in self.received
        )

    async def wait_for(self, expect: list[tuple[str, str]]) -> None:
        def missing() -> list[str]:
            return [f"{n} ← {t}" for n, t in expect if not self.delivered(n, t)]

        await self.wait_until(missing)

    async def wait_until(self, missing: Callable[[], list[str]]) -> None:
        """Until `missing()` names nothing, or say what is still missing after a while."""
        deadline = time.monotonic() + WAIT_FOR_DELIVERIES_SECONDS
        while missing():
            remaining = deadline - time.monotonic()
            if remaining <= 0:
                self.say(f"[yellow]still waiting for: {escape(', '.join(missing()))}[/yellow]")
                return
            self.arrived.clear()
            with contextlib.suppress(TimeoutError):
                await asyncio.wait_for(self.arrived.wait(), timeout=min(remaining, 0.5))

    async def wait_until_settled(self, api: ApiClient) -> None:
        """Until no delivery is pending (what is left are retries still scheduled)."""
        deadline = time.monotonic() + 10.0
        while time.monotonic() < deadline:
            page = await api.get("/v1/deliveries", status="pending", limit=1)
            if not page.get("items"):
                return
            await asyncio.sleep(0.2)

    async def event_type(self, api: ApiClient, event_id: str) -> str:
        if event_id not in self.event_types:
            with contextlib.suppress(ClientError):
                event = await api.get(f"/v1/events/{event_id}")
                self.event_types[event_id] = str(event.get("type"))
        return self.event_types.get(event_id, "?")

    async def show_history(self, api: ApiClient) -> None:
        names = {e.id: e for e in ENDPOINTS}
        deliveries = [d async for d in api.paginate("/v1/deliveries", limit=200)]
        deliveries.reverse()  # oldest first reads like the story
        table = Table("event type", "endpoint", "format", "status", "attempts")
        retried: list[dict[str, Any]] = []
        for d in deliveries:
            endpoint = names.get(str(d.get("endpointId")))
            fmt = endpoint.fmt if endpoint else "?"
            style = FORMAT_STYLE.get(fmt, "white")
            attempts = int(d.get("attemptCount") or 0)
            codes = ""
            if attempts > 1 or d.get("status") != "succeeded":
                full = await api.get(f"/v1/deliveries/{d['id']}")
                codes = " → ".join(
                    cell(a.get("statusCode") or a.get("error")) for a in full.get("attempts", [])
                )
                if attempts > 1:
                    retried.append(full)
            table.add_row(
                escape(await self.event_type(api, str(d.get("eventId")))),
                endpoint.name if endpoint else cell(d.get("endpointId")),
                f"[{style}]{fmt}[/{style}]",
                styled_status(d.get("status")),
                f"{attempts}" + (f"  ({codes})" if codes else ""),
            )
        self.console.print(table)
        for full in retried:
            self.say(f"[bold]retried delivery {full['id']}[/bold]:")
            for a in full.get("attempts", []):
                code = a.get("statusCode")
                style = "green" if isinstance(code, int) and 200 <= code < 300 else "red"
                duration = a.get("durationMs")
                took = f" in {duration:.0f} ms" if isinstance(duration, int | float) else ""
                self.say(
                    f"  attempt {a.get('number')} at {short_time(a.get('startedAt'))}: "
                    f"[{style}]{cell(code or a.get('error'))}[/{style}]{took}"
                )
        paused = await api.get(f"/v1/endpoints/{self.endpoint_id('legacy-crm')}")
        self.say(
            f"legacy-crm is now {styled_status(paused.get('status'))} "
            f"(reason: {cell(paused.get('pauseReason'))})"
        )

    async def show_replay(self, api: ApiClient) -> None:
        """Replay every delivery the dashboard got since the story began: the receiver gets
        them again and its deduplication marks each one."""
        endpoint = next(e for e in ENDPOINTS if e.name == "compliance-dashboard")
        before = len(self.received)
        answer = await api.post(
            f"/v1/endpoints/{endpoint.id}/replay",
            {"since": self.started_at, "status": "succeeded"},
        )
        replayed = int(answer.get("replayed", 0))
        self.say(
            f"[bold yellow]↻ replay[/bold yellow] POST /v1/endpoints/{endpoint.id}/replay "
            f"since {self.started_at}, status succeeded: {replayed} deliveries"
        )

        def missing() -> list[str]:
            again = [r for r in self.received[before:] if r.path == endpoint.path]
            left = replayed - len(again)
            return [f"{left} replayed deliveries at {endpoint.name}"] if left > 0 else []

        await self.wait_until(missing)
        duplicates = sum(1 for r in self.received[before:] if r.duplicate)
        self.say(
            f"[dim]{duplicates} of {replayed} marked as duplicates by the receiver, which "
            "deduplicates on the event id. A replay of `failed` deliveries (the default) sends "
            "those that ran out of attempts; `tidings replay DELIVERY_ID` sends one again.[/dim]"
        )

    def endpoint_id(self, name: str) -> str:
        return next(e.id for e in ENDPOINTS if e.name == name)

    async def show_state(self, api: ApiClient) -> None:
        table = Table("GET", "state")
        hidden = {"updatedAt", "lastEventId", "orderId", "ownerId", "entitlementId", "details"}
        for path in (
            f"/v1/orders/{ORDER_ID}/compliance",
            f"/v1/owners/{OWNER_ID}/locks",
            f"/v1/entitlements/{ENTITLEMENT_ID}",
        ):
            try:
                answer = await api.get(path)
            except ClientError as exc:
                table.add_row(path, f"[yellow]{escape(exc.line)}[/yellow]")
                continue
            shown = ", ".join(
                f"{k}={cell(v)}"
                for k, v in answer.items()
                if k not in hidden and not isinstance(v, dict)
            )
            table.add_row(path, escape(shown))
        self.console.print(table)
        self.say(
            "[dim]polling clients read these (with ETag/304) instead of replaying events[/dim]"
        )

    receiver_url = ""
    started_at = ""  # RFC 3339, a second before the first event


async def run_demo(console: Console, keep_running: bool) -> bool:
    """Run the demo; True when it ran to the end, False when interrupted."""
    interrupted = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        with contextlib.suppress(NotImplementedError):
            loop.add_signal_handler(sig, interrupted.set)
    started = time.monotonic()
    with tempfile.TemporaryDirectory(prefix="tidings-demo-") as tmp:
        data_dir = Path(tmp)
        log_handler = _log_to_file(data_dir / "tidings.log")
        platform_key = "tdk_platform_demo_" + secrets.token_urlsafe(16)
        service = EmbeddedService(data_dir, free_port(), platform_key)
        demo = Demo(console, keep_running)
        runner = web.AppRunner(make_app(demo.routes, demo.on_received), access_log=None)
        try:
            console.print(
                "[bold]tidings demo[/bold]: a webhook service, a receiver and a short story, "
                "all local (Ctrl-C stops)"
            )
            await runner.setup()
            receiver_port = free_port()
            await web.TCPSite(runner, "127.0.0.1", receiver_port).start()
            demo.receiver_url = f"http://127.0.0.1:{receiver_port}"
            finished = await _until_interrupted(service.start(), interrupted)
            if finished:
                console.print(
                    f"[dim]service on {service.url} (SQLite in {tmp}, retries after "
                    f"{', '.join(f'{s:g}' for s in RETRY_SCHEDULE)} s), receiver on "
                    f"{demo.receiver_url}[/dim]"
                )
                finished = await _until_interrupted(
                    demo.run(service.url, platform_key), interrupted
                )
        finally:
            await runner.cleanup()
            await service.stop()
            logging.getLogger().removeHandler(log_handler)
            log_handler.close()
    if finished:
        console.print(
            f"\n[bold green]done[/bold green] in {time.monotonic() - started:.1f} s: "
            f"{len(demo.received)} requests received, "
            f"{sum(1 for r in demo.received if r.verified)} with a verified signature, in the "
            "novatrade, dlt and standard formats.\nNext: the README's five minutes "
            "(`tidings serve --dev`, `tidings listen --key`), `tidings --help`."
        )
    else:
        console.print("\n[bold]demo stopped[/bold] (Ctrl-C); everything it started is shut down")
    return finished


async def _until_interrupted(work: Awaitable[Any], interrupted: asyncio.Event) -> bool:
    task = asyncio.ensure_future(work)
    waiter = asyncio.create_task(interrupted.wait())
    try:
        await asyncio.wait([task, waiter], return_when=asyncio.FIRST_COMPLETED)
    finally:
        waiter.cancel()
    if task.done():
        task.result()
        return True
    task.cancel()
    with contextlib.suppress(asyncio.CancelledError):
        await task
    return False


def _log_to_file(path: Path) -> logging.Handler:
    """Server logs go to a file in the demo's directory: the screen is for the story."""
    handler = logging.FileHandler(path)
    handler.setFormatter(logging.Formatter("%(asctime)s %(levelname)s %(name)s %(message)s"))
    root = logging.getLogger()
    root.addHandler(handler)
    logging.captureWarnings(True)
    root.setLevel(logging.INFO)
    return handler


@app.command("demo")
def demo(
    keep_running: Annotated[
        bool,
        typer.Option("--keep-running", help="Keep the service up after the story (Ctrl-C stops)."),
    ] = False,
) -> None:
    """Watch tidings work: service, receiver, endpoints in three formats, retries, history."""
    from tidings.assembly import install_uvloop

    install_uvloop()
    console = Console(highlight=False)
    try:
        asyncio.run(run_demo(console, keep_running))
    except ClientError as exc:
        typer.echo(exc.line, err=True)
        raise typer.Exit(1) from None
