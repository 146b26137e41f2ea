"""Reelforge streaming service."""
