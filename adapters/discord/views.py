"""Persistent components and modals.

A button or select the bot posts carries `itsm:{action}:{value}` as its custom id, and one
`DynamicItem` class registered at start-up matches that pattern, so a click on a message
posted long before the last restart still reaches the core. Modals carry
`itsmf:{form}:{value}` for the same reason; their submissions are read from the raw payload.
"""

from __future__ import annotations

import logging
import re
import secrets
from collections import OrderedDict
from typing import Any, Protocol

import discord
from discord.ui import DynamicItem

from bot import markup
from bot.model import Form, FormField

log = logging.getLogger(__name__)

CUSTOM_ID_MAX = 100
MODAL_TITLE_MAX = 45
MODAL_LABEL_MAX = 45
MODAL_FIELDS_MAX = 5
TEXT_INPUT_MAX = 4000
COMPONENT_TEMPLATE = re.compile(r"itsm:(?P<action>[^:~]+)(?:~\d+)?:(?P<value>.*)", re.DOTALL)
REOPEN_TEMPLATE = re.compile(r"itsmr:(?P<token>[\w-]+)")
FORM_ID = re.compile(r"itsmf:(?P<form>[^:]+):(?P<value>.*)", re.DOTALL)
FORM_TOKEN = "itsmf~"


class Surface(Protocol):
    """What the persistent items hand their interactions to (the running DiscordSurface)."""

    async def on_component(
        self, interaction: discord.Interaction, action: str, value: str
    ) -> None: ...

    async def on_reopen(self, interaction: discord.Interaction, token: str) -> None: ...


def surface_of(interaction: discord.Interaction) -> Surface:
    return interaction.client.surface  # type: ignore[attr-defined]


def custom_id_for(action: str, value: str, seen: set[str]) -> str | None:
    """`itsm:{action}:{value}`, unique within one message; None if it cannot fit in 100."""
    if not action or ":" in action or "~" in action:
        return None
    custom_id, n = f"itsm:{action}:{value}", 1
    while custom_id in seen:
        n += 1
        custom_id = f"itsm:{action}~{n}:{value}"
    if len(custom_id) > CUSTOM_ID_MAX:
        return None
    seen.add(custom_id)
    return custom_id


class CoreComponent(DynamicItem[discord.ui.Item[Any]], template=COMPONENT_TEMPLATE):
    """Any button or select whose custom id names a core action."""

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> CoreComponent:
        return cls(item)

    async def callback(self, interaction: discord.Interaction) -> None:
        match = COMPONENT_TEMPLATE.fullmatch(self.custom_id)
        assert match is not None  # the template matched before this item was made
        await surface_of(interaction).on_component(interaction, match["action"], match["value"])


class ReopenForm(DynamicItem[discord.ui.Button[Any]], template=REOPEN_TEMPLATE):
    """The button under refused form answers: opens the form again, filled with them."""

    def __init__(self, token: str, label: str = "Fix my answers") -> None:
        super().__init__(
            discord.ui.Button(
                label=label, style=discord.ButtonStyle.primary, custom_id=f"itsmr:{token}"
            )
        )
        self.token = token

    @classmethod
    async def from_custom_id(
        cls, interaction: discord.Interaction, item: discord.ui.Item[Any], match: re.Match[str], /
    ) -> ReopenForm:
        return cls(match["token"])

    async def callback(self, interaction: discord.Interaction) -> None:
        await surface_of(interaction).on_reopen(interaction, self.token)


# --- Modals --------------------------------------------------------------------------------


class FormMemory:
    """Forms recently shown, with the answers last given, so a modal can be reopened filled.

    In memory only (bounded): after a restart the member simply starts the form again.
    """

    def __init__(self, size: int = 500) -> None:
        self.size = size
        self._entries: OrderedDict[str, tuple[Form, dict[str, str]]] = OrderedDict()

    def put(self, key: str, form: Form, values: dict[str, str] | None = None) -> str:
        self._entries[key] = (form, dict(values or {}))
        self._entries.move_to_end(key)
        while len(self._entries) > self.size:
            self._entries.popitem(last=False)
        return key

    def new(self, form: Form, values: dict[str, str] | None = None) -> str:
        return self.put(secrets.token_urlsafe(9), form, values)

    def get(self, key: str) -> tuple[Form, dict[str, str]] | None:
        return self._entries.get(key)


class FormModal(discord.ui.Modal):
    """A core Form as a modal. Submissions are answered by the surface's listener, not here."""

    def __init__(self, form: Form, custom_id: str, values: dict[str, str] | None = None) -> None:
        title = markup.truncate(markup.plain(form.title), MODAL_TITLE_MAX) or "Form"
        super().__init__(title=title, custom_id=custom_id, timeout=900)
        values = values or {}
        if len(form.fields) > MODAL_FIELDS_MAX:
            log.error("form %s has %d fields; Discord shows 5", form.id, len(form.fields))
        for form_field in form.fields[:MODAL_FIELDS_MAX]:
            self.add_item(_input(form_field, values.get(form_field.id, form_field.default)))


def modal_custom_id(form: Form, memory: FormMemory) -> str:
    """`itsmf:{form}:{value}` (works after a restart), or a remembered token if too long."""
    custom_id = f"itsmf:{form.id}:{form.value}"
    if len(custom_id) <= CUSTOM_ID_MAX and ":" not in form.id:
        memory.put(custom_id, form)
        return custom_id
    return FORM_TOKEN + memory.new(form)


def build_modal(form: Form, memory: FormMemory, values: dict[str, str] | None = None) -> FormModal:
    return FormModal(form, modal_custom_id(form, memory), values)


def _input(form_field: FormField, default: str) -> discord.ui.Item[Any]:
    label = markup.truncate(markup.plain(form_field.label), MODAL_LABEL_MAX) or form_field.id
    if form_field.kind == "select" and form_field.options:
        options = [
            discord.SelectOption(
                label=markup.truncate(o.label, 100),
                value=o.value[:100],
                description=markup.truncate(o.description, 100) or None,
                default=o.value == default,
            )
            for o in form_field.options[:25]
        ]
        select: discord.ui.Select[Any] = discord.ui.Select(
            custom_id=form_field.id,
            options=options,
            placeholder=markup.truncate(form_field.placeholder, 150) or None,
            required=form_field.required,
            min_values=1 if form_field.required else 0,
        )
        return discord.ui.Label(text=label, component=select)
    style = (
        discord.TextStyle.paragraph if form_field.kind == "paragraph" else discord.TextStyle.short
    )
    limit = max(1, min(form_field.max_length, TEXT_INPUT_MAX))
    return discord.ui.TextInput(
        label=label,
        custom_id=form_field.id,
        style=style,
        placeholder=markup.truncate(form_field.placeholder, 100) or None,
        default=default[:limit] or None,
        required=form_field.required,
        max_length=limit,
    )


def modal_values(components: list[dict[str, Any]]) -> dict[str, str]:
    """Field id -> answer from a modal submit payload (action rows or labels, inputs or selects)."""
    values: dict[str, str] = {}
    for component in components:
        kind = component.get("type")
        if kind == 1:
            values.update(modal_values(component.get("components", [])))
        elif kind == 18 and isinstance(component.get("component"), dict):
            values.update(modal_values([component["component"]]))
        elif component.get("custom_id"):
            if "values" in component:
                values[component["custom_id"]] = ",".join(component["values"])
            else:
                values[component["custom_id"]] = str(component.get("value") or "")
    return values
