"""A delivery worker process built from TIDINGS_* like `tidings worker`, for the crash tests
while `tidings.publishing` (needed by `python -m tidings worker`) has not landed: it uses the
service's own `build_worker` wiring, with the tests' stand-in publisher when the real one is
missing. Stops on SIGTERM/SIGINT like the real command."""

from __future__ import annotations

import asyncio
import signal
from typing import Any

from tidings.assembly import build_worker, open_ready_store
from tidings.catalog import Catalog
from tidings.config import Settings
from tidings.log_setup import configure_logging


async def main() -> None:
    settings = Settings.from_env()
    configure_logging(settings.log_format, settings.log_level)
    store = await open_ready_store(settings, migrate=False)
    catalog = Catalog.load_default()
    publisher: Any
    try:
        from tidings.publishing import Publisher  # type: ignore[import-not-found]

        publisher = Publisher(store, catalog)
    except ImportError:
        from tests.integration.delivery.helpers import StorePublisher

        publisher = StorePublisher(store, catalog)
    stop = asyncio.Event()
    loop = asyncio.get_running_loop()
    for sig in (signal.SIGINT, signal.SIGTERM):
        loop.add_signal_handler(sig, stop.set)
    worker = build_worker(settings, store, catalog, publisher)
    await store.listen()
    print("worker ready", flush=True)
    try:
        await worker.run(stop)
    finally:
        await store.close()


if __name__ == "__main__":
    asyncio.run(main())
