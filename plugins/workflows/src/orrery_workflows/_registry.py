"""Workflow definitions by name and version, kept in the plugin's store, plus the
workflow files of the configured folders (re-read when they change).

A changed definition gets the next version; the versions before it stay, so a run
that started on one keeps it (the run also carries its definition in its journal).
"""

from __future__ import annotations

import logging
from pathlib import Path
from typing import Any

from orrery.sdk import Store

from ._loader import load_definition, load_yaml
from ._model import Workflow
from .errors import DefinitionError, UnknownWorkflow

__all__ = ["Registry"]

_PREFIX = "wf:"


def _content(workflow: Workflow) -> dict[str, Any]:
    body = workflow.to_json()
    body.pop("version", None)
    return body


class Registry:
    """The known workflows; `put` versions, `get` answers the latest or a version."""

    def __init__(self, store: Store, log: logging.Logger) -> None:
        self.store = store
        self.log = log
        self.versions: dict[str, dict[int, Workflow]] = {}
        self.files: dict[Path, float] = {}
        self.file_errors: dict[str, str] = {}

    async def load(self) -> None:
        async for _key, value in self.store.scan(_PREFIX):
            workflow = Workflow.model_validate(value)
            self.versions.setdefault(workflow.name, {})[workflow.version] = workflow

    def latest(self, name: str) -> Workflow | None:
        versions = self.versions.get(name)
        return versions[max(versions)] if versions else None

    def get(self, name: str, version: int | None = None) -> Workflow:
        versions = self.versions.get(name) or {}
        if version is None:
            latest = self.latest(name)
            if latest is None:
                raise UnknownWorkflow(name)
            return latest
        if version not in versions:
            raise UnknownWorkflow(name, version)
        return versions[version]

    def names(self) -> list[Workflow]:
        return [w for name in sorted(self.versions) if (w := self.latest(name)) is not None]

    async def put(self, workflow: Workflow) -> Workflow:
        """Store ``workflow``; the same content as the latest version is that version,
        otherwise it becomes a new version (its declared one if that is newer)."""
        latest = self.latest(workflow.name)
        if latest is not None and _content(latest) == _content(workflow):
            return latest
        version = max(workflow.version, latest.version + 1 if latest else 1)
        stored = workflow.model_copy(update={"version": version})
        await self.store.put(f"{_PREFIX}{stored.name}:{version:08d}", stored.to_json())
        self.versions.setdefault(stored.name, {})[version] = stored
        return stored

    async def put_text(self, text: str, source: str) -> Workflow:
        return await self.put(load_yaml(text, source))

    async def put_data(self, data: Any, source: str) -> Workflow:
        if not isinstance(data, dict):
            raise DefinitionError(source, None, "send the workflow as a mapping or YAML text")
        return await self.put(load_definition(data, source))

    async def scan_dirs(self, dirs: list[Path]) -> list[Workflow]:
        """Load workflow files that are new or changed since the last scan; a bad file
        is logged with its line and keeps the previous version in service."""
        loaded: list[Workflow] = []
        for folder in dirs:
            if not folder.is_dir():
                continue
            for path in sorted([*folder.glob("*.yaml"), *folder.glob("*.yml")]):
                try:
                    mtime = path.stat().st_mtime_ns
                except OSError:
                    continue
                if self.files.get(path) == mtime:
                    continue
                self.files[path] = mtime
                try:
                    workflow = await self.put_text(path.read_text(encoding="utf-8"), str(path))
                except (DefinitionError, OSError, UnicodeDecodeError) as e:
                    self.file_errors[str(path)] = str(e)
                    self.log.error("workflow file refused: %s", e)
                    continue
                self.file_errors.pop(str(path), None)
                loaded.append(workflow)
        return loaded
