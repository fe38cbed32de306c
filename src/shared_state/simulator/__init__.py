"""Simulated AnythingLLM and LibreChat upstreams, for the demo and end-to-end tests."""

from shared_state.simulator.anythingllm import create_anythingllm_app
from shared_state.simulator.librechat import create_librechat_app
from shared_state.simulator.servers import SimulatorServers, run_simulators
from shared_state.simulator.world import (
    FLAVOURS,
    SECRET_CANARY,
    SIM_ANYTHINGLLM_API_KEY,
    SIM_ANYTHINGLLM_PASSWORD,
    SIM_ANYTHINGLLM_USERNAME,
    SIM_LIBRECHAT_EMAIL,
    SIM_LIBRECHAT_PASSWORD,
    SIM_LIBRECHAT_TOKEN,
    AnythingLLMWorld,
    Flavour,
    LibreChatWorld,
    World,
)

__all__ = [
    "FLAVOURS",
    "SECRET_CANARY",
    "SIM_ANYTHINGLLM_API_KEY",
    "SIM_ANYTHINGLLM_PASSWORD",
    "SIM_ANYTHINGLLM_USERNAME",
    "SIM_LIBRECHAT_EMAIL",
    "SIM_LIBRECHAT_PASSWORD",
    "SIM_LIBRECHAT_TOKEN",
    "AnythingLLMWorld",
    "Flavour",
    "LibreChatWorld",
    "SimulatorServers",
    "World",
    "create_anythingllm_app",
    "create_librechat_app",
    "run_simulators",
]
