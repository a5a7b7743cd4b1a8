"""The baselines bench/compare.py measures CareBill against (see bench/README.md)."""
