"""Small data sets the demo, tests and experiments generate locally."""
