"""The body of a delivery: the JSON envelope, or a Slack-compatible ``{"text": ...}``."""

from __future__ import annotations

import json
from datetime import datetime
from typing import Any


def envelope(uuid: str, event: str, created_at: datetime, payload: dict[str, Any]
             ) -> dict[str, Any]:
    """What a ``json`` hook receives: the notification's id (the same on every attempt and
    replay: de-duplicate on it), its event, when the change happened, and its data."""
    return {"id": uuid, "event": event, "created_at": created_at.isoformat() + "Z",
            "data": payload}


def body(format: str, uuid: str, event: str, created_at: datetime,
         payload: dict[str, Any]) -> bytes:
    data = ({"text": slack_text(event, payload)} if format == "slack"
            else envelope(uuid, event, created_at, payload))
    return json.dumps(data, sort_keys=True, separators=(",", ":")).encode("utf-8")


def _names(items: list[str], more: int) -> str:
    text = ", ".join(items)
    return f"{text} and {more} more" if more > 0 else text


def slack_text(event: str, p: dict[str, Any]) -> str:
    """One line a chat channel can show."""
    if event in ("mark.opened", "mark.closed"):
        marks = p.get("marks", [])
        shown = [f"{m['node']} (cause {m['cause']})" for m in marks]
        verb = "opened" if event == "mark.opened" else "closed"
        return (f"chainml: {p.get('count', len(marks))} retest mark(s) {verb}: "
                f"{_names(shown, p.get('count', len(marks)) - len(marks))}")
    if event == "run.recorded":
        return (f"chainml: {p.get('node')} {p.get('version')} {p.get('outcome')}"
                + (f" ({p['suite']})" if p.get("suite") else "")
                + f", recorded by {p.get('actor')}")
    if event == "deploy.done":
        nodes = [f"{n['name']}@{n['version']}" if n.get("version")
                 else f"{n['name']} (undeployed)" for n in p.get("nodes", [])]
        return f"chainml: {p.get('actor')} deployed to {p.get('env')}: {', '.join(nodes)}"
    if event == "check.changed":
        if p.get("ok"):
            return "chainml: the gate passes again (chainml check is green)."
        failing = list(p.get("failing", []))
        count = int(p.get("failing_count", len(failing)))
        return (f"chainml: the gate fails: {count} node(s) untested or failing: "
                f"{_names(failing, count - len(failing))}")
    return f"chainml: {event}"
