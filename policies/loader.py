"""Load the YAML policy documents; every error names the file and the key at fault.

One document per file: ``documents/purposes/<id>.yaml`` and ``documents/sites/<site>.yaml``. The file
name must equal the document's id so that a copied file cannot silently shadow another policy.
"""

from __future__ import annotations

from pathlib import Path
from typing import TypeVar

import yaml
from pydantic import BaseModel, ValidationError

from policies.models import Purpose, SitePolicy

DOCUMENTS_DIR = Path(__file__).parent / "documents"

Doc = TypeVar("Doc", bound=BaseModel)


class PolicyLoadError(ValueError):
    """A policy document that cannot be used; the message names the file and the key."""

    def __init__(self, path: Path, key: str, detail: str) -> None:
        self.path = path
        self.key = key
        self.detail = detail
        super().__init__(f"{path}: {key}: {detail}")


def _location(loc: tuple[int | str, ...]) -> str:
    return ".".join(str(part) for part in loc) or "<document>"


def load_document(path: Path, model: type[Doc]) -> Doc:
    """Parse one YAML file into ``model``; raise ``PolicyLoadError`` naming the first bad key."""
    try:
        data = yaml.safe_load(path.read_text(encoding="utf-8"))
    except OSError as exc:
        raise PolicyLoadError(path, "<file>", f"cannot read: {exc.strerror}") from exc
    except yaml.YAMLError as exc:
        mark = getattr(exc, "problem_mark", None)
        where = f"line {mark.line + 1}" if mark is not None else "<yaml>"
        raise PolicyLoadError(path, where, f"not valid YAML: {getattr(exc, 'problem', exc)}") from exc
    if not isinstance(data, dict):
        raise PolicyLoadError(path, "<document>", "expected a mapping of keys to values")
    try:
        return model.model_validate(data)
    except ValidationError as exc:
        # A misspelled key also shows up as a missing one: name the unknown key first, it is the typo.
        errors = sorted(exc.errors(), key=lambda error: error["type"] != "extra_forbidden")
        first = errors[0]
        more = f" (and {exc.error_count() - 1} more)" if exc.error_count() > 1 else ""
        raise PolicyLoadError(path, _location(first["loc"]), first["msg"] + more) from exc


def _load_folder(folder: Path, model: type[Doc], id_field: str) -> dict[str, Doc]:
    if not folder.is_dir():
        raise PolicyLoadError(folder, "<folder>", "policy folder does not exist")
    documents: dict[str, Doc] = {}
    for path in sorted(folder.glob("*.yaml")):
        doc = load_document(path, model)
        doc_id = str(getattr(doc, id_field))
        if doc_id != path.stem:
            raise PolicyLoadError(path, id_field, f"{doc_id!r} differs from the file name {path.stem!r}")
        documents[doc_id] = doc
    return documents


def load_purposes(folder: Path | str | None = None) -> dict[str, Purpose]:
    """Every purpose in ``folder`` (default: the shipped ``documents/purposes``), keyed by id."""
    return _load_folder(Path(folder) if folder else DOCUMENTS_DIR / "purposes", Purpose, "id")


def load_site_policies(folder: Path | str | None = None) -> dict[str, SitePolicy]:
    """Every site policy in ``folder`` (default: the shipped ``documents/sites``), keyed by site id."""
    return _load_folder(Path(folder) if folder else DOCUMENTS_DIR / "sites", SitePolicy, "site")
