"""The merge: a pure function from what each upstream last said to the merged state data.

No I/O, no clock, no globals: the StateManager calls it with each source's last good
snapshot, so a failed upstream contributes the data it gave last time.
"""

from __future__ import annotations

from typing import Any

from shared_state.domain.items import EMPTY
from shared_state.domain.models import (
    EmbeddingSettings,
    LlmSettings,
    LocalSettings,
    MergedData,
    StateSettings,
    UiSettings,
    UpstreamSnapshot,
    User,
    VectorDbSettings,
)

_USER_FIELDS = ("id", "username", "email", "name", "role")


def merge(
    anythingllm: UpstreamSnapshot | None,
    librechat: UpstreamSnapshot | None,
    local: LocalSettings | None = None,
) -> MergedData:
    """Merge the two upstreams' last good snapshots by the contract's rules (§4).

    ===========================  ==============================  ==========================
    field                        taken from, in order            default
    ===========================  ==============================  ==========================
    user.id/username/email/      AnythingLLM, LibreChat          null
    name/role
    llm.provider, llm.model      AnythingLLM, LibreChat, local   null
    llm.temperature              AnythingLLM, LibreChat, local   0.7
    llm.maxTokens                AnythingLLM, LibreChat, local   4096
    embedding.provider/model     AnythingLLM                     openai /
                                                                 text-embedding-ada-002
    ui.theme/fontSize            LibreChat, local                system / medium
    vectorDb.provider/settings   AnythingLLM                     lancedb / {}
    workspaces                   AnythingLLM                     []
    conversations                LibreChat                       []
    ===========================  ==============================  ==========================

    A later source is asked only when the earlier one's value is absent (missing or
    None): ``0``, ``""`` and ``False`` are values. ``local`` holds the fields that no
    configured upstream stores, which the service keeps itself. A ``None`` snapshot is an
    upstream that is disabled or has never answered.
    """
    local = local or LocalSettings()
    a = anythingllm or UpstreamSnapshot()
    lc = librechat or UpstreamSnapshot()

    default_llm = LlmSettings()
    llm = LlmSettings(
        provider=_first(a.llm.provider, lc.llm.provider, local.llm.provider),
        model=_first(a.llm.model, lc.llm.model, local.llm.model),
        temperature=_first(
            a.llm.temperature, lc.llm.temperature, local.llm.temperature, default_llm.temperature
        ),
        max_tokens=_first(
            a.llm.max_tokens, lc.llm.max_tokens, local.llm.max_tokens, default_llm.max_tokens
        ),
    )
    default_ui = UiSettings()
    ui = UiSettings(
        theme=_first(lc.ui.theme, local.ui.theme, default_ui.theme),
        font_size=_first(lc.ui.font_size, local.ui.font_size, default_ui.font_size),
    )
    default_embedding = EmbeddingSettings()
    embedding = EmbeddingSettings(
        provider=_first(a.embedding.provider, default_embedding.provider),
        model=_first(a.embedding.model, default_embedding.model),
    )
    vector_db = VectorDbSettings(
        provider=_first(a.vector_db.provider, VectorDbSettings().provider),
        settings=_first(a.vector_db.settings, {}),
    )
    return MergedData(
        user=_merge_user(a.user, lc.user),
        settings=StateSettings(llm=llm, embedding=embedding, ui=ui, vector_db=vector_db),
        workspaces=_first(a.workspaces, EMPTY),
        conversations=_first(lc.conversations, EMPTY),
    )


def _first(*values: Any) -> Any:
    """The first value that is not None (`0`, `""` and `False` count as values)."""
    return next((value for value in values if value is not None), None)


def _merge_user(
    anythingllm: dict[str, Any] | None, librechat: dict[str, Any] | None
) -> User | None:
    if anythingllm is None and librechat is None:
        return None
    a, lc = anythingllm or {}, librechat or {}
    fields = {name: _first(a.get(name), lc.get(name)) for name in _USER_FIELDS}
    return User(**fields, anything_llm=anythingllm, libre_chat=librechat)
