"""Sixtyfour (api.sixtyfour.ai): adapter, wire models and sandbox emulator (``emulator/``)."""

from providers.spec import ProviderSpec

SPEC = ProviderSpec(
    name="sixtyfour",
    adapter="providers.sixtyfour.adapter:SixtyfourAdapter",
    emulator="providers.sixtyfour.emulator:create_emulator",
    coverage=0.9,
    truth="providers.sixtyfour.emulator.truth:true_id",
    start_route="POST /search/start-deep-search",
    settings=("page_size", "fetch_via", "credits_per_search", "credits_per_result"),
)
