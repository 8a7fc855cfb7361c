"""``report.md`` generated from the results files: nothing in it is typed by hand.

One module per section of the report, in the order :func:`render_report` puts them;
each section is a function of the loaded results (:func:`load_results`) that returns
Markdown, or an empty string when the results it needs are missing (a partial run
still gives a report). :mod:`.common` holds what several sections share and
:mod:`.readme` the README's generated results block.

The report sits on top of the package: it imports the lower modules (experiments,
evaluation, study, ...) and none of them imports it.
"""

from __future__ import annotations

from pathlib import Path

from .._io import EcgError
from .archive import section_archive_speed
from .calibration import section_calibration
from .closing import LIMITATIONS, REFERENCES
from .common import (
    experiments,
    link_existing_figures,
    load_results,
    se_ppv,
    shipped_name,
    write_if_changed,
)
from .dataset import section_dataset
from .detection import section_detected_peaks, section_detection
from .explanations import section_explanations
from .failures import section_failures
from .feature_screen import section_feature_screen
from .fidelity import section_fidelity
from .kaggle import section_strong_model
from .kaggle_ablation import section_ablation
from .model_choice import section_model_choice
from .new_patients import section_new_patients
from .noise import section_noise
from .patient_specific import section_patient_specific
from .protocols import section_inter_patient_protocol, section_kaggle_protocol
from .readme import README_END, README_START, readme_summary, update_readme
from .relative import section_relative
from .relative_fusion import section_relative_fusion
from .relative_patient import section_relative_patient
from .reproducibility import section_environment, study_training_time
from .resampling import section_resampling
from .seeds import section_seed_spread
from .speed import section_inference_speed, section_predict_speed
from .targets import section_targets

__all__ = [
    "README_END",
    "README_START",
    "experiments",
    "load_results",
    "readme_summary",
    "render_report",
    "se_ppv",
    "section_feature_screen",
    "section_model_choice",
    "section_new_patients",
    "section_relative",
    "section_relative_fusion",
    "section_relative_patient",
    "section_seed_spread",
    "shipped_name",
    "study_training_time",
    "update_readme",
    "write_report",
]


def render_report(results: dict, figures_dir: str | Path | None = None) -> str:
    """The whole report as Markdown.

    ``figures_dir`` is the folder the report's ``figures/...`` links resolve to (the
    ``figures`` folder beside ``report.md``): a figure missing from it gets a note
    instead of a link. None links every figure the sections name, unchecked.
    """
    parts = [
        "# ECG heartbeat classification on MIT-BIH: report",
        "",
        "Generated from `results/*.json` by `python -m ecg_utils report`; do not edit by hand.",
        "",
        section_dataset(results),
        section_targets(results),
        section_relative(results),
        section_relative_fusion(results),
        section_relative_patient(results),
        section_new_patients(results),
        section_patient_specific(results),
        section_fidelity(results),
        section_kaggle_protocol(results),
        section_inter_patient_protocol(results),
        section_strong_model(results),
        section_ablation(results),
        section_model_choice(results),
        section_seed_spread(results),
        section_feature_screen(results),
        section_calibration(results),
        section_failures(results),
        section_explanations(results),
        section_detection(results),
        section_detected_peaks(results),
        section_noise(results),
        section_resampling(results),
        section_predict_speed(results),
        section_inference_speed(results),
        section_archive_speed(results),
        section_environment(results),
        LIMITATIONS,
        REFERENCES,
    ]
    text = "\n".join(p for p in parts if p is not None).rstrip() + "\n"
    return link_existing_figures(text, figures_dir)


def write_report(
    results_dir: str | Path, path: str | Path, readme: str | Path | None = None
) -> Path:
    """Render ``report.md`` from ``results_dir`` and write it atomically.

    The report links only figures that exist in the ``figures`` folder beside ``path``
    (see :func:`render_report`). When ``readme`` is given, its results block (between
    ``README_START`` and ``README_END``) is regenerated from the same results.

    Each file is written only when its content changes: a report or README that already
    holds the generated text is left untouched (mtime included), so regenerating from
    unchanged results leaves the working tree as it was.

    Raises
    ------
    EcgError
        When there are no results to report (see :func:`load_results`) or they lack
        fields the report needs (files from another version: rerun the study); no
        report is written then.
    """
    results = load_results(results_dir)
    try:
        text = render_report(results, Path(path).parent / "figures")
    except (KeyError, TypeError, ValueError, IndexError, AttributeError) as exc:
        raise EcgError(
            f"results files are incomplete or from another version ({type(exc).__name__}: "
            f"{exc}); rerun the study",
            results_dir,
        ) from None
    write_if_changed(path, text)
    if readme is not None:
        update_readme(readme, results)
    return Path(path)
