"""Privacy leakage (PROTOCOLS.md section 4): membership inference and class leakage.

- `attacks`: the scores (loss threshold, offline LiRA, offline RMIA) and the ROC statistics, pure
  functions of per-sample probabilities, no models;
- `shadow`: the harness-controlled member set and the models trained on it (the target and the
  reference models), each trained in a sandboxed child process and cached under the user cache;
- `inversion`: class inversion through the sandbox's input gradients, with a TV/L2 image prior,
  and the independent reference classifier that judges the inverted images.

snnbench.metrics.privacy is the registry's entry point that ties them together.
"""
