"""A small fourth provider, "acme", declared in this package only: adapter, emulator, truth, defaults.

``tests/test_fourth_provider.py`` registers :data:`SPEC` and runs a search and a comparison through
it, proving that a provider touches nothing outside its own package (and its tests).
"""

from providers.spec import ProviderSpec

SPEC = ProviderSpec(
    name="acme",
    adapter="tests.fourth_provider.adapter:AcmeAdapter",
    emulator="tests.fourth_provider.emulator:create_emulator",
    coverage=0.5,
    truth="tests.fourth_provider.adapter:true_id",
    start_route="POST /v1/searches",
    defaults={
        "base_url": "https://api.acme.test",
        "api_key_env": "ACME_API_KEY",
        "base_url_env": "ACME_BASE_URL",
        "poll_interval_s": 5.0,
        "poll_max_interval_s": 5.0,
        "rate_limits": ({"name": "general", "limit": 100, "window_s": 60.0},),
    },
)
