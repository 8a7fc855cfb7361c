"""Tests for ecg_utils.sources: MIT-BIH download, Kaggle archive and Kaggle CSV files.

The download tests serve a copy of two real MIT-BIH records from a local HTTP server
(no internet needed); the Kaggle tests build archives in Kaggle's layout in tmp.
"""

from __future__ import annotations

import functools
import hashlib
import http.server
import os
import shutil
import socket
import stat
import sys
import threading
import types
import zipfile
from dataclasses import dataclass, field
from pathlib import Path

import numpy as np
import pytest

from ecg_utils import sources
from ecg_utils._io import EcgError
from ecg_utils.beats import BEAT_LENGTH
from ecg_utils.sources import (
    DEFAULT_PHYSIONET_URL,
    KAGGLE_FILES,
    beats_from_kaggle_csv,
    default_cache_dir,
    download_kaggle,
    download_mitdb,
    extract_kaggle_zip,
    load_kaggle_csv,
    resolve_kaggle_dir,
    resolve_mitdb_dir,
    write_kaggle_csv,
)

REAL_MITDB = Path(
    os.environ.get("ECG_MITDB_DIR") or Path(__file__).parents[1].parent / "shared/data/mitdb"
)
RECORDS = ("100", "101")
SECRET = "0123456789abcdef0123456789abcdef"


@pytest.fixture(autouse=True)
def _clean_env(monkeypatch):
    """Keep the user's settings out, and keep a proxy from intercepting 127.0.0.1."""
    for name in ("ECG_MITDB_DIR", "ECG_CACHE_DIR", "ECG_PHYSIONET_URL", "ECG_KAGGLE_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("NO_PROXY", "127.0.0.1,localhost")
    monkeypatch.setenv("no_proxy", "127.0.0.1,localhost")


# ---------------------------------------------------------------------------
# A local PhysioNet mirror
# ---------------------------------------------------------------------------


class _Handler(http.server.SimpleHTTPRequestHandler):
    def do_GET(self):
        self.server.requested.append(self.path)
        super().do_GET()

    def log_message(self, *args):  # keep pytest output clean
        pass


@dataclass
class Mirror:
    root: Path
    port: int
    requested: list[str] = field(default_factory=list)

    def url(self, folder: str) -> str:
        return f"http://127.0.0.1:{self.port}/{folder}/"


def _sha256(path: Path) -> str:
    return hashlib.sha256(path.read_bytes()).hexdigest()


@pytest.fixture(scope="module")
def mirror(tmp_path_factory):
    """Serve ``good/`` (SHA256SUMS.txt, headers listed) and ``corrupt/`` (SHA256SUMS
    in PhysioNet's one-space format without headers, 101.dat damaged)."""
    if not all((REAL_MITDB / f"{r}.dat").exists() for r in RECORDS):
        pytest.skip(f"MIT-BIH records not found in {REAL_MITDB}")
    root = tmp_path_factory.mktemp("mirror")
    good, corrupt = root / "good", root / "corrupt"
    for folder in (good, corrupt):
        folder.mkdir()
        for rec in RECORDS:
            for ext in ("hea", "dat", "atr"):
                shutil.copyfile(REAL_MITDB / f"{rec}.{ext}", folder / f"{rec}.{ext}")
        (folder / "RECORDS").write_text("\n".join(RECORDS) + "\n")
    names = sorted(p.name for p in good.glob("10*"))
    (good / "SHA256SUMS.txt").write_text("".join(f"{_sha256(good / n)}  {n}\n" for n in names))
    (corrupt / "SHA256SUMS").write_text(
        "".join(f"{_sha256(corrupt / n)} {n}\n" for n in names if not n.endswith(".hea"))
    )
    data = bytearray((corrupt / "101.dat").read_bytes())
    data[1000:1010] = bytes(10)
    (corrupt / "101.dat").write_bytes(bytes(data))

    server = http.server.ThreadingHTTPServer(
        ("127.0.0.1", 0), functools.partial(_Handler, directory=str(root))
    )
    server.requested = []
    thread = threading.Thread(target=server.serve_forever, daemon=True)
    thread.start()
    yield Mirror(root, server.server_address[1], server.requested)
    server.shutdown()
    server.server_close()


def _free_port() -> int:
    with socket.socket() as sock:
        sock.bind(("127.0.0.1", 0))
        return sock.getsockname()[1]


def _mtimes(folder: Path) -> dict[str, int]:
    return {p.name: p.stat().st_mtime_ns for p in folder.iterdir()}


def test_download_mitdb_fetches_and_verifies_records(mirror, tmp_path):
    dest = download_mitdb(tmp_path, base_url=mirror.url("good"), progress=False)
    assert dest == tmp_path / "mitdb-1.0.0"
    for rec in RECORDS:
        for ext in ("hea", "dat", "atr"):
            name = f"{rec}.{ext}"
            assert (dest / name).read_bytes() == (REAL_MITDB / name).read_bytes()
    assert (dest / "RECORDS").read_text().split() == list(RECORDS)
    assert not [p for p in dest.iterdir() if p.name.startswith("tmp")]


def test_second_download_makes_no_request(mirror, tmp_path):
    dest = download_mitdb(tmp_path, base_url=mirror.url("good"), progress=False)
    before = _mtimes(dest)
    mirror.requested.clear()
    assert download_mitdb(tmp_path, base_url=mirror.url("good"), progress=False) == dest
    assert mirror.requested == []
    assert _mtimes(dest) == before


def test_download_mitdb_limits_records_and_uses_env_url(mirror, tmp_path, monkeypatch):
    monkeypatch.setenv("ECG_PHYSIONET_URL", mirror.url("good").rstrip("/"))
    dest = download_mitdb(tmp_path, records=["100"], progress=False)
    assert sorted(p.name for p in dest.iterdir()) == ["100.atr", "100.dat", "100.hea", "SHA256SUMS"]


def test_corrupt_cached_file_is_replaced(mirror, tmp_path):
    dest = tmp_path / "mitdb-1.0.0"
    dest.mkdir()
    (dest / "100.dat").write_bytes(b"garbage")
    download_mitdb(tmp_path, base_url=mirror.url("good"), records=["100"], progress=False)
    assert (dest / "100.dat").read_bytes() == (REAL_MITDB / "100.dat").read_bytes()


def test_checksum_mismatch_raises_and_leaves_no_corrupt_file(mirror, tmp_path):
    with pytest.raises(EcgError, match="checksum did not match") as err:
        download_mitdb(tmp_path, base_url=mirror.url("corrupt"), progress=False)
    assert "101.dat" in str(err.value)
    dest = tmp_path / "mitdb-1.0.0"
    assert not (dest / "101.dat").exists()
    # the record before it is complete and nothing half-written is left behind
    assert sorted(p.name for p in dest.iterdir()) == [
        "100.atr",
        "100.dat",
        "100.hea",
        "101.hea",
        "RECORDS",
        "SHA256SUMS",
    ]


def test_record_not_in_checksums_is_refused(mirror, tmp_path):
    with pytest.raises(EcgError, match="102.dat is not listed in SHA256SUMS"):
        download_mitdb(tmp_path, base_url=mirror.url("good"), records=["102"], progress=False)
    with pytest.raises(EcgError, match="invalid record name"):
        download_mitdb(tmp_path, base_url=mirror.url("good"), records=["../x"], progress=False)


def test_missing_checksum_list_is_reported(mirror, tmp_path):
    url = mirror.url("nothing-here")
    with pytest.raises(EcgError, match="HTTP 404") as err:
        download_mitdb(tmp_path, base_url=url, progress=False)
    assert url in str(err.value) and "\n" not in str(err.value)


def test_unreachable_server_gives_one_line_error(tmp_path):
    url = f"http://127.0.0.1:{_free_port()}/mitdb/"
    with pytest.raises(EcgError, match="could not connect") as err:
        download_mitdb(tmp_path, base_url=url, progress=False)
    message = str(err.value)
    assert url in message and "\n" not in message and len(message) < 300
    assert not list((tmp_path / "mitdb-1.0.0").iterdir())


def test_resolve_mitdb_dir(mirror, tmp_path, monkeypatch):
    good = mirror.root / "good"
    assert resolve_mitdb_dir(good) == good
    monkeypatch.setenv("ECG_MITDB_DIR", str(good))
    assert resolve_mitdb_dir() == good
    monkeypatch.delenv("ECG_MITDB_DIR")
    with pytest.raises(EcgError, match="no WFDB records") as err:
        resolve_mitdb_dir(tmp_path)
    assert str(tmp_path) in str(err.value)
    with pytest.raises(EcgError, match="not found"):
        resolve_mitdb_dir(tmp_path / "absent")
    monkeypatch.setenv("ECG_PHYSIONET_URL", mirror.url("good"))
    assert resolve_mitdb_dir(cache_dir=tmp_path, progress=False) == tmp_path / "mitdb-1.0.0"


def test_default_cache_dir(tmp_path, monkeypatch):
    monkeypatch.setenv("HOME", str(tmp_path))
    assert default_cache_dir() == tmp_path / ".cache" / "ecg-classification"
    monkeypatch.setenv("ECG_CACHE_DIR", str(tmp_path / "c"))
    assert default_cache_dir() == tmp_path / "c"
    assert DEFAULT_PHYSIONET_URL.endswith("/mitdb/1.0.0/")


# ---------------------------------------------------------------------------
# Kaggle archive
# ---------------------------------------------------------------------------


def _beats(n: int, seed: int = 0) -> tuple[np.ndarray, np.ndarray]:
    """Kaggle-like beats: R peak at 0, a T wave, zero padding after 1.2 RR; labels 0..4."""
    rng = np.random.default_rng(seed)
    t = np.arange(BEAT_LENGTH, dtype=np.float64)
    x = np.zeros((n, BEAT_LENGTH), np.float32)
    for i in range(n):
        length = rng.integers(90, BEAT_LENGTH)
        wave = 0.95 * np.exp(-((t / 3) ** 2)) + 0.4 * np.exp(-(((t - 45) / 10) ** 2))
        wave += 0.2 + 0.02 * rng.standard_normal(BEAT_LENGTH)
        wave[length:] = 0
        x[i] = np.clip(wave, 0, 1)
    return x, np.arange(n, dtype=np.int64) % 5


def _csv_bytes(tmp_path: Path, n: int, seed: int) -> bytes:
    path = tmp_path / f"rows-{n}-{seed}.csv"
    write_kaggle_csv(*_beats(n, seed), path)
    return path.read_bytes()


def _zip(path: Path, members: dict[str, bytes], symlinks: tuple[str, ...] = ()) -> Path:
    """Write a zip with member names exactly as given (zipfile.write would clean them)."""
    with zipfile.ZipFile(path, "w", zipfile.ZIP_DEFLATED) as archive:
        for name, data in members.items():
            info = zipfile.ZipInfo(name)
            if name in symlinks:
                info.external_attr = (stat.S_IFLNK | 0o777) << 16
            archive.writestr(info, data)
    return path


def _kaggle_zip(tmp_path: Path, prefix: str = "", extra: dict | None = None) -> Path:
    members = {
        f"{prefix}mitbih_test.csv": _csv_bytes(tmp_path, 5, 1),
        f"{prefix}mitbih_train.csv": _csv_bytes(tmp_path, 8, 2),
        f"{prefix}ptbdb_abnormal.csv": _csv_bytes(tmp_path, 3, 3),
        f"{prefix}ptbdb_normal.csv": _csv_bytes(tmp_path, 3, 4),
        **(extra or {}),
    }
    return _zip(tmp_path / "heartbeat.zip", members)


@pytest.mark.parametrize("prefix", ["", "heartbeat/"])
def test_extract_kaggle_zip_takes_only_the_mitbih_csvs(tmp_path, prefix):
    dest = extract_kaggle_zip(_kaggle_zip(tmp_path, prefix), tmp_path / "out")
    assert sorted(p.name for p in dest.iterdir()) == sorted(KAGGLE_FILES)
    x, y = load_kaggle_csv(dest / "mitbih_train.csv")
    expected_x, expected_y = _beats(8, 2)
    np.testing.assert_array_equal(x, expected_x)
    np.testing.assert_array_equal(y, expected_y)


@pytest.mark.parametrize("evil", ["../evil.csv", "/tmp/evil-abs.csv", "a/../../evil.csv"])
def test_extract_kaggle_zip_rejects_escaping_members(tmp_path, evil):
    archive = _kaggle_zip(tmp_path, extra={evil: b"pwned\n"})
    dest = tmp_path / "sub" / "out"
    with pytest.raises(EcgError, match="unsafe member") as err:
        extract_kaggle_zip(archive, dest)
    assert str(archive) in str(err.value)
    assert not list(tmp_path.rglob("evil*.csv"))
    assert not Path("/tmp/evil-abs.csv").exists()
    assert not dest.exists() or not list(dest.iterdir())


def test_extract_kaggle_zip_rejects_symlinks(tmp_path):
    archive = _zip(
        tmp_path / "link.zip",
        {"mitbih_train.csv": b"/etc/passwd", "mitbih_test.csv": b"0\n"},
        symlinks=("mitbih_train.csv",),
    )
    with pytest.raises(EcgError, match="symlink"):
        extract_kaggle_zip(archive, tmp_path / "out")
    assert not (tmp_path / "out" / "mitbih_train.csv").exists()


def test_extract_kaggle_zip_rejects_other_files(tmp_path):
    not_zip = tmp_path / "heartbeat.zip"
    not_zip.write_text("<html>rate limited</html>")
    with pytest.raises(EcgError, match="not a zip archive"):
        extract_kaggle_zip(not_zip, tmp_path / "out")
    partial = _zip(tmp_path / "partial.zip", {"mitbih_train.csv": b"0\n"})
    with pytest.raises(EcgError, match="lacks mitbih_test.csv"):
        extract_kaggle_zip(partial, tmp_path / "out")
    assert not list((tmp_path / "out").iterdir())


@pytest.fixture
def no_kaggle_credentials(tmp_path, monkeypatch):
    home = tmp_path / "home"
    home.mkdir()
    monkeypatch.setenv("HOME", str(home))
    for name in ("KAGGLE_USERNAME", "KAGGLE_KEY", "KAGGLE_API_TOKEN", "KAGGLE_CONFIG_DIR"):
        monkeypatch.delenv(name, raising=False)
    monkeypatch.setenv("XDG_CONFIG_HOME", str(home / ".config"))

    def network(*args):
        raise AssertionError("must not reach the network without credentials")

    monkeypatch.setattr(sources, "_fetch_kaggle_zip", network)
    return home


def test_missing_kaggle_credentials_explain_what_to_do(no_kaggle_credentials, tmp_path):
    with pytest.raises(EcgError) as err:
        download_kaggle(tmp_path / "dest")
    message = str(err.value)
    assert "kaggle.json" in message and "Settings" in message and "--kaggle-dir" in message
    assert "PhysioNet" in message and "\n" not in message
    assert not (tmp_path / "dest").exists()


@pytest.mark.parametrize(
    ("content", "expected"),
    [
        ('{"username": "alice", "key": "' + SECRET + '"', "not valid JSON"),
        ('{"user": "alice", "key": "' + SECRET + '"}', "needs non-empty 'username' and 'key'"),
        ('["' + SECRET + '"]', "needs non-empty"),
    ],
)
def test_malformed_kaggle_json_never_shows_the_key(
    no_kaggle_credentials, tmp_path, monkeypatch, capsys, content, expected
):
    config = tmp_path / "cfg"
    config.mkdir()
    (config / "kaggle.json").write_text(content)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(config))
    with pytest.raises(EcgError, match=expected) as err:
        download_kaggle(tmp_path / "dest")
    assert str(config / "kaggle.json") in str(err.value)
    captured = capsys.readouterr()
    assert SECRET not in str(err.value) + captured.out + captured.err


def _fake_kaggle(monkeypatch, archive: Path | None, calls: list):
    """Install a stand-in ``kaggle`` package whose API copies ``archive`` (or fails)."""

    class KaggleApi:
        def authenticate(self):
            calls.append("authenticate")

        def dataset_download_files(self, dataset, path=None, unzip=True, quiet=True):
            calls.append((dataset, unzip))
            if archive is None:
                raise RuntimeError(f"401 Unauthorized for key {SECRET}\nmore detail")
            shutil.copyfile(archive, Path(path) / "heartbeat.zip")

    module = types.ModuleType("kaggle.api.kaggle_api_extended")
    module.KaggleApi = KaggleApi
    for name in ("kaggle", "kaggle.api"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "kaggle.api.kaggle_api_extended", module)


def test_download_kaggle_extracts_downloaded_archive(tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "alice")
    monkeypatch.setenv("KAGGLE_KEY", SECRET)
    calls = []
    _fake_kaggle(monkeypatch, _kaggle_zip(tmp_path), calls)
    dest = download_kaggle(tmp_path / "dest")
    assert calls == ["authenticate", ("shayanfazeli/heartbeat", False)]
    assert sorted(p.name for p in dest.iterdir()) == sorted(KAGGLE_FILES)


def test_download_kaggle_failure_hides_the_key(tmp_path, monkeypatch, capsys):
    monkeypatch.setenv("KAGGLE_USERNAME", "alice")
    monkeypatch.setenv("KAGGLE_KEY", SECRET)
    _fake_kaggle(monkeypatch, None, [])
    with pytest.raises(EcgError, match="Kaggle download of shayanfazeli/heartbeat failed") as err:
        download_kaggle(tmp_path / "dest")
    captured = capsys.readouterr()
    assert SECRET not in str(err.value) + captured.out + captured.err
    assert "\n" not in str(err.value)
    assert not list((tmp_path / "dest").iterdir())


def test_resolve_kaggle_dir(tmp_path, monkeypatch):
    extract_kaggle_zip(_kaggle_zip(tmp_path), tmp_path / "k")
    assert resolve_kaggle_dir(tmp_path / "k") == tmp_path / "k"
    monkeypatch.setenv("ECG_KAGGLE_DIR", str(tmp_path / "k"))
    assert resolve_kaggle_dir() == tmp_path / "k"
    monkeypatch.delenv("ECG_KAGGLE_DIR")
    (tmp_path / "half").mkdir()
    (tmp_path / "half" / "mitbih_train.csv").write_text("0\n")
    with pytest.raises(EcgError, match="missing mitbih_test.csv") as err:
        resolve_kaggle_dir(tmp_path / "half")
    assert str(tmp_path / "half") in str(err.value)

    # a complete cache is used as is; an empty one triggers the download
    shutil.copytree(tmp_path / "k", tmp_path / "cache" / "kaggle-heartbeat")
    monkeypatch.setattr(sources, "download_kaggle", lambda dest: pytest.fail("downloaded"))
    assert resolve_kaggle_dir(cache_dir=tmp_path / "cache") == (
        tmp_path / "cache" / "kaggle-heartbeat"
    )
    monkeypatch.setattr(sources, "download_kaggle", lambda dest: Path(dest, "fetched"))
    assert resolve_kaggle_dir(cache_dir=tmp_path / "empty").name == "fetched"


# ---------------------------------------------------------------------------
# Kaggle CSV files
# ---------------------------------------------------------------------------


def test_csv_round_trip_is_exact_and_in_kaggle_format(tmp_path):
    x, y = _beats(12)
    x[0, 0] = np.float32(0.9779411554336547852)
    path = tmp_path / "beats.csv"
    write_kaggle_csv(x, y, path)
    first = path.read_text().splitlines()[0].split(",")
    assert len(first) == BEAT_LENGTH + 1
    assert first[0] == "9.779411554336547852e-01"
    assert first[-1] == "0.000000000000000000e+00"
    x2, y2 = load_kaggle_csv(path)
    assert x2.dtype == np.float32 and x2.shape == (12, BEAT_LENGTH)
    assert y2.dtype == np.int64 and y2.shape == (12,)
    np.testing.assert_array_equal(x2, x)
    np.testing.assert_array_equal(y2, y)


def test_beats_from_kaggle_csv(tmp_path):
    path = tmp_path / "beats.csv"
    write_kaggle_csv(*_beats(6), path)
    beats = beats_from_kaggle_csv(path)
    assert len(beats) == 6 and beats.x.shape == (6, BEAT_LENGTH)
    assert set(beats.record) == {"kaggle"} and set(beats.r_peak) == {-1}
    assert beats.rr.shape == (6, 4) and beats.rr.dtype == np.float32
    assert np.isnan(beats.rr).all()
    assert beats.counts() == {"N": 2, "S": 1, "V": 1, "F": 1, "Q": 1}


def _set(lines: list[str], row: int, col: int, value: str) -> list[str]:
    """Replace the cell at 1-based ``row``/``col``."""
    cells = lines[row - 1].split(",")
    cells[col - 1] = value
    lines[row - 1] = ",".join(cells)
    return lines


def _drop_last(lines: list[str], row: int) -> list[str]:
    """Remove the last cell of 1-based ``row``."""
    lines[row - 1] = lines[row - 1].rsplit(",", 1)[0]
    return lines


BAD_CSVS = {
    "header": (lambda ls: [",".join(f"c{i}" for i in range(188)), *ls], ["row 1", "header"]),
    "187 columns": (lambda ls: [ln.rsplit(",", 1)[0] for ln in ls], ["row 1", "187 columns"]),
    "short row": (lambda ls: _drop_last(ls, 4), ["row 4", "187 columns"]),
    "long row": (lambda ls: [*ls[:2], ls[2] + ",1", *ls[3:]], ["row 3", "189 columns"]),
    "text": (lambda ls: _set(ls, 3, 10, "abc"), ["row 3, column 10", "'abc' is not a number"]),
    "empty cell": (lambda ls: _set(ls, 3, 5, ""), ["row 3, column 5", "not a number"]),
    "nan": (lambda ls: _set(ls, 2, 7, "nan"), ["row 2, column 7", "NaN"]),
    "inf": (lambda ls: _set(ls, 4, 1, "inf"), ["row 4, column 1", "not finite"]),
    "label 7": (lambda ls: _set(ls, 5, 188, "7.0"), ["row 5", "label 7 is not a class"]),
    "label 1.5": (lambda ls: _set(ls, 2, 188, "1.5"), ["row 2", "label 1.5 is not an integer"]),
    "label -1": (lambda ls: _set(ls, 1, 188, "-1"), ["row 1", "label -1"]),
    "empty file": (lambda ls: [], ["empty"]),
}


@pytest.mark.parametrize("case", BAD_CSVS)
def test_bad_csv_names_file_and_row(tmp_path, case):
    good = tmp_path / "good.csv"
    write_kaggle_csv(*_beats(5), good)
    mutate, expected = BAD_CSVS[case]
    lines = mutate(good.read_text().splitlines())
    bad = tmp_path / "mitbih_bad.csv"
    bad.write_text("".join(line + "\n" for line in lines))
    with pytest.raises(EcgError) as err:
        load_kaggle_csv(bad)
    message = str(err.value)
    assert message.startswith(str(bad)) and "\n" not in message
    for fragment in expected:
        assert fragment in message


def test_load_kaggle_csv_missing_file(tmp_path):
    with pytest.raises(EcgError, match="file not found"):
        load_kaggle_csv(tmp_path / "absent.csv")


def test_write_kaggle_csv_validates(tmp_path):
    x, y = _beats(3)
    with pytest.raises(EcgError, match=r"shape \(n, 187\)"):
        write_kaggle_csv(x[:, :100], y, tmp_path / "a.csv")
    with pytest.raises(EcgError, match="labels must be integers"):
        write_kaggle_csv(x, np.array([0, 7, 1]), tmp_path / "a.csv")
    assert not list(tmp_path.iterdir())


def test_the_real_kaggle_package_imports_and_reaches_the_download(tmp_path, monkeypatch):
    """The installed ``kaggle`` (not a stand-in) imports, authenticates from the
    environment and is asked for the archive; the download itself is replaced, so no
    network is used."""
    pytest.importorskip("kaggle", reason="the 'kaggle' extra is not installed")
    from kaggle.api.kaggle_api_extended import KaggleApi

    monkeypatch.setenv("KAGGLE_USERNAME", "alice")
    monkeypatch.setenv("KAGGLE_KEY", SECRET)
    monkeypatch.setenv("KAGGLE_CONFIG_DIR", str(tmp_path / "config"))
    asked = []

    def download(self, dataset, path=None, unzip=True, quiet=True):
        asked.append(dataset)
        shutil.copyfile(_kaggle_zip(tmp_path), Path(path) / "heartbeat.zip")

    monkeypatch.setattr(KaggleApi, "dataset_download_files", download)
    dest = download_kaggle(tmp_path / "dest")
    assert asked == ["shayanfazeli/heartbeat"]
    assert sorted(p.name for p in dest.iterdir()) == sorted(KAGGLE_FILES)


def test_a_kaggle_package_that_does_not_import_says_what_it_lacks(tmp_path, monkeypatch):
    monkeypatch.setenv("KAGGLE_USERNAME", "alice")
    monkeypatch.setenv("KAGGLE_KEY", SECRET)
    broken = types.ModuleType("kaggle.api.kaggle_api_extended")

    def missing(name):
        raise ModuleNotFoundError(f"No module named '{name}'", name="six")

    broken.__getattr__ = missing
    for name in ("kaggle", "kaggle.api"):
        monkeypatch.setitem(sys.modules, name, types.ModuleType(name))
    monkeypatch.setitem(sys.modules, "kaggle.api.kaggle_api_extended", broken)
    with pytest.raises(EcgError, match="installed but does not import: it needs 'six'"):
        download_kaggle(tmp_path / "dest")


def test_records_are_found_in_the_environment_folder_first(tmp_path, monkeypatch, capsys):
    from ecg_utils.sources import find_mitdb_dir
    from tests.cli_helpers import run_main

    folder = tmp_path / "mitdb"
    folder.mkdir()
    (folder / "100.hea").write_text("100 2 360 650000\n")
    monkeypatch.setenv("ECG_MITDB_DIR", str(folder))
    assert find_mitdb_dir(tmp_path / "cache") == folder.resolve()
    rc, out, _ = run_main(capsys, "records", "--cache-dir", tmp_path / "cache")
    assert rc == 0 and out.strip() == str(folder.resolve())


def test_an_incomplete_folder_is_not_taken_for_the_records(tmp_path, monkeypatch):
    from ecg_utils import sources

    folder = tmp_path / "mitdb"
    folder.mkdir()
    (folder / "100.hea").write_text("100 2 360 650000\n")
    (folder / "RECORDS").write_text("100\n101\n")
    monkeypatch.setattr(sources, "mitdb_candidates", lambda cache_dir=None: [folder])
    assert sources.find_mitdb_dir() is None


def test_no_records_anywhere_is_one_line_naming_where_it_looked(tmp_path, monkeypatch, capsys):
    from ecg_utils import sources
    from tests.cli_helpers import run_main

    monkeypatch.setattr(sources, "mitdb_candidates", lambda cache_dir=None: [tmp_path / "none"])
    rc, out, err = run_main(capsys, "records")
    assert rc != 0 and out == ""
    assert "records --download" in err and str(tmp_path / "none") in err
    assert len(err.strip().splitlines()) == 1
