"""What a host app embeds: the sync and asyncio clients of a broker, and an embedded broker
with local runners when no endpoint is given."""
