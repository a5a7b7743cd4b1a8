"""The text and HTML bodies of notification emails, from Jinja2 templates (autoescaped)."""

from __future__ import annotations

from pathlib import Path

from jinja2 import Environment, FileSystemLoader, StrictUndefined, select_autoescape

from models.notification import EmailContent, EmailFacts

_ENVIRONMENT = Environment(
    loader=FileSystemLoader(Path(__file__).resolve().parent / "templates"),
    # A practice's name is text an admin typed: escaped in HTML, whatever it holds.
    autoescape=select_autoescape(["html"]),
    undefined=StrictUndefined,
    keep_trailing_newline=True,
)


def render(content: EmailContent, facts: EmailFacts) -> tuple[str, str]:
    """(plain text, HTML) of one email."""
    values = {"content": content, "facts": facts}
    text = _ENVIRONMENT.get_template("notification.txt").render(values)
    html = _ENVIRONMENT.get_template("notification.html").render(values)
    return text, html


def render_page(name: str, **values: object) -> str:
    """A small HTML page of ours (e.g. the unsubscribe confirmation)."""
    return _ENVIRONMENT.get_template(name).render(values)
