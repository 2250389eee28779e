"""The files a billing entity names (its logo, its PDF template), read when the catalog file is
checked and kept in the catalog version: a stored version renders the same documents wherever it is
read, and the API never opens a path a catalog names."""

from __future__ import annotations

import base64
from pathlib import Path
from typing import Any

from .identifiers import MAX_LOGO_BYTES, MAX_TEMPLATE_BYTES, logo_problem, media_type_of, template_problem
from .validate import Problem


def entity_paths(document: dict[str, Any]) -> list[tuple[str, dict[str, Any]]]:
    """(path, entity mapping) of the default entity and of each of `billing_entities`."""
    found: list[tuple[str, dict[str, Any]]] = []
    if isinstance(document.get("billing_entity"), dict):
        found.append(("billing_entity", document["billing_entity"]))
    extra = document.get("billing_entities")
    if isinstance(extra, list):
        found += [(f"billing_entities[{index}]", item) for index, item in enumerate(extra) if isinstance(item, dict)]
    return found


def attach_entity_files(document: dict[str, Any], folder: Path) -> list[Problem]:
    """Read each entity's `logo` and `pdf_template` (relative to the catalog's folder, inside it) into
    `logo_data` and `pdf_template_text`, in place; every problem with its path."""
    problems: list[Problem] = []
    for path, entity in entity_paths(document):
        logo = entity.get("logo")
        if isinstance(logo, str) and logo:
            content, problem = _read(folder, logo, MAX_LOGO_BYTES)
            media_type = media_type_of(logo)
            if problem is None and media_type is None:
                problem = "must name a .png or .svg file"
            if problem is None and content is not None and media_type is not None:
                problem = logo_problem(content, media_type)
            if problem is not None or content is None or media_type is None:
                problems.append(Problem(f"{path}.logo", f"{logo}: {problem}"))
            else:
                entity["logo_data"] = f"data:{media_type};base64,{base64.b64encode(content).decode()}"
        template = entity.get("pdf_template")
        if isinstance(template, str) and template:
            content, problem = _read(folder, template, MAX_TEMPLATE_BYTES)
            text = None
            if content is not None:
                try:
                    text = content.decode("utf-8")
                except UnicodeDecodeError:
                    problem = "is not UTF-8 text"
            if text is not None:
                problem = template_problem(text)
            if problem is not None or text is None:
                problems.append(Problem(f"{path}.pdf_template", f"{template}: {problem}"))
            else:
                entity["pdf_template_text"] = text
    return problems


def _read(folder: Path, name: str, limit: int) -> tuple[bytes | None, str | None]:
    """The file's bytes, or why not: it must be inside the catalog's folder and at most `limit` bytes."""
    base = folder.resolve()
    target = (base / name).resolve()
    if not target.is_relative_to(base):
        return None, "must be inside the catalog's folder"
    try:
        if not target.is_file():
            return None, "no such file"
        if target.stat().st_size > limit:
            return None, f"is larger than {limit // 1024} KiB"
        return target.read_bytes(), None
    except OSError as exc:
        return None, f"cannot be read ({exc.strerror})"
