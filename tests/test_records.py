"""Tests for ecg_utils.records: damaged or lying WFDB files end in one clear EcgError.

Every case starts from a valid synthetic record (two leads, format 212, 360 Hz), damages
one file, and checks that reading fails with an EcgError naming the damaged file.
"""

from __future__ import annotations

import numpy as np
import pytest

from ecg_utils import EcgError
from ecg_utils.beats import BEAT_LENGTH, read_record_beats, segment_beats
from ecg_utils.records import read_annotations, read_header, read_signal


def edit_header(old: str, new: str):
    """A damage function replacing ``old`` by ``new`` in the header."""

    def damage(rec):
        text = rec.file("hea").read_text()
        assert old in text, text
        rec.file("hea").write_text(text.replace(old, new, 1))

    return damage


def cut(ext: str, keep):
    """A damage function keeping ``keep(data)`` bytes of a file."""

    def damage(rec):
        data = rec.file(ext).read_bytes()
        rec.file(ext).write_bytes(data[: keep(data)])

    return damage


def zero_gain(rec):
    """Set the ADC gain of the first signal to 0 (``syn.dat 212 0(-1893)/mV ...``)."""
    lines = rec.file("hea").read_text().splitlines()
    fields = lines[1].split(" ")
    fields[2] = "0" + fields[2][fields[2].index("(") :]
    lines[1] = " ".join(fields)
    rec.file("hea").write_text("\n".join(lines) + "\n")


def remove(ext: str):
    return lambda rec: rec.file(ext).unlink()


def overwrite(ext: str, data: bytes):
    return lambda rec: rec.file(ext).write_bytes(data)


BAD_RECORDS = {
    "missing header": (remove("hea"), "hea", "header not found"),
    "empty header": (overwrite("hea", b""), "hea", "header is empty"),
    "binary header": (overwrite("hea", b"\x00\xff\xfe junk\n"), "hea", "not ASCII"),
    "longer than the data": (
        edit_header("360 10800", "360 20000"),
        "dat",
        "truncated: 32400 bytes hold about 10800 samples per signal, the header announces 20000",
    ),
    "unknown format": (edit_header(".dat 212", ".dat 999"), "hea", "unknown signal format 999"),
    "gain 0": (zero_gain, "hea", "ADC gain is 0 in syn.dat (uncalibrated signal)"),
    "fs 0": (edit_header("2 360 ", "2 0 "), "hea", "sampling rate must be between 50 and 20000 Hz"),
    "fs negative": (edit_header("2 360 ", "2 -360 "), "hea", "got -360"),
    "fs absurd": (edit_header("2 360 ", "2 1e9 "), "hea", "got 1e9"),
    "fs nan": (edit_header("2 360 ", "2 nan "), "hea", "got nan"),
    "fs not a number": (edit_header("2 360 ", "2 fast "), "hea", "must be a number, got 'fast'"),
    "zero samples": (edit_header("360 10800", "360 0"), "hea", "holds 0 samples"),
    "fractional samples": (edit_header("360 10800", "360 10.5"), "hea", "not a whole number"),
    "missing signal line": (edit_header("syn 2 ", "syn 3 "), "hea", "announces 3 signals"),
    "no signals": (edit_header("syn 2 ", "syn 0 "), "hea", "no signals"),
    "multi-segment": (edit_header("syn 2 ", "syn/2 2 "), "hea", "multi-segment"),
    "path in file name": (edit_header("syn.dat", "../syn.dat"), "hea", "plain file name"),
    "truncated data": (cut("dat", lambda d: len(d) // 3), "dat", "truncated"),
    "data one byte short": (cut("dat", lambda d: len(d) - 1), "dat", "truncated"),
    "empty data": (cut("dat", lambda d: 0), "dat", "signal file is empty"),
    "missing data": (remove("dat"), "dat", "signal file not found"),
    "missing annotations": (remove("atr"), "atr", "annotation file not found"),
    "empty annotations": (overwrite("atr", b""), "atr", "annotation file is empty"),
    "odd-sized annotations": (cut("atr", lambda d: 11), "atr", "not a WFDB annotation file"),
    "junk annotations": (overwrite("atr", bytes(range(256)) * 3 + b"\x01"), "atr", "annotation"),
}


@pytest.mark.parametrize("case", list(BAD_RECORDS), ids=list(BAD_RECORDS))
def test_bad_record_is_one_clear_error_naming_the_file(synthetic_record, case):
    damage, ext, message = BAD_RECORDS[case]
    rec = synthetic_record(seconds=30, symbols=("N",))
    damage(rec)
    with pytest.raises(EcgError) as err:
        read_record_beats(rec.path)
    text = str(err.value)
    assert text.startswith(str(rec.file(ext))), text
    assert message in text
    assert "\n" not in text


def test_valid_record_reads(synthetic_record):
    rec = synthetic_record(seconds=30)
    sig, fs, names = read_signal(rec.path)
    assert fs == 360.0 and names == ["MLII", "V1"]
    assert sig.shape == (10800, 2)
    np.testing.assert_allclose(sig, rec.signal, atol=2e-3)  # 12-bit quantisation
    samples, symbols = read_annotations(rec.path)
    np.testing.assert_array_equal(samples, rec.samples)
    assert symbols == rec.symbols


def test_one_channel_is_read_alone(synthetic_record, monkeypatch):
    import wfdb

    from ecg_utils.predict import read_input
    from ecg_utils.records import lead_names

    rec = synthetic_record(seconds=10, leads=("V1", "MLII"))
    full, _, _ = read_signal(rec.path)
    one, fs, names = read_signal(rec.path, channels=[1])
    assert one.shape == (3600, 1) and names == ["MLII"] and fs == 360.0
    np.testing.assert_array_equal(one[:, 0], full[:, 1])
    assert lead_names(rec.path) == ["V1", "MLII"]
    with pytest.raises(EcgError, match="out of range"):
        read_signal(rec.path, channels=[2])
    asked = []
    real = wfdb.rdrecord
    monkeypatch.setattr(wfdb, "rdrecord", lambda *a, **k: asked.append(k) or real(*a, **k))
    kind, x, _, _ = read_input(rec.file("hea"), None, None)  # MLII, the second lead
    assert kind == "record" and asked == [{"channels": [1]}]
    np.testing.assert_array_equal(x, full[:, 1])


def test_header_fields_are_parsed(synthetic_record):
    info = read_header(synthetic_record(seconds=30).path)
    assert (info.record_name, info.fs, info.sig_len) == ("syn", 360.0, 10800)
    assert [(s.file_name, s.fmt, s.name) for s in info.signals] == [
        ("syn.dat", "212", "MLII"),
        ("syn.dat", "212", "V1"),
    ]


def test_header_without_length_reads_the_whole_file(synthetic_record):
    rec = synthetic_record(seconds=30)
    edit_header("360 10800", "360")(rec)
    sig, _, _ = read_signal(rec.path)
    assert sig.shape == (10800, 2)


def test_real_header_is_accepted(mitdb_dir):
    info = read_header(mitdb_dir / "100")
    assert (info.fs, info.sig_len, [s.name for s in info.signals]) == (
        360.0,
        650000,
        ["MLII", "V5"],
    )


def test_record_without_the_lead_uses_the_first_with_a_note(synthetic_record):
    beats = read_record_beats(synthetic_record(leads=("V1", "V2")).path, lead="MLII")
    assert beats.meta["lead"] == "V1"
    assert "lead MLII not found, using V1" in beats.meta["lead_note"]


def write_raw(folder, name, digital, gain=200.0, fs=360):
    """A one-lead format-16 record from digital values, with one beat annotation per second."""
    import wfdb

    folder.mkdir(parents=True, exist_ok=True)
    wfdb.wrsamp(
        name,
        fs=fs,
        units=["mV"],
        sig_name=["MLII"],
        d_signal=np.asarray(digital, dtype=np.int64).reshape(-1, 1),
        fmt=["16"],
        adc_gain=[gain],
        baseline=[0],
        write_dir=str(folder),
    )
    peaks = np.arange(fs // 2, len(digital), fs)
    if len(peaks):
        wfdb.wrann(name, "atr", peaks, ["N"] * len(peaks), write_dir=str(folder))
    return folder / name


@pytest.mark.parametrize("value", [0, 100, -500])
def test_flat_line_record_gives_zero_beats(tmp_path, value):
    beats = read_record_beats(write_raw(tmp_path, "flat", np.full(3600, value)))
    assert len(beats) == 9  # ten annotations; the last beat has no next RR
    assert np.all(beats.x == 0)


def test_all_nan_record_is_a_clear_error(tmp_path):
    path = write_raw(tmp_path, "gap", np.full(3600, -32768))  # format 16's "no sample"
    with pytest.raises(EcgError, match="no finite samples") as err:
        read_record_beats(path)
    assert str(err.value).startswith(str(path.with_suffix(".dat")))


def test_record_with_gaps_is_interpolated(tmp_path):
    digital = (200 * np.sin(np.arange(3600) / 20)).astype(np.int64)
    digital[500:900] = -32768
    beats = read_record_beats(write_raw(tmp_path, "holes", digital))
    assert len(beats) == 9 and np.all(np.isfinite(beats.x))


def test_record_shorter_than_one_beat(tmp_path):
    path = write_raw(tmp_path, "short", np.arange(250) % 50)  # 0.7 s, one beat at 0.5 s
    beats = read_record_beats(path)
    assert beats.x.shape == (0, BEAT_LENGTH)  # its only beat is the last: no next RR
    sig, fs, _ = read_signal(path)
    x, kept = segment_beats(sig[:, 0], fs, np.array([180]))
    assert x.shape == (1, BEAT_LENGTH) and kept.tolist() == [0]
    assert x.min() >= 0 and x.max() <= 1 and np.all(x[0, 24:] == 0)  # cut at the end


def test_annotations_beyond_the_end_are_dropped(synthetic_record):
    import wfdb

    rec = synthetic_record(seconds=5, leads=("MLII",))
    wfdb.wrann(
        "syn", "atr", np.array([180, 900, 5000]), ["N", "V", "N"], write_dir=str(rec.path.parent)
    )
    beats = read_record_beats(rec.path)
    np.testing.assert_array_equal(beats.r_peak, [180, 900])  # 5000 is past the end
    np.testing.assert_array_equal(beats.y, [0, 2])


def test_edf_file_reads_like_its_wfdb_record(synthetic_record, tmp_path):
    from wfdb.io.convert.edf import wfdb_to_edf

    from ecg_utils.predict import read_input
    from ecg_utils.records import read_edf

    rec = synthetic_record(seconds=10, leads=("V1", "MLII"))
    edf = tmp_path / "syn.edf"
    wfdb_to_edf(str(rec.path), output_filename=str(edf))
    sig, fs, names = read_edf(edf)
    assert fs == 360.0 and names == ["V1", "MLII"]
    wfdb_sig, _, _ = read_signal(rec.path)
    np.testing.assert_allclose(sig[: len(wfdb_sig)], wfdb_sig, atol=2e-3)
    kind, x, x_fs, extra = read_input(edf, None, None)
    assert (kind, x_fs, extra["lead_note"]) == ("samples", 360.0, None)
    np.testing.assert_allclose(x[: len(wfdb_sig)], wfdb_sig[:, 1], atol=2e-3)
    (tmp_path / "bad.edf").write_bytes(b"0       not an edf header")
    with pytest.raises(EcgError, match="bad.edf: cannot read EDF file"):
        read_edf(tmp_path / "bad.edf")


def test_edf_signals_in_microvolts_are_read_in_millivolts(synthetic_record, tmp_path):
    import wfdb
    from wfdb.io.convert.edf import wfdb_to_edf

    from ecg_utils.records import read_edf

    rec = synthetic_record(seconds=10, leads=("MLII",))
    mv, _, _ = read_signal(rec.path)
    wfdb.wrsamp(
        "uv", fs=360, units=["uV"], sig_name=["MLII"], p_signal=mv[:, :1] * 1000.0,
        fmt=["16"], adc_gain=[10.0], baseline=[0], write_dir=str(tmp_path),
    )  # fmt: skip
    edf = tmp_path / "uv.edf"
    wfdb_to_edf(str(tmp_path / "uv"), output_filename=str(edf))
    sig, _, _ = read_edf(edf)
    np.testing.assert_allclose(sig[: len(mv), 0], mv[:, 0], atol=2e-3)


def test_uncalibrated_signal_is_refused_by_default_and_read_in_adu_when_allowed(tmp_path):
    from ecg_utils.records import UNCALIBRATED_UNITS, lead_units

    digital = (300 * np.sin(np.arange(3600) / 20)).astype(np.int64)
    digital[100:120] = -32768  # format 16's "no sample"
    path = write_raw(tmp_path, "uncal", digital)
    header = path.with_suffix(".hea")
    header.write_text(header.read_text().replace(" 200.0(0)/mV ", " 0(0)/mV ", 1))
    assert read_header(path).signals[0].gain == 0.0
    assert lead_units(path) == [UNCALIBRATED_UNITS] == ["adu"]
    with pytest.raises(EcgError, match="ADC gain is 0 in uncal.dat") as err:
        read_signal(path)
    assert str(err.value).startswith(str(path.with_suffix(".hea")))
    sig, fs, names = read_signal(path, allow_uncalibrated=True)
    assert (sig.shape, sig.dtype, fs, names) == ((3600, 1), np.float64, 360.0, ["MLII"])
    assert np.isnan(sig[100:120, 0]).all()
    keep = np.ones(3600, bool)
    keep[100:120] = False
    np.testing.assert_array_equal(sig[keep, 0], digital[keep])  # the digital samples


def test_uncalibrated_lead_beside_a_calibrated_one(synthetic_record):
    from ecg_utils.records import lead_units

    rec = synthetic_record(seconds=10)
    mv, _, _ = read_signal(rec.path)
    gain = read_header(rec.path).signals[0].gain
    zero_gain(rec)  # the first lead only
    assert lead_units(rec.path) == ["adu", "mV"]
    both, _, _ = read_signal(rec.path, allow_uncalibrated=True)
    np.testing.assert_array_equal(both[:, 1], mv[:, 1])  # still in mV
    baseline = int(rec.file("hea").read_text().splitlines()[1].split()[2][2:-4])
    np.testing.assert_allclose(both[:, 0], mv[:, 0] * gain + baseline, atol=1e-6)  # adu
    second, _, _ = read_signal(rec.path, channels=[1])  # a calibrated lead alone reads
    np.testing.assert_array_equal(second[:, 0], mv[:, 1])


def _edf_plus_by_pyedflib(path, x, fs):
    """An EDF+ file with an annotation and 2 s data records, written by pyedflib."""
    pyedflib = pytest.importorskip("pyedflib", reason="pyedflib (an EDF writer) not installed")
    writer = pyedflib.EdfWriter(str(path), 1, file_type=pyedflib.FILETYPE_EDFPLUS)
    writer.setSignalHeaders([{"label": "ECG II", "dimension": "uV", "sample_frequency": fs,
                              "physical_max": 5000, "physical_min": -5000,
                              "digital_max": 32767, "digital_min": -32768}])  # fmt: skip
    writer.setDatarecordDuration(2.0)
    writer.writeSamples([x * 1000.0])
    writer.writeAnnotation(1.0, -1, "start")
    writer.close()


def _edf_plus_by_edfio(path, x, fs):
    """An EDF+C file with an annotation, written by edfio."""
    import edfio

    signal = edfio.EdfSignal(x, sampling_frequency=fs, label="ECG II", physical_dimension="mV")
    edfio.Edf([signal], annotations=[edfio.EdfAnnotation(1.0, None, "start")]).write(path)


@pytest.mark.parametrize("writer", [_edf_plus_by_pyedflib, _edf_plus_by_edfio])
def test_edf_plus_with_annotations_reads(synthetic_record, tmp_path, writer):
    from ecg_utils.predict import read_input
    from ecg_utils.records import read_edf, read_edf_header

    rec = synthetic_record(seconds=10, leads=("MLII",))
    mv, _, _ = read_signal(rec.path)
    edf = tmp_path / "plus.edf"
    writer(edf, mv[:, 0], 360)
    header = read_edf_header(edf)
    assert (header.labels, header.fs, header.units) == (("ECG II",), (360.0,), ("mV",))
    sig, fs, names = read_edf(edf)  # the annotation channel is dropped
    assert (sig.shape[1], fs, names) == (1, 360.0, ["ECG II"])
    np.testing.assert_allclose(sig[: len(mv), 0], mv[:, 0], atol=2e-3)
    kind, x, x_fs, extra = read_input(edf, None, None)  # "ECG II" for lead II, no note
    assert (kind, x_fs, extra["lead"], extra["lead_note"]) == ("samples", 360.0, "ECG II", None)
    truncated = tmp_path / "cut.edf"
    truncated.write_bytes(edf.read_bytes()[:-500])
    with pytest.raises(EcgError, match="cut.edf: EDF file is truncated"):
        read_edf(truncated)
