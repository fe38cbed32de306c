"""The README's doctor section shows real output: its two `$ shared-state doctor`
examples (healthy; the wrong AnythingLLM port and a LibreChat account with 2FA) are
what `doctor` prints against the simulators, ports and times aside."""

from __future__ import annotations

import re
from pathlib import Path

from shared_state.simulator import SimulatorServers, World
from tests.doctor.conftest import Doctor, free_port, healthy_env

README = Path(__file__).resolve().parents[2] / "README.md"
HEADING = "## Diagnosing a deployment: `shared-state doctor`"


def _examples() -> list[str]:
    text = README.read_text()
    section = text[text.index(HEADING) :]
    section = section[: section.index("\n## ", len(HEADING))]
    blocks = re.findall(r"```console\n\$ shared-state doctor\n(.*?)```", section, re.DOTALL)
    assert len(blocks) == 2
    return [_normalised(block) for block in blocks]


def _normalised(text: str) -> str:
    text = re.sub(r"127\.0\.0\.1:\d+", "127.0.0.1:PORT", text)
    text = re.sub(r"\d+ ms\b", "N ms", text)
    text = re.sub(r"\d+ s apart", "N s apart", text)
    return re.sub(r"(\S) +(?=\S)", r"\1 ", text)  # the columns' widths


async def test_the_readme_shows_what_doctor_prints(doctor: Doctor) -> None:
    healthy, broken = _examples()
    world = World.seed()
    async with SimulatorServers(world, flavour="native") as sims:
        env = healthy_env(sims)
        del env["SHARED_STATE_REQUEST_TIMEOUT_S"]
        del env["ANYTHINGLLM_API"], env["LIBRECHAT_API"]
        ok = await doctor(env)
        world.librechat.auth.two_factor = True
        failed = await doctor(env | {"ANYTHINGLLM_BASE_URL": f"http://127.0.0.1:{free_port()}"})
    assert _normalised(ok.out) == healthy
    assert _normalised(failed.out) == broken
