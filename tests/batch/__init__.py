"""Tests of planner.batch, one file per module of the package (run end to end in test_run)."""
