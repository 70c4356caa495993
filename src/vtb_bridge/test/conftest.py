"""Fixtures of the bridge's tests."""
from pathlib import Path

import pytest
import yaml

AVATAR_YAML = Path(__file__).resolve().parent.parent / "config" / "avatar.yaml"


@pytest.fixture(scope="session")
def fixed_gaze_config(tmp_path_factory) -> str:
    """The package's avatar YAML with the learned gaze rest off (gaze_neutral_learn_s: 0), for a
    bridge node whose test sends one gaze throughout and checks how it maps: learned, that gaze
    would be the rest and read 0 (test_neutral.py tests the learning itself)."""
    config = yaml.safe_load(AVATAR_YAML.read_text())
    config["gaze_neutral_learn_s"] = 0
    path = tmp_path_factory.mktemp("avatar") / "avatar.yaml"
    path.write_text(yaml.safe_dump(config))
    return str(path)
