"""Resources: ``add_resources``, ``update_resources`` and their queries."""

from __future__ import annotations

import anyio
import pytest

from agentlightning.store.base import LightningStore
from agentlightning.types.resources import LLM, NamedResources, PromptTemplate, ResourcesUpdate

__all__ = ["ResourceTests"]


@pytest.mark.anyio
class ResourceTests:
    """Resource versions, the latest resources, ``query_resources``."""

    async def test_add_resources(self, store: LightningStore) -> None:
        assert await store.get_latest_resources() is None
        resources: NamedResources = {
            "llm": LLM(endpoint="http://127.0.0.1:9/v1", model="m", sampling_parameters={"temperature": 0.1}),
            "prompt": PromptTemplate(template="Hello {name}"),
        }
        update = await store.add_resources(resources)
        assert isinstance(update, ResourcesUpdate)
        assert update.resources_id.startswith("rs-") and len(update.resources_id) == 15
        assert update.version == 1 and update.create_time == update.update_time
        assert update.resources == resources
        assert await store.get_latest_resources() == update
        assert await store.get_resources_by_id(update.resources_id) == update
        assert await store.get_resources_by_id("rs-missing") is None
        other = await store.add_resources({"prompt": PromptTemplate(template="x")})
        assert other.resources_id != update.resources_id
        latest = await store.get_latest_resources()
        assert latest is not None and latest.resources_id == other.resources_id

    async def test_update_resources_upserts_and_versions(self, store: LightningStore) -> None:
        created = await store.update_resources("custom", {"p": PromptTemplate(template="v1")})
        assert created.resources_id == "custom" and created.version == 1
        other = await store.update_resources("other", {"p": PromptTemplate(template="o1")})
        latest = await store.get_latest_resources()
        assert latest is not None and latest.resources_id == "other"
        await anyio.sleep(0.005)
        second = await store.update_resources("custom", {"p": PromptTemplate(template="v2")})
        assert second.version == 2 and second.create_time == created.create_time
        assert second.update_time > created.update_time
        assert second.resources == {"p": PromptTemplate(template="v2")}
        latest = await store.get_latest_resources()
        assert latest is not None and latest.resources_id == "custom"
        stored_other = await store.get_resources_by_id("other")
        assert stored_other is not None and stored_other.version == other.version == 1

    async def test_query_resources(self, store: LightningStore) -> None:
        ids = []
        for i in range(4):
            ids.append((await store.add_resources({"p": PromptTemplate(template=str(i))})).resources_id)
        everything = await store.query_resources()
        assert [u.resources_id for u in everything] == ids and everything.total == 4
        exact = await store.query_resources(resources_id=ids[2])
        assert [u.resources_id for u in exact] == [ids[2]]
        contains = await store.query_resources(resources_id_contains=ids[1][3:])
        assert [u.resources_id for u in contains] == [ids[1]]
        both = await store.query_resources(resources_id=ids[0], resources_id_contains=ids[1][3:])
        assert list(both) == []
        desc = await store.query_resources(sort_by="resources_id", sort_order="desc")
        assert [u.resources_id for u in desc] == sorted(ids, reverse=True)
        page = await store.query_resources(limit=2, offset=1)
        assert [u.resources_id for u in page] == ids[1:3] and (page.limit, page.offset, page.total) == (2, 1, 4)
        assert list(await store.query_resources(offset=10)) == []
