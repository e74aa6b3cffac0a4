"""Where the app keeps things, from source and as the packaged (frozen) app."""

from __future__ import annotations

import logging
import shutil

from autotrader_desktop import paths
from tests.helpers import EXAMPLES, REPO

EXAMPLE_NAMES = sorted(p.name for p in EXAMPLES.glob("*.py"))


def test_from_source_everything_is_in_the_repository():
    assert not paths.is_frozen()
    assert paths.install_dir() == paths.bundle_dir() == REPO
    assert paths.default_algorithm_dir() == REPO / "algorithm"


def test_frozen_algorithm_folder_is_beside_the_executable_and_seeded(frozen):
    folder = paths.default_algorithm_dir()
    assert folder == frozen / "algorithm"
    assert sorted(p.name for p in folder.iterdir()) == EXAMPLE_NAMES
    for name in EXAMPLE_NAMES:
        assert (folder / name).read_bytes() == (REPO / "algorithm" / name).read_bytes()
    assert folder.stat().st_mode & 0o777 == 0o755
    assert sorted(p.name for p in frozen.iterdir()) == [
        "_internal",
        "algorithm",
        "autotrader-desktop",
    ]


def test_frozen_existing_algorithm_folder_is_left_alone(frozen):
    folder = frozen / "algorithm"
    folder.mkdir()
    (folder / "mine.py").write_text("class Algorithm: ...\n")
    assert paths.default_algorithm_dir() == folder
    assert [p.name for p in folder.iterdir()] == ["mine.py"]
    (folder / "mine.py").unlink()
    assert paths.default_algorithm_dir() == folder
    assert list(folder.iterdir()) == []  # emptied by the user: stays empty


def test_frozen_algorithm_setting_wins_and_seeds_nothing(frozen, tmp_path):
    chosen = tmp_path / "elsewhere"
    assert paths.algorithm_dir(str(chosen)) == chosen
    assert not (frozen / "algorithm").exists() and not chosen.exists()


def test_frozen_read_only_install_folder_is_reported_not_fatal(frozen, caplog, monkeypatch):
    def read_only(*args, **kwargs):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(paths.tempfile, "mkdtemp", read_only)  # root ignores chmod
    with caplog.at_level(logging.WARNING, logger="autotrader_desktop.paths"):
        folder = paths.default_algorithm_dir()
    assert folder == frozen / "algorithm" and not folder.exists()
    assert "cannot create the algorithm folder" in caplog.text


def test_seeding_failure_leaves_no_half_made_folder(tmp_path, caplog, monkeypatch):
    examples = tmp_path / "examples"
    examples.mkdir()
    (examples / "a.py").write_text("x = 1\n")

    def refuse(source, target):
        raise PermissionError(13, "Permission denied")

    monkeypatch.setattr(shutil, "copyfile", refuse)
    with caplog.at_level(logging.WARNING, logger="autotrader_desktop.paths"):
        assert not paths.seed_algorithm_dir(tmp_path / "algorithm", examples)
    assert sorted(p.name for p in tmp_path.iterdir()) == ["examples"]
    assert "Permission denied" in caplog.text


def test_seeding_when_another_start_got_there_first(tmp_path):
    examples = tmp_path / "examples"
    examples.mkdir()
    (examples / "a.py").write_text("x = 1\n")
    target = tmp_path / "algorithm"
    target.mkdir()
    (target / "theirs.py").write_text("y = 2\n")
    assert paths.seed_algorithm_dir(target, examples)
    assert [p.name for p in target.iterdir()] == ["theirs.py"]
    assert sorted(p.name for p in tmp_path.iterdir()) == ["algorithm", "examples"]
