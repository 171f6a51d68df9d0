"""Orbit (api.orbitsearch.com): developer Deep Search v2 adapter, wire models and sandbox emulator (``emulator/``)."""

from providers.spec import ProviderSpec

SPEC = ProviderSpec(
    name="orbit",
    adapter="providers.orbit.adapter:OrbitAdapter",
    emulator="providers.orbit.emulator:create_emulator",
    coverage=0.75,
    truth="providers.orbit.emulator.truth:true_id",
    start_route="POST /v2/developer/deep-search",
    settings=("credits_per_run", "credits_per_profile_read", "profile_batch"),
)
