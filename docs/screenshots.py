"""Screenshots of the web console: one PNG per page of its navigation, for the README.

Runs the offline demo in this process (every feature's demo content on the console, as
`itsm-bot demo` seeds it), then adds what a living community has: a poll with votes, the BSM
maturity survey answered by a dozen members, RSVPs and a prompt suggestion waiting for review.
It signs in with a `/web` link in Chromium and saves docs/web-<page>.png for each page the
navigation lists (1280x900 viewport, the full page), and for the polls and events pages also
the page one click further (a survey's results and cross-tab, one event with its RSVPs).

    .venv/bin/python docs/screenshots.py [--out docs] [--chromium /usr/bin/chromium]

Nothing reaches the internet: the demo's feeds are served from 127.0.0.1. Emoji in titles
need a colour emoji font (Debian: fonts-noto-color-emoji), or they show as empty boxes.
"""

from __future__ import annotations

import argparse
import asyncio
import random
import re
import shutil
import tempfile
from pathlib import Path

from playwright.async_api import Page, async_playwright

from adapters.console import Console
from bot import config as configuration
from bot.app import App
from bot.cli import DEMO_MODERATOR, sections
from bot.features import all_features

HERE = Path(__file__).resolve().parent
VIEWPORT = {"width": 1280, "height": 900}
# The demo's console channel, named and placed as a chapter would configure it.
COMMUNITY = {
    "name": "itSMF demo chapter",
    "timezone": "Europe/London",
    "workspaces": ["console:demo"],
    "channels": ["console:demo:general"],
}
MEMBERS = [f"member{n}" for n in range(1, 13)]
# Pages one click further that show what a list cannot (page -> (file suffix, link)).
OPENED = {
    "polls": ("survey", "BSM maturity survey"),
    "events": ("event", "Service Desk & SLM Regional Seminar"),
}
# What members say they did for today's prompt.
DONE = [
    ("member1", "Asked the finance lead what a good month-end looks like from their side"),
    ("member2", "Sat with the service desk for an hour and wrote down every workaround"),
    ("member5", "Thanked the facilities team for the quick fix to the meeting room screens"),
]
# Buttons that move around a survey card rather than answer it.
NOT_ANSWERS = {"Back", "Skip", "Take the survey"}
_CARD = re.compile(r"^#(\d+)(?: \(edited\))? \[only (\S+) sees this\]$")
_BUTTONS = re.compile(r"\[([^\]]+)\]")


class Demo:
    """The demo's console, with what it printed kept to find cards and their buttons."""

    def __init__(self, app: App, files: Path) -> None:
        self.out: list[str] = []
        self.console = Console(app, write=self.out.append, files=files)

    async def say(self, line: str) -> list[str]:
        start = len(self.out)
        await self.console.handle(line)
        return "\n".join(self.out[start:]).splitlines()

    def public_with(self, button: str) -> list[int]:
        """The numbers of the public messages that carry a button."""
        found: list[int] = []
        number = 0
        for line in "\n".join(self.out).splitlines():
            header = re.match(r"^#(\d+)(?: \(edited\))? \[public\]", line)
            if header:
                number = int(header.group(1))
            elif number and line.startswith("  [") and f"[{button}]" in line:
                found.append(number)
        return sorted(set(found))


def last_card(lines: list[str], member: str) -> tuple[int, list[str]] | None:
    """The member's private card among what was just printed: its number and buttons."""
    card: tuple[int, list[str]] | None = None
    number = 0
    for line in lines:
        header = _CARD.match(line)
        if header:
            number = int(header.group(1)) if header.group(2) == member else 0
        elif number and line.startswith("  ["):
            card = (number, _BUTTONS.findall(line))
    return card


async def answer_survey(demo: Demo, invitation: int, member: str, pick: random.Random) -> None:
    """Open the survey from its public post and answer each question with a button."""
    card = last_card(await demo.say(f"@{member} click {invitation} Take the survey"), member)
    for _ in range(30):  # a survey has at most a few dozen questions
        if card is None:
            return
        number, buttons = card
        answers = [b for b in buttons if b not in NOT_ANSWERS]
        if not answers:
            return
        card = last_card(await demo.say(f"@{member} click {number} {pick.choice(answers)}"), member)  # fmt: skip


async def living_community(demo: Demo) -> None:
    """What the demo does not seed: votes, survey answers, RSVPs, a suggestion to review."""
    pick = random.Random(2026)  # the same pictures at every run
    mod = f"@{DEMO_MODERATOR}!"
    await demo.say(f'{mod} /poll create "Which ITIL practice needs most love this year?" "Incident" "Change" "Problem" "Service level"')  # fmt: skip
    (poll,) = demo.public_with("Problem")[-1:]
    for member in MEMBERS:
        await demo.say(f"@{member} click {poll} {pick.choice(['Incident', 'Change', 'Problem', 'Service level'])}")  # fmt: skip
    await demo.say(f"{mod} /survey start bsm-maturity")
    (invitation,) = demo.public_with("Take the survey")[-1:]
    for member in MEMBERS:
        await answer_survey(demo, invitation, member, pick)
    for event in demo.public_with("Going")[:2]:
        for member in pick.sample(MEMBERS, 7):
            await demo.say(f"@{member} click {event} {pick.choice(['Going', 'Interested', 'Going + remind me'])}")  # fmt: skip
    await demo.say(f"{mod} /justdoit today")
    for member, did in DONE:
        await demo.say(f'@{member} /justdoit answer "{did}"')
    await demo.say('@member3 /justdoit suggest "Ask one business stakeholder which IT report they never read, and stop sending it." competency=influence')  # fmt: skip


async def shoot(page: Page, base: str, link: str, out: Path) -> list[Path]:
    await page.goto(link)
    await page.click("#sign-in")
    await page.wait_for_load_state()
    nav = page.locator("header nav a")
    paths = [await nav.nth(i).get_attribute("href") or "" for i in range(await nav.count())]
    saved: list[Path] = []
    for path in paths:
        await page.goto(base + path)
        name = path.strip("/").replace("/", "-")
        saved.append(await save(page, out / f"web-{name}.png"))
        if name in OPENED:
            suffix, link = OPENED[name]
            await page.get_by_role("link", name=link).first.click()
            await page.wait_for_load_state()
            saved.append(await save(page, out / f"web-{name}-{suffix}.png"))
    return saved


async def save(page: Page, target: Path) -> Path:
    await page.screenshot(path=str(target), full_page=True)
    return target


async def main(out: Path, chromium: str) -> None:
    config = configuration.model(sections()).model_validate(
        {"web": {"enabled": True, "listen": "127.0.0.1:0"}, "community": [COMMUNITY]}
    )
    with tempfile.TemporaryDirectory(prefix="itsm-bot-shots-") as tmp:
        async with App.running(config, all_features(), db_path=str(Path(tmp) / "demo.db")) as app:  # fmt: skip
            demo = Demo(app, Path(tmp) / "files")
            for feature in app.features.values():
                await feature.seed_demo(demo.console.channel)
            await demo.console.settle()
            await living_community(demo)
            # RSVP counts are edited into the announcements after a short debounce: let
            # them go out, so the Delivery page shows a settled outbox.
            await asyncio.sleep(app.outbox.settings.edit_debounce + 0.5)
            await demo.console.settle()
            web = app.features["web"]
            community = await app.communities.of(demo.console.channel)
            link = await web.sign_in_url(demo.console.user(DEMO_MODERATOR), community.id, True)  # type: ignore[attr-defined]
            async with async_playwright() as playwright:
                browser = await playwright.chromium.launch(executable_path=chromium)
                page = await browser.new_page(viewport=VIEWPORT)  # type: ignore[arg-type]
                for saved in await shoot(page, web.base_url, link, out):  # type: ignore[attr-defined]
                    print(
                        saved.relative_to(out.parent) if saved.is_relative_to(out.parent) else saved
                    )  # noqa: T201
                await browser.close()


def arguments() -> argparse.Namespace:
    parser = argparse.ArgumentParser(description=__doc__.splitlines()[0])
    parser.add_argument("--out", type=Path, default=HERE, help="folder for the PNGs (docs/)")
    parser.add_argument(
        "--chromium",
        default=shutil.which("chromium") or shutil.which("chromium-browser") or "/usr/bin/chromium",
        help="the Chromium to drive (Debian: apt-get install chromium)",
    )
    return parser.parse_args()


if __name__ == "__main__":
    args = arguments()
    args.out.mkdir(parents=True, exist_ok=True)
    asyncio.run(main(args.out, args.chromium))
