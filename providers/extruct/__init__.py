"""Extruct (extruct.ai) Deep Search: the ``discovery_tasks`` API and its sandbox emulator (``emulator/``)."""

from providers.spec import ProviderSpec

SPEC = ProviderSpec(
    name="extruct",
    adapter="providers.extruct.adapter:ExtructAdapter",
    emulator="providers.extruct.emulator:create_emulator",
    coverage=0.8,
    truth="providers.extruct.emulator.truth:true_id",
    start_route="POST /v1/discovery_tasks",
    settings=("page_size", "credits_per_result"),
)
