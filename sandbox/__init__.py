"""A synthetic commune with ground truth, and the simulated silos seeded from it."""
