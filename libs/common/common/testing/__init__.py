"""Shared pytest fixtures and helpers for Reelforge test suites."""
