"""The `[web]` section: where the moderators' web console listens and how it is reached."""

from __future__ import annotations

from datetime import timedelta

from pydantic import Field, field_validator

from bot.config import Duration, Section


class WebSettings(Section):
    enabled: bool = False
    # HOST:PORT to listen on. Keep it on 127.0.0.1 behind a reverse proxy that adds TLS.
    listen: str = Field(default="127.0.0.1:8080", pattern=r"^[^\s:]*:\d{1,5}$")
    # The address members' browsers use (https://bot.example.org), for sign-in links and
    # calendar URLs; empty: http://LISTEN, right only when browser and bot share a machine.
    public_url: str = Field(default="", pattern=r"^(https?://[^\s/]+(/[^\s]*)?)?$")
    session: Duration = timedelta(hours=12)
    link_valid: Duration = timedelta(minutes=10)

    @field_validator("public_url")
    @classmethod
    def _no_trailing_slash(cls, value: str) -> str:
        return value.rstrip("/")

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
