"""Simulated AnythingLLM and LibreChat upstreams, for the demo and end-to-end tests."""

from shared_state.simulator.anythingllm import create_anythingllm_app
from shared_state.simulator.librechat import create_librechat_app
from shared_state.simulator.servers import SimulatorServers, run_simulators
from shared_state.simulator.world import (
    SECRET_CANARY,
    SIM_ANYTHINGLLM_API_KEY,
    SIM_LIBRECHAT_TOKEN,
    AnythingLLMWorld,
    LibreChatWorld,
    World,
)

__all__ = [
    "SECRET_CANARY",
    "SIM_ANYTHINGLLM_API_KEY",
    "SIM_LIBRECHAT_TOKEN",
    "AnythingLLMWorld",
    "LibreChatWorld",
    "SimulatorServers",
    "World",
    "create_anythingllm_app",
    "create_librechat_app",
    "run_simulators",
]
