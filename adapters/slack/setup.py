"""Reading the Slack surface's set-up: the `[slack]` settings and the environment's tokens
(never logged) become a `SlackSurface`, or a `ConfigError` that says what to set."""

from __future__ import annotations

from collections.abc import Mapping

from adapters.slack.settings import SlackSettings
from adapters.slack.surface import SlackSurface, Tokens
from bot.app import App
from bot.errors import ConfigError


def create(core: App, settings: SlackSettings, env: Mapping[str, str]) -> SlackSurface:
    """Build the surface from configuration and the environment's tokens (never logged)."""
    bot_token = env.get("SLACK_BOT_TOKEN", "")
    app_token = env.get("SLACK_APP_TOKEN", "")
    secret = env.get("SLACK_SIGNING_SECRET", "")
    creds = None
    if settings.distribution:  # each workspace's token comes from its installation
        from adapters.slack.distribution import credentials

        creds = credentials(settings.client_id, env)
    elif not bot_token.startswith("xoxb-"):
        raise ConfigError("SLACK_BOT_TOKEN must be set to the app's bot token (xoxb-...).")
    mode = settings.mode
    if mode == "socket" and not app_token and secret:
        mode = "http"  # only a signing secret given: the deployment is behind a URL
    if mode == "socket" and not app_token.startswith("xapp-"):
        raise ConfigError(
            "Socket Mode needs SLACK_APP_TOKEN (an app-level token, xapp-..., with the "
            "connections:write scope); or set SLACK_SIGNING_SECRET for HTTP mode."
        )
    if mode == "http" and not secret:
        raise ConfigError("HTTP mode needs SLACK_SIGNING_SECRET (Basic Information page).")
    port = settings.port
    if env.get("PORT"):
        try:
            port = int(env["PORT"])
        except ValueError:
            raise ConfigError(f"PORT must be a number, not {env['PORT']!r}") from None
    api_url = env.get("SLACK_API_URL") or settings.api_url
    if not api_url.endswith("/"):
        api_url += "/"
    tokens = Tokens(bot_token, app_token, secret)
    return SlackSurface(core, settings, tokens, api_url, mode, port, creds)
