"""Helpers shared by the tests that drive the command line in-process."""

from __future__ import annotations

from ecg_utils import cli


def run_main(capsys, *argv):
    """Run the CLI in-process; return (exit status, stdout, stderr)."""
    try:
        rc = cli.main([str(a) for a in argv])
    except SystemExit as exc:  # argparse usage errors
        rc = exc.code
    out, err = capsys.readouterr()
    return rc, out, err
