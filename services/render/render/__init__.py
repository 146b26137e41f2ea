"""Reelforge render service."""
