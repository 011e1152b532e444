"""Reports: per-test results collected on the controller, the run folder, the terminal summary."""
