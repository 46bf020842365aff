"""Tests of planner.review, one file per module of the package."""
