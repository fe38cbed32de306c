"""Wire-format building blocks shared by the adapters: lenient models for upstream JSON.

Upstream objects keep the fields we do not know (`extra="allow"`): the state serves
items and user objects with the upstream's own fields.
"""

from __future__ import annotations

from pydantic import BaseModel, ConfigDict


class WireModel(BaseModel):
    """An upstream JSON object: known fields typed, unknown fields kept."""

    model_config = ConfigDict(extra="allow", populate_by_name=True)


class WireUser(WireModel):
    """A user object as either upstream sends it; the merge reads these five fields."""

    id: int | str | None = None
    username: str | None = None
    email: str | None = None
    name: str | None = None
    role: str | None = None


class WriteAnswer(WireModel):
    """The answer to a write; `success: false` means the write did not land."""

    success: bool | None = None
