"""The benchmark harness: the service side by side with its baselines, in one run."""
