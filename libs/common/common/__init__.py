"""Shared code for every Reelforge service."""
