"""Report sections on the Kaggle protocol's strongest model and its distillation.

Every figure comes from the results files (``results/strong_kaggle.json``,
``strong_ip.json``, ``distill_kaggle.json``); a section is empty without them.
"""

from __future__ import annotations

from ..device import device_phrase
from ..evaluation import fmt_pct
from ..experiments import KAGGLE_BEST_TARGET, KAGGLE_TARGET

STRONG = "strong_kaggle"
"""The strongest beat model on the Kaggle protocol (shipped at ``KAGGLE_BEST_TARGET``)."""


STRONG_IP = "strong_ip"
"""The same network and recipe trained on DS1, tested on DS2."""


DISTILLED = "distill_kaggle"
"""ECG1DCNN distilled from the strong model."""


KAGGLE_GOALS = {
    STRONG: {"macro_f1": 0.95, "accuracy": 0.993},
    "ecg_cnn": {"macro_f1": 0.945},
}
"""Goals on the Kaggle protocol's test side: the strong model (≤ 1 M parameters) and the
shipped ``ecg_cnn.pth`` (distilled when that wins on validation)."""


ECGTRANSFORM = {"accuracy": 0.9935, "macro_f1": 0.943}
"""ECGTransForm (El-Ghaish & Eldele, BSPC 89, 2024) on Kaggle's split, as published."""


def kaggle_target_rows(results: dict) -> list[tuple[str, str, bool]]:
    """Targets rows: the strong model's and ``ecg_cnn.pth``'s Kaggle test figures."""
    rows = []
    strong = results.get(STRONG)
    if strong and strong.get("test"):
        m = strong["test"]
        goal = KAGGLE_GOALS[STRONG]
        rows.append(
            (
                f"Kaggle, `{KAGGLE_BEST_TARGET}`: macro-F1 ≥ {goal['macro_f1']:.2f}",
                f"{m['macro_f1']:.3f}",
                m["macro_f1"] >= goal["macro_f1"],
            )
        )
        rows.append(
            (
                f"Kaggle, `{KAGGLE_BEST_TARGET}`: accuracy ≥ {100 * goal['accuracy']:.1f} %",
                f"{fmt_pct(m['accuracy'])} %",
                m["accuracy"] >= goal["accuracy"],
            )
        )
    shipped = (results.get("shipped") or {}).get(KAGGLE_TARGET)
    cnn = results.get(shipped or "")
    if cnn and cnn.get("test") and results.get(DISTILLED):
        goal = KAGGLE_GOALS["ecg_cnn"]["macro_f1"]
        rows.append(
            (
                f"Kaggle, `{KAGGLE_TARGET}` (ECG1DCNN, `{shipped}`): macro-F1 ≥ {goal:.3f}",
                f"{cnn['test']['macro_f1']:.3f}",
                cnn["test"]["macro_f1"] >= goal,
            )
        )
    return rows


def section_strong_model(results: dict) -> str:
    """The strongest model under 1 M parameters, its distillation, and what it says of
    new patients."""
    strong = results.get(STRONG)
    if not strong or not strong.get("test"):
        return ""
    cfg, m = strong["config"], strong["test"]
    args = cfg["model_args"]
    lines = [
        "## The strongest beat model under 1 M parameters (Kaggle protocol)",
        "",
        f"`{KAGGLE_BEST_TARGET}`: a residual 1D CNN of {strong['n_parameters']:,} parameters "
        f"(`resnet1d`, width {args.get('width')}, {args.get('blocks', 1)} blocks a stage, "
        f"{'with' if args.get('se') else 'without'} squeeze-and-excitation gates), "
        f"{cfg['epochs']} epochs, "
        f"batch {cfg['batch_size']}, one-cycle LR {cfg['lr']:g}, weight average "
        f"{cfg['ema']:g}{_bn_text(cfg)}; epoch chosen on the validation tenth of the "
        "training beats "
        f"(best {strong['best_epoch']}). Trained in {strong['train_seconds'] / 60:.0f} min "
        f"on {device_phrase(strong.get('device'), cfg.get('threads'))}.",
        "",
        "| model | protocol | accuracy (%) | macro-F1 | parameters |",
        "|---|---|---:|---:|---:|",
        _row(strong["title"], "Kaggle", m, strong["n_parameters"]),
        f"| ECGTransForm (El-Ghaish & Eldele 2024), as published | Kaggle "
        f"| {100 * ECGTRANSFORM['accuracy']:.2f} | {ECGTRANSFORM['macro_f1']:.3f} | |",
    ]
    for name, protocol in ((DISTILLED, "Kaggle"), ("ema_kaggle", "Kaggle")):
        r = results.get(name)
        if r and r.get("test"):
            lines.append(_row(r["title"], protocol, r["test"], r["n_parameters"]))
    ip = results.get(STRONG_IP)
    if ip and ip.get("test"):
        lines.append(_row(ip["title"], "inter-patient (DS1 → DS2)", ip["test"], ip["n_parameters"]))
    lines.append("")
    if ip and ip.get("test"):
        c_ip, c_k = ip["test"]["classes"], m["classes"]
        lines.append(
            "The Kaggle split puts beats of the same patients on both sides, so its figures "
            "measure how well a model recognises beats of patients it has already seen. The "
            f"same network and recipe{_ip_difference(ip['config'], cfg)} trained on DS1 find "
            f"{100 * c_ip['S']['sensitivity']:.1f} % "
            f"of DS2's S beats and {100 * c_ip['V']['sensitivity']:.1f} % of its V beats, "
            f"against {100 * c_k['S']['sensitivity']:.1f} % and "
            f"{100 * c_k['V']['sensitivity']:.1f} % on the Kaggle test side: strength on "
            "this protocol is not generalisation to new patients (see *New patients*)."
        )
        lines.append("")
    distilled = results.get(DISTILLED)
    if distilled and distilled.get("test"):
        shipped = (results.get("shipped") or {}).get(KAGGLE_TARGET)
        dc = distilled["config"]
        verdict = (
            f"it won on validation and is shipped as `{KAGGLE_TARGET}`"
            if shipped == DISTILLED
            else f"`{shipped}` kept a better validation score and stays `{KAGGLE_TARGET}`"
        )
        lines.append(
            f"Distillation: ECG1DCNN (the seed's architecture, so `{KAGGLE_TARGET}` still "
            "loads with the seed's README line) trained on "
            f"{1 - dc['distill_weight']:g} × the labels' cross-entropy + "
            f"{dc['distill_weight']:g} × the teacher's soft targets at temperature "
            f"{dc['distill_temperature']:g} (Hinton et al. 2015), the recipe of `ema_kaggle` "
            f"otherwise; {verdict}."
        )
        lines.append("")
    return "\n".join(lines) + "\n"


def _row(title: str, protocol: str, m: dict, n_parameters: int) -> str:
    return (
        f"| {title} | {protocol} | {fmt_pct(m['accuracy'])} | {m['macro_f1']:.3f} "
        f"| {n_parameters:,} |"
    )


RECOMPUTED_BN = (
    "BatchNorm statistics recomputed on the training beats after each epoch (averaged "
    "ones left the averaged network predicting one class for new patients)"
)
"""What ``ema_bn="recompute"`` does and why a recipe uses it, in words."""


def _ip_difference(ip: dict, kaggle: dict) -> str:
    """How the inter-patient run's recipe differs from the Kaggle one, in words."""
    if ip.get("ema_bn") == kaggle.get("ema_bn"):
        return ""
    return f" (but for the weight average's {RECOMPUTED_BN})"


def _bn_text(cfg: dict) -> str:
    return f" with its {RECOMPUTED_BN}" if cfg.get("ema_bn") == "recompute" else ""
