"""snnbench: one evaluation protocol for spiking neural networks.

The harness is split by job: tasks (what is evaluated), data (where inputs come from), submission
(running a user's model isolated), evaluate (the one loop), metrics (what is counted), store (where
numbers land) and leaderboard (what readers see).
"""

__version__ = "0.2.0"

# Bump when a counting convention of PROTOCOLS.md section 3 changes: numbers stored under
# different metrics versions are not comparable and the leaderboard keeps them apart.
METRICS_VERSION = "1"
