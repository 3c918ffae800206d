"""Workflow documents: their stored (canonical) form, and splitting an import body."""

from __future__ import annotations

import json
import re
from typing import Any

from flowplane.errors import DocumentError, InvalidInput
from flowplane.ids import new_id
from flowplane.model.document import Workflow
from flowplane.model.yaml import MAX_DOCUMENT_BYTES, load_document

__all__ = ["canonical_document", "draft_source", "in_namespace", "split_documents"]

_DOC_SEPARATOR = re.compile(r"^---[ \t]*(?:#.*)?$", re.M)


def canonical_document(wf: Workflow) -> dict[str, Any]:
    """Return the stored form of ``wf``: name, namespace, then the fields that were set
    (``nodes`` always, empty in a draft)."""
    data = wf.to_document()
    for key in ("name", "namespace", "version"):
        data.pop(key, None)
    data.setdefault("nodes", [])
    return {"name": wf.name, "namespace": wf.namespace, **data}


def draft_source(document: dict[str, Any] | str | bytes) -> dict[str, Any] | str | bytes:
    """``document``, given a generated name (``draft-<id>``) when it has none.

    A draft may start from ``{}``: the name is what keeps it apart from other workflows of
    its namespace, so one is made up; the caller can rename it (an EditOps ``set``).
    A text document that has a name is returned as is (its errors keep their lines).
    """
    loaded = document if isinstance(document, dict) else load_document(document)
    if loaded.get("name") is not None:
        return document
    return {**loaded, "name": f"draft-{new_id()}"}


def split_documents(text: str | bytes, *, source: str = "<request>") -> list[dict[str, Any]]:
    """Split an import body into workflow documents.

    Accepts a JSON array of documents, a JSON/YAML object ``{"workflows": [...]}``, one
    document, or a YAML stream of documents separated by ``---`` lines.

    Raises:
        DocumentError: a part cannot be parsed.
    """
    if isinstance(text, bytes):
        try:
            text = text.decode("utf-8-sig")
        except UnicodeDecodeError as exc:
            raise DocumentError(f"{source}: body is not valid UTF-8: {exc.reason}") from None
    stripped = text.lstrip()
    if stripped.startswith("["):
        return _json_list(text, source)
    chunks = [c for c in _DOC_SEPARATOR.split(text) if _has_content(c)]
    if len(chunks) == 1:
        doc = load_document(chunks[0], source=source)
        wrapped = doc.get("workflows")
        if isinstance(wrapped, list) and set(doc) == {"workflows"}:
            return _checked_list(wrapped, source)
        return [doc]
    return [load_document(c, source=f"{source} document {i}") for i, c in enumerate(chunks)]


def _has_content(chunk: str) -> bool:
    lines = (line.strip() for line in chunk.splitlines())
    return any(line and not line.startswith("#") and line != "..." for line in lines)


def _json_list(text: str, source: str) -> list[dict[str, Any]]:
    if len(text) > MAX_DOCUMENT_BYTES * 16:
        raise DocumentError(f"{source}: the import is too large")
    try:
        data = json.loads(text)
    except (json.JSONDecodeError, RecursionError) as exc:
        raise DocumentError(f"{source}: invalid JSON: {exc}") from None
    return _checked_list(data, source)


def _checked_list(items: Any, source: str) -> list[dict[str, Any]]:
    if not isinstance(items, list) or not all(isinstance(i, dict) for i in items):
        raise DocumentError(f"{source}: expected a list of workflow documents")
    # Re-check each document with the same limits as a single upload.
    return [
        load_document(json.dumps(i), source=f"{source} document {n}") for n, i in enumerate(items)
    ]


def in_namespace(wf: Workflow, namespace: str) -> dict[str, Any]:
    """The canonical document of ``wf`` kept in ``namespace`` (which it may omit)."""
    if "namespace" in wf.model_fields_set and wf.namespace != namespace:
        raise InvalidInput(
            f"a workflow cannot move from namespace {namespace!r} to {wf.namespace!r}; "
            "export it and import it into the other namespace"
        )
    return canonical_document(wf.model_copy(update={"namespace": namespace}))
