import os

# Small, deterministic CPU runs for the whole suite.
os.environ.setdefault('OMP_NUM_THREADS', '2')
