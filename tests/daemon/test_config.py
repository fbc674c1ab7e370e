from pathlib import Path

import pytest

from cauldrond.config import ConfigError, default_data_dir, load_settings


def test_flags_override_environment_which_overrides_file(tmp_path: Path) -> None:
    config = tmp_path / "cauldron.toml"
    config.write_text('[cauldrond]\nport = 1111\nhost = "127.0.0.2"\ndevice = "cpu"\nmax_batch_size = 2\n')
    env = {"CAULDRON_PORT": "2222", "CAULDRON_DATA_DIR": str(tmp_path / "env-data")}
    settings = load_settings(config, environ=env, overrides={"port": 3333, "host": None})
    assert settings.port == 3333  # flag
    assert settings.data_dir == tmp_path / "env-data"  # environment
    assert settings.host == "127.0.0.2"  # file (the flag was not given)
    assert settings.max_batch_size == 2
    assert load_settings(config, environ=env).port == 2222


def test_defaults_bind_loopback_in_the_platform_data_dir() -> None:
    settings = load_settings(environ={})
    assert settings.host == "127.0.0.1"
    assert settings.data_dir == default_data_dir()
    assert settings.resolved_models_dir == settings.data_dir / "models"


@pytest.mark.parametrize(
    ("text", "message"),
    [
        ("port = 'many'", "port"),
        ("colour = 'red'", "unknown setting 'colour'"),
        ("device = 'tpu'", "device"),
        ("not toml at all = = =", "not valid TOML"),
        ("allow_pickle = 'perhaps'", "allow_pickle"),
    ],
)
def test_bad_settings_name_the_setting(tmp_path: Path, text: str, message: str) -> None:
    config = tmp_path / "bad.toml"
    config.write_text(text)
    with pytest.raises(ConfigError, match=message):
        load_settings(config, environ={})


def test_missing_config_file_is_a_clear_error(tmp_path: Path) -> None:
    with pytest.raises(ConfigError, match="cannot read config file"):
        load_settings(tmp_path / "absent.toml", environ={})


def test_plugin_tables_reach_plugins_and_plain_plugins_restricts(tmp_path: Path) -> None:
    config = tmp_path / "cauldron.toml"
    config.write_text('[cauldrond]\nplugins = "diffusers"\n\n[plugins.llm-tags]\nurl = "http://127.0.0.1:11434"\n')
    settings = load_settings(config, environ={})
    assert settings.plugins == "diffusers"
    assert settings.plugin_config("llm-tags") == {"url": "http://127.0.0.1:11434"}
    assert settings.plugin_config("absent") == {}
    assert load_settings(config, environ={"CAULDRON_PLUGINS": ""}).plugins == ""
