"""Tests of planner.optimize, one file per module of the package."""
