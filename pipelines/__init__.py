"""Ray tasks: the four parallel strategies and the red-flag sweep built on them.

Imports point one way: ``deployments → actors → pipelines → cidadao``.
"""

from pipelines.runtime import ensure_ray, worker_count
from pipelines.strategies import STRATEGIES, Strategy, process_parallel
from pipelines.sweep import INLINE_ROWS, run_sweep

__all__ = ["INLINE_ROWS", "STRATEGIES", "Strategy", "ensure_ray", "process_parallel", "run_sweep", "worker_count"]
