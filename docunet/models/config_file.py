"""`config.json` for every family's config dataclass: written with its `model_type`, read back strictly."""
from __future__ import annotations

import json
from dataclasses import asdict, fields
from pathlib import Path
from typing import Any, ClassVar, TypeVar

C = TypeVar("C", bound="ConfigFile")


class ConfigFile:
    """Mixin for a family's config dataclass (which sets the class variable `model_type`)."""

    model_type: ClassVar[str]

    def to_dict(self) -> dict[str, Any]:
        return asdict(self)  # type: ignore[call-overload]

    @classmethod
    def from_dict(cls: type[C], data: dict[str, Any]) -> C:
        """Unknown keys are an error; a missing `model_type` (configs written before families existed) is this family."""
        if data.get("model_type", cls.model_type) != cls.model_type:
            raise ValueError(f"model_type {data.get('model_type')!r} is not {cls.model_type!r}")
        known = {f.name for f in fields(cls)}  # type: ignore[arg-type]
        unknown = sorted(set(data) - known - {"format", "model_type"})
        if unknown:
            raise ValueError(f"unknown config keys: {unknown}")
        return cls(**{k: v for k, v in data.items() if k in known})

    def save(self, path: Path) -> None:
        record = {"format": "docunet-config/1", "model_type": self.model_type, **self.to_dict()}
        Path(path).write_text(json.dumps(record, indent=2, ensure_ascii=False) + "\n", encoding="utf-8")

    @classmethod
    def load(cls: type[C], path: Path) -> C:
        return cls.from_dict(json.loads(Path(path).read_text(encoding="utf-8")))
