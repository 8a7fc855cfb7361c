"""Where the data comes from: MIT-BIH records from PhysioNet and the Kaggle CSVs.

Two sources are supported:

* the MIT-BIH Arrhythmia Database 1.0.0 from PhysioNet (``.hea/.dat/.atr`` per record),
  downloaded with ``pooch`` and checked against PhysioNet's published SHA-256 sums;
* the Kaggle "ECG Heartbeat Categorization" set (``shayanfazeli/heartbeat``): beats
  already cut to 187 samples at 120 Hz, one beat per CSV row followed by its label.

Nothing here touches the network or the disk at import time; ``pooch``, ``requests``,
``pandas`` and ``kaggle`` are imported inside the functions that need them.
"""

from __future__ import annotations

import contextlib
import csv
import json
import math
import os
import re
import shutil
import stat
import tempfile
import zipfile
import zlib
from collections.abc import Iterator
from pathlib import Path, PurePosixPath

import numpy as np

from ._io import EcgError, atomic_open, sha256_file
from .beats import BEAT_LENGTH, CLASS_NAMES, Beats

__all__ = [
    "DEFAULT_PHYSIONET_URL",
    "KAGGLE_DATASET",
    "KAGGLE_FILES",
    "MITDB_VERSION",
    "beats_from_kaggle_csv",
    "default_cache_dir",
    "download_kaggle",
    "download_mitdb",
    "extract_kaggle_zip",
    "load_kaggle_csv",
    "resolve_kaggle_dir",
    "resolve_mitdb_dir",
    "write_kaggle_csv",
]

MITDB_VERSION = "1.0.0"
"""MIT-BIH Arrhythmia Database version on PhysioNet."""
DEFAULT_PHYSIONET_URL = "https://physionet.org/files/mitdb/1.0.0/"
"""Folder URL of MIT-BIH 1.0.0; override with ``ECG_PHYSIONET_URL`` (a mirror)."""
CHECKSUM_NAMES = ("SHA256SUMS.txt", "SHA256SUMS")
"""Names PhysioNet (and local mirrors) use for the checksum list, tried in order."""

KAGGLE_DATASET = "shayanfazeli/heartbeat"
"""Kaggle dataset holding the MIT-BIH (and PTB) beat CSVs."""
KAGGLE_FILES = ("mitbih_train.csv", "mitbih_test.csv")
"""The two files of the Kaggle archive this project uses."""
KAGGLE_DIRNAME = "kaggle-heartbeat"
"""Folder under the cache directory that receives the Kaggle CSVs."""
N_COLUMNS = BEAT_LENGTH + 1
"""Columns of a Kaggle CSV row: 187 samples then the label."""

_MAX_MEMBER_BYTES = 2**31
"""Largest CSV accepted from a zip (the real train CSV is ~390 MB); guards against bombs."""
_RECORD_NAME = re.compile(r"[A-Za-z0-9_-]+")
_SHA256_HEX = re.compile(r"[0-9a-fA-F]{64}")


# ---------------------------------------------------------------------------
# Cache location and MIT-BIH from PhysioNet
# ---------------------------------------------------------------------------


def default_cache_dir() -> Path:
    """Folder for downloads and cached beat sets.

    Returns
    -------
    Path
        ``$ECG_CACHE_DIR`` when set, else ``~/.cache/ecg-classification``.
    """
    env = os.environ.get("ECG_CACHE_DIR")
    return Path(env).expanduser() if env else Path.home() / ".cache" / "ecg-classification"


def mitdb_candidates(cache_dir: str | os.PathLike | None = None) -> list[Path]:
    """Where :func:`find_mitdb_dir` looks for the records, in order: ``$ECG_MITDB_DIR``,
    ``../shared/data/mitdb`` beside a source checkout, the download cache."""
    places = []
    if os.environ.get("ECG_MITDB_DIR"):
        places.append(Path(os.environ["ECG_MITDB_DIR"]).expanduser())
    places.append(Path(__file__).resolve().parents[2] / "shared" / "data" / "mitdb")
    places.append(Path(cache_dir or default_cache_dir()).expanduser() / f"mitdb-{MITDB_VERSION}")
    return places


def find_mitdb_dir(cache_dir: str | os.PathLike | None = None) -> Path | None:
    """The first folder of :func:`mitdb_candidates` that holds MIT-BIH (its record list
    complete when it has a ``RECORDS`` file), or None; nothing is downloaded."""
    for folder in mitdb_candidates(cache_dir):
        if not (folder / "100.hea").is_file():
            continue
        listed = folder / "RECORDS"
        names = listed.read_text().split() if listed.is_file() else []
        if all((folder / f"{name}.hea").is_file() for name in names):
            return folder.resolve()
    return None


def resolve_mitdb_dir(
    mitdb_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
    progress: bool = True,
) -> Path:
    """Find the MIT-BIH records: a given folder, ``$ECG_MITDB_DIR``, or a download.

    Parameters
    ----------
    mitdb_dir : path, optional
        Folder holding WFDB records (``100.hea``, ``100.dat``, ``100.atr``, ...).
        Falls back to the ``ECG_MITDB_DIR`` environment variable.
    cache_dir : path, optional
        Download cache used when no folder is given (see :func:`download_mitdb`).
    progress : bool
        Show a progress bar while downloading.

    Returns
    -------
    Path
        The folder holding the records.
    """
    given = mitdb_dir or os.environ.get("ECG_MITDB_DIR")
    if not given:
        return download_mitdb(cache_dir, progress=progress)
    folder = Path(given).expanduser()
    if not folder.is_dir():
        raise EcgError("MIT-BIH folder not found", folder)
    if not any(folder.glob("*.hea")):
        raise EcgError("no WFDB records (*.hea) in this folder; expected MIT-BIH files", folder)
    return folder


def download_mitdb(
    cache_dir: str | os.PathLike | None = None,
    base_url: str | None = None,
    records: list[str] | None = None,
    progress: bool = True,
) -> Path:
    """Download MIT-BIH 1.0.0 into ``<cache_dir>/mitdb-1.0.0/``, verifying every file.

    The checksum list (``SHA256SUMS.txt``, or ``SHA256SUMS`` on mirrors) and
    ``RECORDS`` are fetched first and kept in the cache; they are the trust anchor for
    the ``.dat``/``.atr`` files, which must be listed there. Headers are verified when
    listed. Files already present with the right checksum are not downloaded again,
    so a second call with a complete cache makes no request at all.

    Parameters
    ----------
    cache_dir : path, optional
        Cache root; default :func:`default_cache_dir`.
    base_url : str, optional
        Folder URL of the database; default ``$ECG_PHYSIONET_URL``, else
        :data:`DEFAULT_PHYSIONET_URL`.
    records : list of str, optional
        Record names to fetch (``["100", "101"]``); default: all listed in ``RECORDS``.
    progress : bool
        Show a tqdm progress bar over the files.

    Returns
    -------
    Path
        The folder holding the records.

    Raises
    ------
    EcgError
        On a network error (naming the URL), a checksum mismatch (the corrupt file is
        deleted) or a record missing from the checksum list.
    """
    from tqdm.auto import tqdm

    base = _base_url(base_url)
    dest = Path(cache_dir or default_cache_dir()).expanduser() / f"mitdb-{MITDB_VERSION}"
    dest.mkdir(parents=True, exist_ok=True)
    with _quiet_pooch():
        sums = _fetch_checksums(base, dest)
        names = _check_record_names(records if records is not None else _fetch_records(base, dest))
        files = _record_files(names, sums, base)
        bar = tqdm(files, desc="MIT-BIH", unit="file", disable=not progress, leave=False)
        for name, digest in bar:
            _fetch_verified(base + name, dest / name, digest)
    return dest


def _base_url(base_url: str | None) -> str:
    url = base_url or os.environ.get("ECG_PHYSIONET_URL") or DEFAULT_PHYSIONET_URL
    # urljoin-style concatenation below needs the folder URL to end with a slash
    return url if url.endswith("/") else url + "/"


@contextlib.contextmanager
def _quiet_pooch() -> Iterator[None]:
    """Silence pooch's per-file INFO log lines; the progress bar says enough."""
    import pooch

    logger = pooch.get_logger()
    level = logger.level
    logger.setLevel("WARNING")
    try:
        yield
    finally:
        logger.setLevel(level)


def _fetch_checksums(base: str, dest: Path) -> dict[str, str]:
    """Fetch (once) and parse the checksum list; return ``{file name: sha256 hex}``."""
    import requests

    local = dest / "SHA256SUMS"
    for i, name in enumerate(CHECKSUM_NAMES):
        if local.exists():
            break
        try:
            _retrieve(base + name, local, None)
        except requests.HTTPError as exc:
            # PhysioNet says SHA256SUMS.txt, plain mirrors often SHA256SUMS: try both
            if _status(exc) != 404 or i == len(CHECKSUM_NAMES) - 1:
                raise _network_error(base + name, exc) from None
        except requests.RequestException as exc:
            raise _network_error(base + name, exc) from None
    sums = _parse_sha256sums(local.read_text(encoding="utf-8", errors="replace"))
    if not sums:
        # an HTML error page saved as SHA256SUMS must not stick in the cache
        local.unlink(missing_ok=True)
        raise EcgError("checksum list holds no '<sha256>  <file>' lines", base + CHECKSUM_NAMES[0])
    return sums


def _parse_sha256sums(text: str) -> dict[str, str]:
    """Parse ``sha256sum`` output: ``<64 hex>  <file name>`` per line (``*name`` allowed)."""
    sums = {}
    for line in text.splitlines():
        parts = line.strip().split(maxsplit=1)
        if len(parts) == 2 and _SHA256_HEX.fullmatch(parts[0]):
            name = parts[1].strip().lstrip("*")
            sums[name.removeprefix("./")] = parts[0].lower()
    return sums


def _fetch_records(base: str, dest: Path) -> list[str]:
    """Fetch (once) and read the ``RECORDS`` list of record names."""
    import requests

    local = dest / "RECORDS"
    if not local.exists():
        try:
            _retrieve(base + "RECORDS", local, None)
        except requests.RequestException as exc:
            raise _network_error(base + "RECORDS", exc) from None
    names = local.read_text(encoding="utf-8", errors="replace").split()
    if not names:
        local.unlink(missing_ok=True)
        raise EcgError("RECORDS lists no record names", base + "RECORDS")
    return names


def _check_record_names(names: list[str]) -> list[str]:
    """Reject names that are not plain record names (they become file paths in the cache)."""
    for name in names:
        if not _RECORD_NAME.fullmatch(str(name)):
            raise EcgError(f"invalid record name {name!r}: expected letters, digits, '_' or '-'")
    return [str(n) for n in names]


def _record_files(records: list[str], sums: dict[str, str], base: str) -> list[tuple[str, str]]:
    """Files to fetch for ``records`` with their expected SHA-256 (``""`` = unverified)."""
    files = []
    for rec in records:
        for ext in ("hea", "dat", "atr"):
            name = f"{rec}.{ext}"
            if ext != "hea" and name not in sums:
                # signal and annotation files are only trusted with a published checksum
                raise EcgError(f"record {rec}: {name} is not listed in SHA256SUMS", base)
            files.append((name, sums.get(name, "")))
    return files


def _fetch_verified(url: str, target: Path, sha256: str) -> None:
    """Download ``url`` to ``target`` unless it is already there and valid.

    A file present with the wrong checksum is deleted first, so a failed download
    never leaves a corrupt file behind.
    """
    import requests

    if target.exists():
        if not sha256 or sha256_file(target) == sha256:
            return
        target.unlink()
    try:
        _retrieve(url, target, sha256 or None)
    except requests.RequestException as exc:
        raise _network_error(url, exc) from None
    except ValueError as exc:
        if not sha256 or "hash" not in str(exc).lower():
            raise
        # pooch downloads to a temporary file and deletes it on a mismatch; the unlink
        # covers pooch versions that would not
        target.unlink(missing_ok=True)
        raise EcgError(
            f"SHA-256 checksum did not match SHA256SUMS (expected {sha256[:16]}...); "
            f"the corrupt download of {target.name} was deleted",
            url,
        ) from None


def _retrieve(url: str, target: Path, sha256: str | None) -> None:
    """Fetch one file with pooch (temporary file, hash check, rename)."""
    import pooch

    known = f"sha256:{sha256}" if sha256 else None
    pooch.retrieve(url, known_hash=known, fname=target.name, path=target.parent)


def _status(exc: Exception) -> int | None:
    response = getattr(exc, "response", None)
    return getattr(response, "status_code", None)


def _network_error(url: str, exc: Exception) -> EcgError:
    """One-line error for a failed request; requests' own messages are long and nested."""
    import requests

    status = _status(exc)
    if status is not None:
        reason = f"HTTP {status} {getattr(exc.response, 'reason', '') or ''}".strip()
    elif isinstance(exc, requests.Timeout):
        reason = "the connection timed out"
    elif isinstance(exc, requests.ConnectionError):
        reason = "could not connect to the server"
    else:
        reason = type(exc).__name__
    return EcgError(
        f"download failed ({reason}); check the network, set ECG_PHYSIONET_URL to a mirror "
        "or pass a folder of MIT-BIH records",
        url,
    )


# ---------------------------------------------------------------------------
# Kaggle archive
# ---------------------------------------------------------------------------


def resolve_kaggle_dir(
    kaggle_dir: str | os.PathLike | None = None,
    cache_dir: str | os.PathLike | None = None,
) -> Path:
    """Find the Kaggle CSVs: a given folder, ``$ECG_KAGGLE_DIR``, the cache, or a download.

    Parameters
    ----------
    kaggle_dir : path, optional
        Folder holding ``mitbih_train.csv`` and ``mitbih_test.csv``. Falls back to the
        ``ECG_KAGGLE_DIR`` environment variable.
    cache_dir : path, optional
        Cache root used otherwise; the files go to ``<cache_dir>/kaggle-heartbeat/``.

    Returns
    -------
    Path
        The folder holding both CSVs.
    """
    given = kaggle_dir or os.environ.get("ECG_KAGGLE_DIR")
    if given:
        folder = Path(given).expanduser()
        missing = _missing_kaggle_files(folder)
        if missing:
            raise EcgError(
                f"missing {', '.join(missing)} (the Kaggle {KAGGLE_DATASET} files)", folder
            )
        return folder
    dest = Path(cache_dir or default_cache_dir()).expanduser() / KAGGLE_DIRNAME
    return dest if not _missing_kaggle_files(dest) else download_kaggle(dest)


def _missing_kaggle_files(folder: Path) -> list[str]:
    return [name for name in KAGGLE_FILES if not (folder / name).is_file()]


def download_kaggle(dest: str | os.PathLike) -> Path:
    """Download the Kaggle heartbeat archive and extract the two MIT-BIH CSVs to ``dest``.

    Needs Kaggle API credentials: ``KAGGLE_USERNAME`` and ``KAGGLE_KEY``, or
    ``kaggle.json`` in ``~/.kaggle`` (or ``$KAGGLE_CONFIG_DIR``), or a Kaggle access
    token. They are checked before ``kaggle`` is imported, because that package
    authenticates at import time; a missing or malformed file gives an
    :class:`EcgError` that says how to fix it and never shows the key.

    Parameters
    ----------
    dest : path
        Folder that receives ``mitbih_train.csv`` and ``mitbih_test.csv``.

    Returns
    -------
    Path
        ``dest``.
    """
    dest = Path(dest).expanduser()
    _, secret = _kaggle_credentials()
    dest.mkdir(parents=True, exist_ok=True)
    # the archive is ~100 MB: keep it on dest's file system and always remove it
    with tempfile.TemporaryDirectory(prefix=".kaggle-download-", dir=dest) as work:
        zip_path = _fetch_kaggle_zip(Path(work), secret)
        return extract_kaggle_zip(zip_path, dest)


def _kaggle_credentials() -> tuple[str, str]:
    """Check that Kaggle credentials exist, without revealing them.

    Looked up in Kaggle's own order: ``KAGGLE_USERNAME`` + ``KAGGLE_KEY``,
    ``KAGGLE_API_TOKEN``, ``kaggle.json`` in ``$KAGGLE_CONFIG_DIR`` (else
    ``~/.kaggle`` or ``~/.config/kaggle``), then ``~/.kaggle/access_token``.

    Returns
    -------
    source : str
        Where the credentials were found.
    secret : str
        The key or token, only so that error messages can be scrubbed of it.
    """
    if os.environ.get("KAGGLE_USERNAME") and os.environ.get("KAGGLE_KEY"):
        return "KAGGLE_USERNAME/KAGGLE_KEY", os.environ["KAGGLE_KEY"]
    if os.environ.get("KAGGLE_API_TOKEN"):
        return "KAGGLE_API_TOKEN", os.environ["KAGGLE_API_TOKEN"]
    candidates = _kaggle_json_candidates()
    for path in candidates:
        if path.is_file():
            return str(path), _read_kaggle_json(path)
    token_file = Path.home() / ".kaggle" / "access_token"
    token = token_file.read_text(errors="replace").strip() if token_file.is_file() else ""
    if token:
        return str(token_file), token
    raise EcgError(
        f"Kaggle credentials not found (looked for {candidates[0]} and KAGGLE_USERNAME/"
        "KAGGLE_KEY): create a token at kaggle.com -> Settings -> API -> Create New Token "
        "and save the downloaded kaggle.json there, or pass --kaggle-dir with "
        f"{' and '.join(KAGGLE_FILES)} already downloaded, or use the PhysioNet MIT-BIH "
        "records instead (no account needed)"
    )


def _kaggle_json_candidates() -> list[Path]:
    config_dir = os.environ.get("KAGGLE_CONFIG_DIR")
    if config_dir:
        return [Path(config_dir).expanduser() / "kaggle.json"]
    xdg = os.environ.get("XDG_CONFIG_HOME") or str(Path.home() / ".config")
    return [Path.home() / ".kaggle" / "kaggle.json", Path(xdg) / "kaggle" / "kaggle.json"]


def _read_kaggle_json(path: Path) -> str:
    """Return the key of a ``kaggle.json``; errors describe the problem, never the content."""
    expected = 'expected {"username": "...", "key": "..."} as downloaded from kaggle.com'
    try:
        config = json.loads(path.read_bytes().decode("utf-8"))
    except UnicodeDecodeError:
        raise EcgError(f"is not valid JSON (not UTF-8 text); {expected}", path) from None
    except json.JSONDecodeError as exc:
        # exc.msg and the position never quote the file, unlike str(exc) on some versions
        raise EcgError(
            f"is not valid JSON ({exc.msg} at line {exc.lineno}, column {exc.colno}); {expected}",
            path,
        ) from None
    if not isinstance(config, dict) or not all(
        isinstance(config.get(k), str) and config.get(k) for k in ("username", "key")
    ):
        raise EcgError(
            f"malformed kaggle.json: needs non-empty 'username' and 'key'; {expected}", path
        )
    return config["key"]


def _fetch_kaggle_zip(work: Path, secret: str) -> Path:
    """Authenticate and download the archive into ``work``; the only networked step."""
    try:
        from kaggle.api.kaggle_api_extended import KaggleApi
    except ModuleNotFoundError as exc:
        if (exc.name or "").split(".")[0] == "kaggle":
            raise EcgError(
                "the Kaggle download needs the 'kaggle' package: "
                "pip install 'ecg-classification[kaggle]'"
            ) from None
        raise EcgError(  # e.g. kaggle 2.2.5 imports six without declaring it
            f"the 'kaggle' package is installed but does not import: it needs '{exc.name}', "
            f"which is missing (pip install {exc.name})"
        ) from None
    except ImportError as exc:
        raise EcgError(f"the 'kaggle' package is installed but does not import: {exc}") from None
    except (Exception, SystemExit) as exc:  # old kaggle versions authenticate on import
        raise EcgError(f"Kaggle authentication failed: {_scrub(exc, secret)}") from None
    api = KaggleApi()
    try:
        api.authenticate()
    except (Exception, SystemExit) as exc:  # kaggle calls exit(1) when it finds nothing
        raise EcgError(f"Kaggle authentication failed: {_scrub(exc, secret)}") from None
    try:
        api.dataset_download_files(KAGGLE_DATASET, path=str(work), unzip=False, quiet=False)
    except Exception as exc:
        raise EcgError(
            f"Kaggle download of {KAGGLE_DATASET} failed: {_scrub(exc, secret)}"
        ) from None
    zips = sorted(work.glob("*.zip"))
    if not zips:
        raise EcgError(f"Kaggle download of {KAGGLE_DATASET} produced no zip file", work)
    return zips[0]


def _scrub(exc: BaseException, secret: str) -> str:
    """First line of an exception message with the secret masked."""
    text = str(exc).strip().splitlines()[0] if str(exc).strip() else type(exc).__name__
    return text.replace(secret, "***") if secret else text


def extract_kaggle_zip(zip_path: str | os.PathLike, dest: str | os.PathLike) -> Path:
    """Safely extract ``mitbih_train.csv`` and ``mitbih_test.csv`` from the Kaggle zip.

    The whole archive is refused if any member is absolute, climbs out with ``..`` or
    is a symlink. Only the two CSVs are extracted (the archive also holds the PTB
    files), wherever they sit in the archive; they are written to a temporary folder
    inside ``dest`` and renamed into place, so ``dest`` never holds half a file.

    Parameters
    ----------
    zip_path : path
        The downloaded archive.
    dest : path
        Folder that receives the CSVs (created if needed).

    Returns
    -------
    Path
        ``dest``.
    """
    zip_path, dest = Path(zip_path), Path(dest).expanduser()
    if not zip_path.is_file():
        raise EcgError("zip archive not found", zip_path)
    if not zipfile.is_zipfile(zip_path):
        raise EcgError("is not a zip archive", zip_path)
    dest.mkdir(parents=True, exist_ok=True)
    try:
        with zipfile.ZipFile(zip_path) as archive:
            members = _kaggle_members(archive, zip_path, dest)
            _extract_atomically(archive, members, dest)
    except (zipfile.BadZipFile, EOFError, zlib.error) as exc:  # bad CRC, truncated data
        raise EcgError(f"damaged zip archive: {_scrub(exc, '')}", zip_path) from None
    except OSError as exc:
        raise EcgError(f"could not extract the CSVs: {_scrub(exc, '')}", dest) from None
    return dest


def _kaggle_members(
    archive: zipfile.ZipFile, zip_path: Path, dest: Path
) -> dict[str, zipfile.ZipInfo]:
    """Check every member is safe and return the two CSVs' entries by file name."""
    root = dest.resolve()
    found: dict[str, zipfile.ZipInfo] = {}
    for info in archive.infolist():
        if _unsafe_member(info, root):
            raise EcgError(
                f"unsafe member {info.filename!r} (absolute path, '..' or symlink); "
                "nothing was extracted",
                zip_path,
            )
        name = PurePosixPath(info.filename).name
        if name in KAGGLE_FILES and not info.is_dir():
            if name in found:
                raise EcgError(f"holds {name} more than once", zip_path)
            if info.file_size > _MAX_MEMBER_BYTES:
                raise EcgError(f"{name} is implausibly large ({info.file_size} bytes)", zip_path)
            found[name] = info
    missing = [name for name in KAGGLE_FILES if name not in found]
    if missing:
        raise EcgError(f"archive lacks {', '.join(missing)}; is it {KAGGLE_DATASET}?", zip_path)
    return found


def _unsafe_member(info: zipfile.ZipInfo, root: Path) -> bool:
    name = info.filename.replace("\\", "/")
    if name.startswith("/") or re.match(r"[A-Za-z]:", name) or ".." in name.split("/"):
        return True
    if stat.S_ISLNK(info.external_attr >> 16):
        return True
    # belt and braces: whatever the spelling, the final path must stay under dest
    return not (root / name).resolve().is_relative_to(root)


def _extract_atomically(
    archive: zipfile.ZipFile, members: dict[str, zipfile.ZipInfo], dest: Path
) -> None:
    tmp = Path(tempfile.mkdtemp(prefix=".kaggle-extract-", dir=dest))
    try:
        for name, info in members.items():
            with archive.open(info) as src, open(tmp / name, "wb") as out:
                shutil.copyfileobj(src, out, 1 << 20)
        for name in members:
            os.replace(tmp / name, dest / name)
    finally:
        shutil.rmtree(tmp, ignore_errors=True)


# ---------------------------------------------------------------------------
# Kaggle CSV files
# ---------------------------------------------------------------------------


def load_kaggle_csv(path: str | os.PathLike) -> tuple[np.ndarray, np.ndarray]:
    """Read a Kaggle heartbeat CSV (``mitbih_train.csv`` layout) and validate it.

    Parameters
    ----------
    path : path
        CSV without header; each row holds 187 samples (120 Hz, values in [0, 1])
        followed by the AAMI label 0..4 written as a float.

    Returns
    -------
    x : ndarray, shape (n_beats, 187), float32
    y : ndarray, shape (n_beats,), int64

    Raises
    ------
    EcgError
        Naming the file, the 1-based row (line) and the problem: header or text,
        wrong column count, NaN or infinite value, label not an integer 0..4, empty file.
    """
    path = Path(path)
    if not path.is_file():
        raise EcgError("file not found" if not path.exists() else "is not a file", path)
    data, parse_error = _read_numeric_csv(path)
    first_bad = 0 if data is None else _first_bad_row(data)
    if first_bad is not None:
        raise _csv_problem(path, first_bad, parse_error)
    return data[:, :BEAT_LENGTH].astype(np.float32), data[:, BEAT_LENGTH].astype(np.int64)


def _read_numeric_csv(path: Path) -> tuple[np.ndarray | None, str]:
    """Fast path: the C parser straight to float64 (~2-3 s for the 87,554-row train file).

    Returns the table, or None and pandas' message when it cannot parse the file;
    the row-by-row scan then explains where and why.
    """
    import pandas as pd

    try:
        frame = pd.read_csv(
            path,
            header=None,
            dtype=np.float64,
            na_filter=False,  # faster, and "NA"/empty cells then fail instead of becoming NaN
            engine="c",  # its default float parser is the precise one ("high")
        )
    except pd.errors.EmptyDataError:
        raise EcgError(_EMPTY, path) from None
    except ValueError as exc:  # ParserError and UnicodeDecodeError are ValueErrors too
        return None, _scrub(exc, "")
    return frame.to_numpy(), ""


_EMPTY = f"file is empty; expected rows of {BEAT_LENGTH} samples and a label"
_F32_MAX = float(np.finfo(np.float32).max)
_LABELS = "0..4 (" + ", ".join(f"{k} {n}" for k, n in enumerate(CLASS_NAMES)) + ")"


def _first_bad_row(data: np.ndarray) -> int | None:
    """Index of the first invalid data row of a parsed table (0 if the width is wrong)."""
    if data.ndim != 2 or data.shape[1] != N_COLUMNS:
        return 0
    labels = data[:, BEAT_LENGTH]
    bad = (
        ~np.isfinite(data).all(axis=1)
        | (np.abs(data[:, :BEAT_LENGTH]) > _F32_MAX).any(axis=1)  # would become inf as float32
        | (labels != np.round(labels))
        | (labels < 0)
        | (labels > 4)
    )
    return int(np.argmax(bad)) if bad.any() else None


def _csv_problem(path: Path, first_bad: int, parse_error: str) -> EcgError:
    """Scan the file to name the first bad row; rows before data row ``first_bad`` are
    known to be good and only counted, which keeps the error path fast."""
    data_row = -1
    with open(path, newline="", encoding="utf-8", errors="replace") as handle:
        reader = csv.reader(handle)
        for row in reader:
            if not row or (len(row) == 1 and not row[0].strip()):
                continue  # pandas skips blank lines, so they are not data rows
            data_row += 1
            if data_row < first_bad:
                continue
            problem = _row_problem(row, reader.line_num)
            if problem:
                return EcgError(problem, path)
    if data_row < 0:
        return EcgError(_EMPTY, path)
    return EcgError(f"could not be read as a CSV of numbers ({parse_error})", path)


def _row_problem(row: list[str], line: int) -> str | None:
    """What is wrong with one CSV row (``line`` is the 1-based line number), or None."""
    try:
        values: list[float | None] = list(map(float, row))  # quick check of a good row
    except ValueError:
        values = [_to_float(cell) for cell in row]
    numeric = None not in values
    if line == 1 and not numeric:
        return (
            f"has a header row or text at row 1; expected {N_COLUMNS} numbers per row "
            f"({BEAT_LENGTH} samples then the label) and no header"
        )
    if len(row) != N_COLUMNS:
        return (
            f"row {line}: has {len(row)} columns, expected {N_COLUMNS} "
            f"({BEAT_LENGTH} samples then the label)"
        )
    if not numeric or not all(math.isfinite(v) and abs(v) <= _F32_MAX for v in values):
        return _bad_cell(row, values, line)
    label = values[-1]
    if label != round(label):
        return f"row {line}: label {label:g} is not an integer; expected {_LABELS}"
    if not 0 <= label <= 4:
        return f"row {line}: label {label:g} is not a class; expected {_LABELS}"
    return None


def _bad_cell(row: list[str], values: list[float | None], line: int) -> str:
    """Describe the first cell that is not a finite float32 number."""
    for col, (cell, value) in enumerate(zip(row, values, strict=True), start=1):
        where = f"row {line}, column {col}"
        if value is None:
            return f"{where}: {cell.strip()[:30]!r} is not a number"
        if math.isnan(value):
            return f"{where}: value is NaN"
        if not math.isfinite(value) or abs(value) > _F32_MAX:
            return f"{where}: value {cell.strip()[:30]} is not finite"
    raise AssertionError("no bad cell in a row reported as bad")


def _to_float(cell: str) -> float | None:
    try:
        return float(cell)
    except ValueError:
        return None


def write_kaggle_csv(x: np.ndarray, y: np.ndarray, path: str | os.PathLike) -> None:
    """Write beats in the Kaggle CSV layout, atomically.

    Each row holds the 187 samples then the label as a float, comma separated, no
    header, every value formatted ``%.18e`` as in Kaggle's files
    (``9.779411554336547852e-01``). float32 beats round-trip exactly through
    :func:`load_kaggle_csv`.

    Parameters
    ----------
    x : ndarray, shape (n_beats, 187)
        Beats at 120 Hz.
    y : ndarray, shape (n_beats,)
        Integer labels 0..4.
    path : path
        Output file.
    """
    x, y = np.asarray(x), np.asarray(y)
    if x.ndim != 2 or x.shape[1] != BEAT_LENGTH:
        raise EcgError(f"beats must have shape (n, {BEAT_LENGTH}), got {x.shape}", path)
    if y.shape != (len(x),):
        raise EcgError(f"labels must have shape ({len(x)},), got {y.shape}", path)
    if not np.isfinite(x).all():
        raise EcgError("beats hold NaN or infinite values", path)
    labels = y.astype(np.float64)
    if not np.all((labels == np.round(labels)) & (labels >= 0) & (labels <= 4)):
        raise EcgError(f"labels must be integers {_LABELS}", path)
    table = np.column_stack([x.astype(np.float64), labels])
    with atomic_open(path, "w", encoding="ascii", newline="") as handle:
        np.savetxt(handle, table, fmt="%.18e", delimiter=",")


def beats_from_kaggle_csv(path: str | os.PathLike) -> Beats:
    """Read a Kaggle CSV as :class:`~ecg_utils.beats.Beats`.

    The CSVs carry no record names, R-peak positions or RR intervals, so ``record``
    is ``"kaggle"``, ``r_peak`` is -1 and ``rr`` is NaN, shape (n_beats, 4).
    """
    x, y = load_kaggle_csv(path)
    n = len(y)
    return Beats(
        x,
        y,
        np.full(n, "kaggle", dtype="<U8"),
        np.full(n, -1, dtype=np.int64),
        np.full((n, 4), np.nan, dtype=np.float32),
        {"source": "kaggle", "path": str(path)},
    )
