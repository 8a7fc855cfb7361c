"""The report's fixed closing sections: limitations and references."""

from __future__ import annotations

LIMITATIONS = """## Limitations

- MIT-BIH has 47 patients; DS2 has 22. Per-class figures for rare classes (F, and S in
  most records) rest on few patients, hence the wide record-level intervals.
- The Kaggle protocol splits beats at random: the same patients are on both sides, so its
  figures overstate what a model does for a new patient. Use the inter-patient figures for that.
- Q (paced and unclassifiable) beats are excluded from the inter-patient protocol with the
  paced records, as AAMI EC57 recommends; macro-F1 there still averages all five classes, so
  F and Q (a handful of beats in DS2) pull it down: read the per-class figures.
- The baselines' inter-patient validation holds out four DS1 records, and almost all of
  their S beats come from one of them (118), so their chosen epochs are noisy. The
  candidates for unseen patients are chosen by cross-validation over all of DS1 instead,
  but DS1 still has only 22 patients: the out-of-fold figures are estimates with wide
  uncertainty, and the test figures on DS2 can differ from them.
"""


REFERENCES = """## References

- Moody GB, Mark RG. The impact of the MIT-BIH Arrhythmia Database.
  IEEE Eng Med Biol 20(3):45-50, 2001.
- Goldberger AL et al. PhysioBank, PhysioToolkit, and PhysioNet.
  Circulation 101(23):e215-e220, 2000.
- Kachuee M, Fazeli S, Sarrafzadeh M. ECG heartbeat classification: a deep transferable
  representation. IEEE ICHI 2018 (arXiv:1805.00794).
- de Chazal P, O'Dwyer M, Reilly RB. Automatic classification of heartbeats using ECG morphology
  and heartbeat interval features. IEEE TBME 51(7):1196-1206, 2004.
"""
