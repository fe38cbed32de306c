"""`/metrics` of the real app under uvicorn against the simulators: the upstream
clients the composition root builds report every request they send."""

from __future__ import annotations

from prometheus_client.parser import text_string_to_metric_families

from tests.e2e.conftest import Service


async def test_upstream_requests_of_a_real_sync_are_counted(service: Service) -> None:
    """After a sync against both simulators, each upstream has `ok` requests, timed."""
    response = await service.client.get("/metrics")

    assert response.status_code == 200
    ok = {
        sample.labels["upstream"]: sample.value
        for family in text_string_to_metric_families(response.text)
        for sample in family.samples
        if sample.name == "shared_state_upstream_requests_total"
        and sample.labels["outcome"] == "ok"
    }
    assert ok.keys() == {"anythingllm", "librechat"}
    assert min(ok.values()) >= 1
