"""reelforge: the command-line client of a Reelforge gateway."""
