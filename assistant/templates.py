"""Prompt templates: Jinja files in assistant/prompts/ (also reachable as ./prompts), rendered
strictly so that a missing variable fails loudly instead of sending the model a hole."""

from __future__ import annotations

from functools import lru_cache


@lru_cache(maxsize=1)
def _environment():
    from jinja2 import Environment, PackageLoader, StrictUndefined

    return Environment(loader=PackageLoader("assistant", "prompts"), undefined=StrictUndefined,
                       keep_trailing_newline=False, autoescape=False)


def render(name: str, **variables: object) -> str:
    """Render prompts/<name>.j2 with these variables; StrictUndefined raises on a missing one."""
    return _environment().get_template(f"{name}.j2").render(**variables).strip()
