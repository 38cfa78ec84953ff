"""A Post as JSON and back, for rows that keep a post until it is sent (the outbox).

Attachments travel as base64; a timestamp as ISO 8601. A row written before a field existed
(a post queued before an upgrade) loads with that field's default: `thread_of` "", in the
channel.
"""

from __future__ import annotations

import base64
import dataclasses
import json
from datetime import datetime
from typing import Any

from bot.model import Attachment, Button, Field, Post, Select, SelectOption


def dump_post(post: Post) -> str:
    data = dataclasses.asdict(post)
    data["timestamp"] = post.timestamp.isoformat() if post.timestamp else None
    data["attachments"] = [
        {**a, "data": base64.b64encode(a["data"]).decode()} for a in data["attachments"]
    ]
    return json.dumps(data)


def load_post(payload: str) -> Post:
    data = json.loads(payload)
    data["timestamp"] = datetime.fromisoformat(data["timestamp"]) if data["timestamp"] else None
    data["fields"] = [Field(**f) for f in data["fields"]]
    data["buttons"] = [Button(**b) for b in data["buttons"]]
    data["selects"] = [_select(s) for s in data["selects"]]
    data["attachments"] = [
        Attachment(**{**a, "data": base64.b64decode(a["data"])}) for a in data["attachments"]
    ]
    return Post(**data)


def _select(data: dict[str, Any]) -> Select:
    return Select(**{**data, "options": [SelectOption(**o) for o in data["options"]]})
