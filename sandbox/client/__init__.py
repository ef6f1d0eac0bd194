"""What a host app embeds: the sync and asyncio clients of a broker, and an embedded broker
with local runners when no endpoint is given."""

from sandbox.client.aio import AsyncClient, AsyncClientSession, AsyncHandle
from sandbox.client.sync import Client, ClientSession, Handle
from sandbox.link import CurveClient

__all__ = ["AsyncClient", "AsyncClientSession", "AsyncHandle", "Client", "ClientSession",
           "CurveClient", "Handle"]
