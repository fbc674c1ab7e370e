"""What the A1111 routes share for the life of the web app: the daemon's services, the requests in flight and
the persisted options."""

from __future__ import annotations

import asyncio
from dataclasses import dataclass

from aiohttp import web

from cauldrond.a1111.catalogue import Checkpoint, find_checkpoint, list_checkpoints
from cauldrond.a1111.options import StoredOptions, load_options
from cauldrond.a1111.tracker import RequestTracker
from cauldrond.services import Services


@dataclass
class A1111State:
    services: Services
    tracker: RequestTracker
    options: StoredOptions

    @classmethod
    def start(cls, services: Services) -> A1111State:
        """Read the persisted options; a checkpoint chosen through the API replaces the default_model setting."""
        options = load_options(services.settings.data_dir)
        if options.default_model is not None:
            services.experiments.default_model = options.default_model
        return cls(services, RequestTracker(services.events, services.store), options)

    async def checkpoints(self) -> list[Checkpoint]:
        settings = self.services.settings
        return await asyncio.to_thread(list_checkpoints, self.services.providers, settings.resolved_models_dir)

    async def checkpoint(self, text: str) -> Checkpoint | None:
        return find_checkpoint(await self.checkpoints(), text)


A1111_STATE: web.AppKey[A1111State] = web.AppKey("a1111", A1111State)


def state_of(request: web.Request) -> A1111State:
    return request.app[A1111_STATE]
