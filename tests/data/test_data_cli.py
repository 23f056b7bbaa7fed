"""`python -m tinyalex data get`: find, download, or install Debian's package."""
import pytest

from datawriters import write_fashion_mnist
from tinyalex.cli import main
from tinyalex.data import cli as data_cli
from tinyalex.data import sources


def test_data_get_prints_where_the_files_are(tmp_path, capsys):
    write_fashion_mnist(tmp_path / "fm")
    assert main(["data", "get", "fashion-mnist", "--data-dir", str(tmp_path / "fm")]) == 0
    assert str(tmp_path / "fm") in capsys.readouterr().out


def test_data_get_uses_the_system_directory(tmp_path, capsys):
    write_fashion_mnist(sources.SYSTEM_DATA_DIR / "fashion-mnist")
    assert main(["data", "get", "fashion-mnist", "--no-apt"]) == 0
    assert "system-datasets" in capsys.readouterr().out


def test_data_get_without_any_source_lists_every_way(capsys):
    assert main(["data", "get", "fashion-mnist", "--no-apt"]) == 2
    err = capsys.readouterr().err
    assert "TINYALEX_DATA" in err and "apt-get install" in err and "Download failed" in err


def test_data_get_installs_the_debian_package_when_nothing_else_works(monkeypatch, capsys):
    installed = []

    def fake_apt(package):            # stands in for apt-get: the package's files appear
        installed.append(package)
        write_fashion_mnist(sources.SYSTEM_DATA_DIR / "fashion-mnist")
        return True

    monkeypatch.setattr(data_cli, "_apt_install", fake_apt)
    assert main(["data", "get", "fashion-mnist", "--apt"]) == 0
    assert installed == ["dataset-fashion-mnist"]
    assert "system-datasets" in capsys.readouterr().out


def test_data_get_never_runs_apt_for_an_explicit_directory(tmp_path, monkeypatch):
    monkeypatch.setattr(data_cli, "_apt_install", lambda p: pytest.fail("apt must not run"))
    assert main(["data", "get", "fashion-mnist", "--apt", "--data-dir", str(tmp_path / "empty")]) == 2


def test_data_get_rejects_an_unknown_dataset(capsys):
    with pytest.raises(SystemExit):
        main(["data", "get", "imagenet"])
    assert "invalid choice: 'imagenet'" in capsys.readouterr().err
