"""HTTP pieces that need no Ray: the runtime's operations endpoint (and, later, the API's building blocks)."""
