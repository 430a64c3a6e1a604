"""Tests of cluster/: the Ray launcher YAML, the RayJob manifest and the two-node script."""
