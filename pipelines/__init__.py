"""Ray tasks: the parallel strategies and the analysis jobs (built by the red-flag engine issue)."""
