"""The default training recipes of `snnbench train`, one module each:

- snnbench.recipes.bptt: surrogate-gradient BPTT for classification (`default_train`), with the
  contract's `Budget` and `TrainingData`;
- snnbench.recipes.dqn: double DQN for RL tasks (`train_dqn`, `DQNConfig`, `Replay`).

Both return the trained model and append one dict per epoch to a history list (at least `epoch`;
DQN also `step`, the env steps so far, and `validation_return`), which `snnbench train` copies
into the checkpoint's training record.
"""
