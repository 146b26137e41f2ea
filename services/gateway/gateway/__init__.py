"""Reelforge gateway service."""
