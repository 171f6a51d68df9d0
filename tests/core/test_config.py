"""Settings layering, secrets handling and the --criteria loader."""

from __future__ import annotations

from pathlib import Path

import pytest

from aggregator.config import load_criteria, load_settings
from aggregator.errors import ConfigError


def test_layers_apply_in_order_defaults_file_env_overrides(tmp_path: Path) -> None:
    user = tmp_path / "user.toml"
    user.write_text('[providers.sixtyfour]\nbase_url = "https://file.example"\npage_size = 50\n')
    settings = load_settings(user, env={"SIXTYFOUR_BASE_URL": "https://env.example/"})
    sixtyfour = settings.providers["sixtyfour"]
    assert sixtyfour.base_url == "https://env.example"  # env beats the file, trailing slash dropped
    assert sixtyfour.option("page_size", 100) == 50  # the file beats the defaults
    assert sixtyfour.poll_interval_s == 10.0  # defaults stay
    overridden = load_settings(user, env={}, overrides={"providers": {"sixtyfour": {"page_size": 7}}})
    assert overridden.providers["sixtyfour"].option("page_size", 100) == 7


def test_api_keys_come_from_the_environment_and_never_show_in_reprs() -> None:
    settings = load_settings(env={"SIXTYFOUR_API_KEY": "sk-canary-123"})
    key = settings.providers["sixtyfour"].api_key
    assert key is not None and key.get_secret_value() == "sk-canary-123"
    assert "sk-canary-123" not in repr(settings) and "sk-canary-123" not in str(settings.model_dump())


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ("[run]\nmax_results = 0\n", "run.max_results"),
        ("[sandbox]\ntime_scale = 2\n", "sandbox.time_scale"),
        ("[retry]\nmax_attempts = 'many'\n", "retry.max_attempts"),
        ("[run\n", "--config"),
        ("[providers.sixtyfor]\npage_size = 5\n", "providers.sixtyfor"),  # was providers.sixtyfor.base_url
        ("[providers.sixtyfour]\npoll_intervall_s = 5\n", "providers.sixtyfour.poll_intervall_s"),  # was accepted
        ("[providers.orbit]\ncredits_per_profil = 2\n", "providers.orbit.credits_per_profil"),  # was accepted
    ],
)
def test_invalid_settings_name_the_setting(tmp_path: Path, content: str, field: str) -> None:
    user = tmp_path / "bad.toml"
    user.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_settings(user, env={})
    assert info.value.field == field


def test_unknown_keys_and_providers_suggest_the_closest_known_name(tmp_path: Path) -> None:
    user = tmp_path / "typo.toml"
    user.write_text("[providers.sixtyfor]\npage_size = 5\n")
    with pytest.raises(ConfigError, match=r"^providers\.sixtyfor: unknown provider; did you mean 'sixtyfour'\? "
                                          r"\(known: extruct, orbit, sixtyfour\)$"):
        load_settings(user, env={})
    user.write_text("[providers.sixtyfour]\npoll_intervall_s = 5\n")
    with pytest.raises(ConfigError, match=r"^providers\.sixtyfour\.poll_intervall_s: unknown field; "
                                          r"did you mean 'poll_interval_s'\? \(known: "):
        load_settings(user, env={})


def test_a_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="file not found"):
        load_settings(tmp_path / "nope.toml", env={})


CRITERION = ('{"key": "serves_forwarders", "name": "Serves forwarders", '
             '"criterion": "Sells software to freight forwarders."}')


def test_criteria_load_from_a_json_list_a_json_object_and_toml(tmp_path: Path) -> None:
    (tmp_path / "a.json").write_text(f"[{CRITERION}]")
    (tmp_path / "b.json").write_text(f'{{"criteria": [{CRITERION}]}}')
    (tmp_path / "c.toml").write_text(
        '[[criteria]]\nkey = "serves_forwarders"\nname = "Serves forwarders"\n'
        'criterion = "Sells software to freight forwarders."\n')
    loaded = [load_criteria(tmp_path / name) for name in ("a.json", "b.json", "c.toml")]
    assert loaded[0] == loaded[1] == loaded[2]
    assert loaded[0][0].key == "serves_forwarders"


@pytest.mark.parametrize(
    ("content", "field"),
    [
        ('[{"key": "1bad", "name": "N", "criterion": "Long enough criterion."}]', "--criteria[0].key"),
        ('[{"key": "ok", "name": "N", "criterion": "short"}]', "--criteria[0].criterion"),
        ('[{"key": "ok", "name": "", "criterion": "Long enough criterion."}]', "--criteria[0].name"),
        ('[{"key": "ok", "criterion": "Long enough criterion."}]', "--criteria[0].name"),
        ("[]", "--criteria"),
        ("{not json", "--criteria"),
    ],
)
def test_invalid_criteria_name_the_entry_and_field(tmp_path: Path, content: str, field: str) -> None:
    path = tmp_path / "criteria.json"
    path.write_text(content)
    with pytest.raises(ConfigError) as info:
        load_criteria(path)
    assert info.value.field == field


def test_criteria_files_must_be_json_or_toml(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match=r"\.json or \.toml"):
        load_criteria(tmp_path / "criteria.yaml")
