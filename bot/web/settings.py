"""The `[web]` section: where the moderators' web console listens and how it is reached."""

from __future__ import annotations

from typing import Annotated

from msgspec import Meta
from msgspec.structs import force_setattr

from bot.config import Duration, Section


class WebSettings(Section):
    enabled: bool = False
    # HOST:PORT to listen on. Keep it on 127.0.0.1 behind a reverse proxy that adds TLS.
    listen: Annotated[str, Meta(pattern=r"^[^\s:]*:\d{1,5}$")] = "127.0.0.1:8080"
    # The address members' browsers use (https://bot.example.org), for sign-in links and
    # calendar URLs; empty: http://LISTEN, right only when browser and bot share a machine.
    public_url: Annotated[str, Meta(pattern=r"^(https?://[^\s/]+(/[^\s]*)?)?$")] = ""
    session: Duration = Duration(hours=12)
    link_valid: Duration = Duration(minutes=10)

    def __post_init__(self) -> None:
        # Links are made as public_url + "/path": one slash, however the address was written.
        force_setattr(self, "public_url", self.public_url.rstrip("/"))

    @property
    def host(self) -> str:
        return self.listen.rpartition(":")[0] or "127.0.0.1"

    @property
    def port(self) -> int:
        return int(self.listen.rpartition(":")[2])

    def base_url(self, port: int | None = None) -> str:
        """The public address, or this machine's when none is set (`port`: the one bound,
        for a listen port of 0)."""
        if self.public_url:
            return self.public_url
        return f"http://{self.host}:{port if port is not None else self.port}"
