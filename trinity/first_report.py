"""``python -m trinity.first_report``: run the performance report once, through the worker, and wait.

``trinity up`` runs this as its last set-up step, so that the report's artifact is in the Prefect UI
from the start rather than after the first hourly run. Prints the run's final state; exits 0 only
when the run completed.
"""

from __future__ import annotations

import asyncio

from prefect.deployments import arun_deployment

from deployments.analytics import DEPLOYMENT_NAME
from specs.naming import PERFORMANCE_FLOW

# Below the 600 s that `trinity up` gives the whole step.
TIMEOUT_SECONDS = 540


def main() -> int:
    """Run the performance report's deployment and wait for it; the exit status."""
    run = asyncio.run(arun_deployment(f"{PERFORMANCE_FLOW}/{DEPLOYMENT_NAME}", timeout=TIMEOUT_SECONDS))
    print(f"performance report run {run.name}: {run.state.name if run.state else 'unknown'}")
    return 0 if run.state and run.state.is_completed() else 1


if __name__ == "__main__":
    raise SystemExit(main())
