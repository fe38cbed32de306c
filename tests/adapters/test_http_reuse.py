"""`JsonApi`'s answer reuse: identical bytes to the same request give the very same
object back (not parsed again), anything else a new one; `get_bytes` gives the body as
sent; `parse` refuses `NaN` and `Infinity`."""

from __future__ import annotations

import pytest
import respx
from pydantic import BaseModel, TypeAdapter

from shared_state.adapters.http import JsonApi
from shared_state.errors import UpstreamResponseInvalid


class Thing(BaseModel):
    name: str
    score: float | None = None


THING = TypeAdapter(Thing)
THINGS = TypeAdapter(list[Thing])


async def test_identical_bytes_give_the_same_object(
    api: JsonApi, api_wire: respx.MockRouter
) -> None:
    """A second answer byte for byte like the first is the very object parsed first."""
    api_wire.get("/thing").respond(200, json={"name": "a"})

    first = await api.get("/thing", THING)
    second = await api.get("/thing", THING)

    assert first == Thing(name="a")
    assert second is first


async def test_changed_bytes_give_a_new_object(api: JsonApi, api_wire: respx.MockRouter) -> None:
    """An answer that changed is parsed: a new object with the new value."""
    route = api_wire.get("/thing")
    route.respond(200, json={"name": "a"})
    first = await api.get("/thing", THING)
    route.respond(200, json={"name": "b"})

    second = await api.get("/thing", THING)

    assert second is not first
    assert second == Thing(name="b")


async def test_the_same_content_in_other_bytes_is_parsed_again(
    api: JsonApi, api_wire: respx.MockRouter
) -> None:
    """Reuse is by bytes: the same document spaced differently is a new (equal) object."""
    route = api_wire.get("/thing")
    route.respond(200, content=b'{"name":"a"}', content_type="application/json")
    first = await api.get("/thing", THING)
    route.respond(200, content=b'{"name": "a"}', content_type="application/json")

    second = await api.get("/thing", THING)

    assert second == first
    assert second is not first


async def test_a_request_with_other_parameters_is_its_own_answer(
    api: JsonApi, api_wire: respx.MockRouter
) -> None:
    """Answers are remembered per path and parameters: other parameters, other object."""
    api_wire.get("/things").respond(200, json=[{"name": "a"}])

    page_1 = await api.get("/things", THINGS, page=1)
    page_2 = await api.get("/things", THINGS, page=2)
    page_1_again = await api.get("/things", THINGS, page=1)

    assert page_2 == page_1
    assert page_2 is not page_1
    assert page_1_again is page_1


async def test_the_same_bytes_read_with_another_shape_are_parsed_for_it(
    api: JsonApi, api_wire: respx.MockRouter
) -> None:
    """A remembered answer is only reused for the shape it was validated against."""
    api_wire.get("/thing").respond(200, json={"name": "a", "score": 1})
    loose = TypeAdapter(dict[str, object])

    as_thing = await api.get("/thing", THING)
    as_dict = await api.get("/thing", loose)

    assert as_thing == Thing(name="a", score=1)
    assert as_dict == {"name": "a", "score": 1}


async def test_reuse_survives_an_answer_in_between(
    api: JsonApi, api_wire: respx.MockRouter
) -> None:
    """Only the last answer is remembered: a, b, a gives three objects, then reuse."""
    route = api_wire.get("/thing")
    seen = []
    for name in ("a", "b", "a", "a"):
        route.respond(200, json={"name": name})
        seen.append(await api.get("/thing", THING))

    assert seen[2] is not seen[0]
    assert seen[3] is seen[2]


async def test_an_invalid_answer_is_not_remembered(
    api: JsonApi, api_wire: respx.MockRouter
) -> None:
    """A refused answer does not stand in for the next one: the same bad bytes fail
    again, and a good answer after it is parsed."""
    route = api_wire.get("/thing")
    route.respond(200, json={"nope": 1})
    for _ in range(2):
        with pytest.raises(UpstreamResponseInvalid, match="unexpected shape"):
            await api.get("/thing", THING)
    route.respond(200, json={"name": "a"})

    assert await api.get("/thing", THING) == Thing(name="a")


async def test_get_bytes_gives_the_body_as_it_came(
    api: JsonApi, api_wire: respx.MockRouter
) -> None:
    """`get_bytes` returns the JSON body unparsed, parameters passed along."""
    route = api_wire.get("/raw").respond(
        200, content=b'{ "name" : "a" }', content_type="application/json"
    )

    raw = await api.get_bytes("/raw", page=2)

    assert raw == b'{ "name" : "a" }'
    assert route.calls.last.request.url.params["page"] == "2"


async def test_get_bytes_still_insists_on_json(api: JsonApi, api_wire: respx.MockRouter) -> None:
    """An HTML answer is invalid even when its bytes are not parsed."""
    api_wire.get("/raw").respond(200, text="<html>login</html>", content_type="text/html")

    with pytest.raises(UpstreamResponseInvalid, match="text/html, not JSON"):
        await api.get_bytes("/raw")


@pytest.mark.parametrize("constant", ["NaN", "Infinity", "-Infinity"])
async def test_nan_and_infinity_are_malformed_json(
    api: JsonApi, api_wire: respx.MockRouter, constant: str
) -> None:
    """Python's parser accepts `NaN` and `Infinity`; an upstream answer may not hold them."""
    api_wire.get("/thing").respond(
        200, content=f'{{"name":"a","score":{constant}}}'.encode(), content_type="application/json"
    )

    with pytest.raises(UpstreamResponseInvalid, match="malformed JSON"):
        await api.get("/thing", THING)
    with pytest.raises(UpstreamResponseInvalid, match="malformed JSON"):
        api.parse(constant.encode(), "GET", "/thing", TypeAdapter(float))


def test_parse_reads_ordinary_numbers(api: JsonApi) -> None:
    """Finite floats and large integers are read as they are."""
    assert api.parse(b'{"name":"a","score":1e308}', "GET", "/x", THING) == Thing(
        name="a", score=1e308
    )
    assert api.parse(b"12345678901234567890", "GET", "/x", TypeAdapter(int)) == (
        12345678901234567890
    )
